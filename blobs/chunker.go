package blobs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/zeebo/blake3"
)

// Chunking version 1 parameters (see the package documentation).
const (
	MinChunkSize = 256 << 10
	AvgChunkSize = 1 << 20
	MaxChunkSize = 4 << 20
)

// Cut masks: 22 bits (strict, before AvgChunkSize) and 18 bits (loose,
// after), both within bits 41..62 of the gear hash.
const (
	maskStrict uint64 = ((1 << 22) - 1) << 41
	maskLoose  uint64 = ((1 << 18) - 1) << 45
)

const gearContext = "meshwork blobs v1 fastcdc gear table"

var gear = makeGear()

func makeGear() *[256]uint64 {
	var raw [2048]byte
	d := blake3.NewDeriveKey(gearContext).Digest()
	if _, err := io.ReadFull(d, raw[:]); err != nil {
		panic("blobs: blake3 digest read failed: " + err.Error())
	}
	var t [256]uint64
	for i := range t {
		t[i] = binary.LittleEndian.Uint64(raw[8*i:])
	}
	return &t
}

// cutPoint returns the length of the first chunk of data, which holds either
// at least MaxChunkSize bytes or all the remaining input.
func cutPoint(data []byte) int {
	n := len(data)
	if n <= MinChunkSize {
		return n
	}
	if n > MaxChunkSize {
		n = MaxChunkSize
	}
	g := gear
	var fp uint64
	i := MinChunkSize
	norm := min(n, AvgChunkSize)
	d := data[:n]
	for ; i < norm; i++ {
		fp = fp<<1 + g[d[i]]
		if fp&maskStrict == 0 {
			return i + 1
		}
	}
	for ; i < n; i++ {
		fp = fp<<1 + g[d[i]]
		if fp&maskLoose == 0 {
			return i + 1
		}
	}
	return n
}

// Chunker splits a stream into version 1 content-defined chunks.
// It is not safe for concurrent use; use one per stream.
type Chunker struct {
	r      io.Reader
	buf    []byte
	start  int // first unconsumed byte in buf
	end    int // end of valid data in buf
	eof    bool
	offset int64
}

// NewChunker returns a Chunker reading r. It buffers 2×MaxChunkSize bytes.
func NewChunker(r io.Reader) *Chunker {
	return &Chunker{r: r, buf: make([]byte, 2*MaxChunkSize)}
}

// Next returns the next chunk and its offset in the stream, or io.EOF after
// the last one. The returned slice is valid only until the next call.
func (c *Chunker) Next() (offset int64, data []byte, err error) {
	if c.end-c.start < MaxChunkSize && !c.eof {
		copy(c.buf, c.buf[c.start:c.end])
		c.end -= c.start
		c.start = 0
		for c.end < len(c.buf) {
			n, err := c.r.Read(c.buf[c.end:])
			c.end += n
			if errors.Is(err, io.EOF) {
				c.eof = true
				break
			}
			if err != nil {
				return 0, nil, fmt.Errorf("chunk: read at offset %d: %w", c.offset+int64(c.end-c.start), err)
			}
		}
	}
	if c.start == c.end {
		return 0, nil, io.EOF
	}
	n := cutPoint(c.buf[c.start:c.end])
	data = c.buf[c.start : c.start+n]
	offset = c.offset
	c.start += n
	c.offset += int64(n)
	return offset, data, nil
}

// Reset makes c read r from its start, keeping the buffer.
func (c *Chunker) Reset(r io.Reader) {
	*c = Chunker{r: r, buf: c.buf}
}

var chunkers = sync.Pool{New: func() any { return NewChunker(nil) }}

// Split chunks and hashes all of r, calling fn (if not nil) for each chunk
// with its offset, and returns the manifest and its BlobRef. The data passed
// to fn is valid only during the call.
func Split(r io.Reader, fn func(offset int64, ref ChunkRef, data []byte) error) (Manifest, BlobRef, error) {
	c := chunkers.Get().(*Chunker)
	c.Reset(r)
	defer func() {
		c.Reset(nil)
		chunkers.Put(c)
	}()
	var m Manifest
	for {
		off, data, err := c.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Manifest{}, BlobRef{}, err
		}
		ref := ChunkRef{ID: SumChunk(data), Size: uint32(len(data))}
		m.Chunks = append(m.Chunks, ref)
		if fn != nil {
			if err := fn(off, ref, data); err != nil {
				return Manifest{}, BlobRef{}, err
			}
		}
	}
	return m, m.Ref(), nil
}
