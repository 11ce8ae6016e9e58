// Package wire frames the messages of Meshwork's own libp2p protocols.
//
// A frame is:
//
//	uvarint  length of what follows (type byte + payload), at most a caller-given bound
//	byte     message type (defined by each protocol)
//	[]byte   payload
//
// The decoder never allocates more than the bound the caller passes, and
// only as the bytes arrive (in 64 KiB chunks, internal/framebuf), so a
// peer cannot make us allocate from an untrusted length: a half-sent frame
// costs what was sent. A Reader on a
// libp2p stream also reserves that memory in the stream's resource scope
// (at low priority), so the resource manager's per-stream, per-protocol,
// per-peer and system limits hold; a refused reservation is ErrMemory and
// the caller resets the stream. Wire never interprets payloads: each
// protocol documents its own message layouts.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/meshwork/meshwork/internal/framebuf"
)

// ErrTooLarge is returned when a frame's declared length exceeds the bound.
var ErrTooLarge = errors.New("frame too large")

// ErrMemory is returned when the resource manager refused a frame's memory.
var ErrMemory = framebuf.ErrMemory

// WriteFrame writes one frame of the given type.
func WriteFrame(w io.Writer, typ byte, payload []byte) error {
	var hdr [binary.MaxVarintLen64 + 1]byte
	n := binary.PutUvarint(hdr[:], uint64(len(payload))+1)
	hdr[n] = typ
	if _, err := w.Write(hdr[:n+1]); err != nil {
		return fmt.Errorf("write frame header: %w", err)
	}
	if _, err := w.Write(payload); err != nil {
		return fmt.Errorf("write frame payload: %w", err)
	}
	return nil
}

// ReadFrame reads one frame whose payload is at most max bytes, with no
// memory accounting (see Reader for streams).
func ReadFrame(r *bufio.Reader, max int) (typ byte, payload []byte, err error) {
	typ, b, err := readFrame(r, max, nil)
	return typ, b.B, err
}

// Reader reads frames from a stream, reserving each frame's memory in the
// stream's resource scope (when it has one: interface{ Scope()
// network.StreamScope }) until the next ReadFrame or Release.
type Reader struct {
	r     *bufio.Reader
	scope framebuf.Scope
	last  framebuf.Buffer
}

// NewReader returns a Reader on s.
func NewReader(s io.Reader) *Reader {
	return &Reader{r: bufio.NewReader(s), scope: framebuf.ScopeOf(s)}
}

// ReadFrame releases the previous frame's memory and reads the next frame,
// whose payload is at most max bytes. The payload's memory is counted in the
// stream's scope until the next ReadFrame or Release; it is never reused, so
// a caller may keep slices of it (they are then simply no longer counted).
func (r *Reader) ReadFrame(max int) (typ byte, payload []byte, err error) {
	r.last.Release()
	typ, r.last, err = readFrame(r.r, max, r.scope)
	return typ, r.last.B, err
}

// Release returns the last frame's memory to the stream's scope.
func (r *Reader) Release() { r.last.Release() }

func readFrame(r *bufio.Reader, max int, scope framebuf.Scope) (byte, framebuf.Buffer, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, framebuf.Buffer{}, io.EOF
		}
		return 0, framebuf.Buffer{}, fmt.Errorf("read frame length: %w", err)
	}
	if n == 0 {
		return 0, framebuf.Buffer{}, fmt.Errorf("read frame: zero length")
	}
	if n-1 > uint64(max) {
		return 0, framebuf.Buffer{}, fmt.Errorf("read frame: %d bytes, limit %d: %w", n-1, max, ErrTooLarge)
	}
	typ, err := r.ReadByte()
	if err != nil {
		return 0, framebuf.Buffer{}, fmt.Errorf("read frame type: %w", io.ErrUnexpectedEOF)
	}
	b, err := framebuf.Read(r, int(n-1), scope)
	if err != nil {
		return 0, framebuf.Buffer{}, fmt.Errorf("read frame body: %w", err)
	}
	return typ, b, nil
}

// AppendBytes appends a uvarint length and b.
func AppendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// ReadBytes reads a uvarint-length-prefixed field from b, returning the field
// and the rest. It fails if the field is longer than the input.
func ReadBytes(b []byte) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, nil, fmt.Errorf("read field length: malformed uvarint")
	}
	b = b[k:]
	if n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("read field: %d bytes declared, %d left", n, len(b))
	}
	return b[:n], b[n:], nil
}
