package blobs

import (
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/zeebo/blake3"
)

// Sentinel errors; wrapping errors say which input was at fault.
var (
	ErrMalformed = errors.New("malformed")
	ErrMismatch  = errors.New("hash mismatch")
)

// Permanent text prefixes.
const (
	chunkPrefix = "chunk"
	blobPrefix  = "blob"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

const b32Len = 52 // base32 length of 32 bytes without padding

// ChunkID is the BLAKE3-256 hash of a chunk's bytes.
type ChunkID [32]byte

// SumChunk returns the ID of data.
func SumChunk(data []byte) ChunkID { return ChunkID(blake3.Sum256(data)) }

// String returns the text form, "chunk" followed by base32.
func (id ChunkID) String() string { return chunkPrefix + strings.ToLower(b32.EncodeToString(id[:])) }

// IsZero reports whether id is the zero value.
func (id ChunkID) IsZero() bool { return id == ChunkID{} }

// MarshalText implements encoding.TextMarshaler.
func (id ChunkID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ChunkID) UnmarshalText(b []byte) error {
	v, err := ParseChunkID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseChunkID parses the text form of a ChunkID.
func ParseChunkID(s string) (ChunkID, error) {
	var id ChunkID
	if err := parseHash(s, chunkPrefix, id[:]); err != nil {
		return ChunkID{}, fmt.Errorf("parse chunk id %q: %w", s, err)
	}
	return id, nil
}

func parseHash(s, prefix string, out []byte) error {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return fmt.Errorf("missing prefix %q: %w", prefix, ErrMalformed)
	}
	if len(rest) != b32Len || strings.ToLower(rest) != rest {
		return fmt.Errorf("want %d lower-case base32 characters: %w", b32Len, ErrMalformed)
	}
	n, err := b32.Decode(out, []byte(strings.ToUpper(rest)))
	if err != nil || n != len(out) {
		return fmt.Errorf("bad base32: %w", ErrMalformed)
	}
	// The last character carries unused low bits that decoding ignores:
	// accept only the canonical form, so each value has one text form.
	if strings.ToLower(b32.EncodeToString(out)) != rest {
		return fmt.Errorf("non-canonical base32 (unused trailing bits set): %w", ErrMalformed)
	}
	return nil
}

// ChunkRef is one entry of a Manifest.
type ChunkRef struct {
	ID   ChunkID
	Size uint32
}

// BlobRef names a blob: the manifest hash and the total size in bytes.
// It is comparable and usable as a map key.
type BlobRef struct {
	Hash [32]byte
	Size int64
}

// IsZero reports whether r is the zero value (not the empty blob).
func (r BlobRef) IsZero() bool { return r == BlobRef{} }

// String returns "blob<base32>-<size>".
func (r BlobRef) String() string {
	return blobPrefix + strings.ToLower(b32.EncodeToString(r.Hash[:])) + "-" + strconv.FormatInt(r.Size, 10)
}

// MarshalText implements encoding.TextMarshaler.
func (r BlobRef) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *BlobRef) UnmarshalText(b []byte) error {
	v, err := ParseBlobRef(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// ParseBlobRef parses the text form of a BlobRef.
func ParseBlobRef(s string) (BlobRef, error) {
	var r BlobRef
	h, sz, ok := strings.Cut(s, "-")
	if !ok {
		return BlobRef{}, fmt.Errorf("parse blob ref %q: missing size: %w", s, ErrMalformed)
	}
	if err := parseHash(h, blobPrefix, r.Hash[:]); err != nil {
		return BlobRef{}, fmt.Errorf("parse blob ref %q: %w", s, err)
	}
	n, err := strconv.ParseInt(sz, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != sz {
		return BlobRef{}, fmt.Errorf("parse blob ref %q: bad size: %w", s, ErrMalformed)
	}
	r.Size = n
	return r, nil
}

// Manifest is the ordered chunk list of a blob.
type Manifest struct {
	Chunks []ChunkRef
}

const manifestContext = "meshwork blobs v1 manifest"

// manifestHashers keeps derive-key hashers for Ref: a hasher is ~10 KiB, and
// Ref runs several times for every file a folder syncs.
var manifestHashers = sync.Pool{New: func() any { return blake3.NewDeriveKey(manifestContext) }}

// EmptyRef is the ref of empty content: a manifest without chunks, size 0.
// Its manifest is known everywhere and never needs storing or fetching.
var EmptyRef = Manifest{}.Ref()

// Ref computes the BlobRef the manifest names.
func (m Manifest) Ref() BlobRef {
	h := manifestHashers.Get().(*blake3.Hasher)
	defer manifestHashers.Put(h)
	h.Reset()
	var buf [36]byte
	var total int64
	for _, c := range m.Chunks {
		copy(buf[:32], c.ID[:])
		binary.BigEndian.PutUint32(buf[32:], c.Size)
		h.Write(buf[:])
		total += int64(c.Size)
	}
	var r BlobRef
	h.Sum(r.Hash[:0])
	r.Size = total
	return r
}

// Size returns the total size of the blob in bytes.
func (m Manifest) Size() int64 {
	var n int64
	for _, c := range m.Chunks {
		n += int64(c.Size)
	}
	return n
}

// Verify checks that m is well formed (every chunk 1..MaxChunkSize bytes) and
// names ref.
func (m Manifest) Verify(ref BlobRef) error {
	for i, c := range m.Chunks {
		if c.Size == 0 || c.Size > MaxChunkSize {
			return fmt.Errorf("verify manifest of %v: chunk %d has size %d: %w", ref, i, c.Size, ErrMalformed)
		}
	}
	if got := m.Ref(); got != ref {
		return fmt.Errorf("verify manifest of %v: manifest names %v: %w", ref, got, ErrMismatch)
	}
	return nil
}

// manifestVersion is the first byte of the binary manifest encoding.
const manifestVersion = 1

// MaxManifestChunks bounds the chunks a decoded manifest may hold
// (at the average chunk size, a blob of about 16 TiB).
const MaxManifestChunks = 1 << 24

// MarshalBinary encodes m as: version byte (1), uvarint chunk count, then per
// chunk its 32-byte ID and its size as a big-endian uint32.
func (m Manifest) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, 1+binary.MaxVarintLen64+36*len(m.Chunks)))
}

// AppendBinary appends the binary encoding of m to b.
func (m Manifest) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, manifestVersion)
	b = binary.AppendUvarint(b, uint64(len(m.Chunks)))
	for _, c := range m.Chunks {
		b = append(b, c.ID[:]...)
		b = binary.BigEndian.AppendUint32(b, c.Size)
	}
	return b, nil
}

// UnmarshalBinary decodes the encoding of MarshalBinary. It never allocates
// more than the input's length justifies.
func (m *Manifest) UnmarshalBinary(b []byte) error {
	if len(b) < 1 || b[0] != manifestVersion {
		return fmt.Errorf("decode manifest: unknown version: %w", ErrMalformed)
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 {
		return fmt.Errorf("decode manifest: bad count: %w", ErrMalformed)
	}
	rest := b[1+k:]
	if n > MaxManifestChunks || uint64(len(rest)) != n*36 {
		return fmt.Errorf("decode manifest: %d chunks in %d bytes: %w", n, len(rest), ErrMalformed)
	}
	// Reject non-minimal varints so that encodings are canonical.
	if binary.PutUvarint(make([]byte, binary.MaxVarintLen64), n) != k {
		return fmt.Errorf("decode manifest: non-minimal count: %w", ErrMalformed)
	}
	cs := make([]ChunkRef, n)
	for i := range cs {
		copy(cs[i].ID[:], rest[36*i:])
		cs[i].Size = binary.BigEndian.Uint32(rest[36*i+32:])
		if cs[i].Size == 0 || cs[i].Size > MaxChunkSize {
			return fmt.Errorf("decode manifest: chunk %d has size %d: %w", i, cs[i].Size, ErrMalformed)
		}
	}
	m.Chunks = cs
	return nil
}
