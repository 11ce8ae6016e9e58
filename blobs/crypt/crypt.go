package crypt

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/meshwork/meshwork/blobs"
)

// Sentinel errors; wrapping errors say what failed. A ciphertext that does
// not decode is also blobs.ErrMalformed; a plaintext that does not hash to
// its ChunkID is blobs.ErrMismatch.
var (
	// ErrOpen means a ciphertext failed authentication: it was altered,
	// or sealed with another folder key (or for another plaintext ID).
	ErrOpen = errors.New("message authentication failed")
	// ErrZeroKey means a zero FolderKey was used (never initialised).
	ErrZeroKey = errors.New("zero folder key")
)

// version is the first byte of every sealed value (format version 1).
const version = 1

// Overhead is how much longer a sealed chunk is than its plaintext.
const Overhead = 1 + chacha20poly1305.Overhead

// MaxSealedChunkSize is the size of a sealed chunk of blobs.MaxChunkSize bytes.
const MaxSealedChunkSize = blobs.MaxChunkSize + Overhead

// MaxNameLen bounds the length of a name given to SealName.
const MaxNameLen = 4096

const namePad = 32

// Contexts of the BLAKE3 key derivations (permanent).
const (
	ctxChunk    = "meshwork crypt v1 chunk"
	ctxManifest = "meshwork crypt v1 manifest"
	ctxName     = "meshwork crypt v1 name"
	ctxNameSIV  = "meshwork crypt v1 name siv"
	ctxRecord   = "meshwork crypt v1 record"
	ctxKeyID    = "meshwork crypt v1 key id"
)

// keyPrefix is the permanent text prefix of a FolderKey.
const keyPrefix = "meshfolderkey"

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// FolderKey is a folder's secret key. It is comparable. Its String form and
// its slog value are the public key ID only; MarshalText gives the secret
// text form "meshfolderkey" + lower-case base32, for key files (write them
// 0600) and for handing the key to a member device.
type FolderKey [32]byte

// NewFolderKey returns a fresh random folder key.
func NewFolderKey() (FolderKey, error) {
	var k FolderKey
	if _, err := rand.Read(k[:]); err != nil {
		return FolderKey{}, fmt.Errorf("new folder key: %w", err)
	}
	return k, nil
}

// IsZero reports whether k is the zero value.
func (k FolderKey) IsZero() bool { return k == FolderKey{} }

// ID returns the key's public 8-byte identifier.
func (k FolderKey) ID() [8]byte {
	var id [8]byte
	blake3.DeriveKey(ctxKeyID, k[:], id[:])
	return id
}

// String returns "folderkey:" and the public key ID in hex, never the key.
func (k FolderKey) String() string { return fmt.Sprintf("folderkey:%x", k.ID()) }

// LogValue implements slog.LogValuer so that logging a key logs its ID only
// (slog would otherwise use MarshalText).
func (k FolderKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalText implements encoding.TextMarshaler. The result is secret.
func (k FolderKey) MarshalText() ([]byte, error) {
	return []byte(keyPrefix + strings.ToLower(b32.EncodeToString(k[:]))), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *FolderKey) UnmarshalText(b []byte) error {
	v, err := ParseFolderKey(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// MarshalBinary implements encoding.BinaryMarshaler: the 32 key bytes.
func (k FolderKey) MarshalBinary() ([]byte, error) { return append([]byte(nil), k[:]...), nil }

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (k *FolderKey) UnmarshalBinary(b []byte) error {
	if len(b) != len(k) {
		return fmt.Errorf("decode folder key: %d bytes, want %d: %w", len(b), len(k), blobs.ErrMalformed)
	}
	copy(k[:], b)
	return nil
}

// ParseFolderKey parses the secret text form of a FolderKey. Error messages
// never quote the input.
func ParseFolderKey(s string) (FolderKey, error) {
	rest, ok := strings.CutPrefix(s, keyPrefix)
	if !ok {
		return FolderKey{}, fmt.Errorf("parse folder key: missing prefix %q: %w", keyPrefix, blobs.ErrMalformed)
	}
	var k FolderKey
	if len(rest) != 52 || strings.ToLower(rest) != rest {
		return FolderKey{}, fmt.Errorf("parse folder key: want 52 lower-case base32 characters: %w", blobs.ErrMalformed)
	}
	n, err := b32.Decode(k[:], []byte(strings.ToUpper(rest)))
	if err != nil || n != len(k) || strings.ToLower(b32.EncodeToString(k[:])) != rest {
		return FolderKey{}, fmt.Errorf("parse folder key: bad base32: %w", blobs.ErrMalformed)
	}
	if k.IsZero() {
		return FolderKey{}, fmt.Errorf("parse folder key: %w", ErrZeroKey)
	}
	return k, nil
}

func (k FolderKey) derive(ctx string) [32]byte {
	var out [32]byte
	blake3.DeriveKey(ctx, k[:], out[:])
	return out
}

// chunkKey returns the key and nonce for the plaintext chunk plainID.
func (k FolderKey) chunkKey(plainID blobs.ChunkID) (key [32]byte, nonce [24]byte) {
	root := k.derive(ctxChunk)
	h, err := blake3.NewKeyed(root[:])
	if err != nil {
		panic(err) // 32-byte key: cannot fail
	}
	h.WriteString("chunk")
	h.Write(plainID[:])
	var out [56]byte
	d := h.Digest()
	d.Read(out[:])
	copy(key[:], out[:32])
	copy(nonce[:], out[32:])
	return key, nonce
}

func newAEAD(key [32]byte) cipher.AEAD {
	a, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		panic(err) // 32-byte key: cannot fail
	}
	return a
}

// SealChunk encrypts the plaintext chunk plain for the folder of k. Equal
// plaintexts give equal results under one key. ctID is the sealed chunk's
// own ChunkID, under which a storage peer stores and verifies it.
func SealChunk(k FolderKey, plain []byte) (sealed []byte, ctID blobs.ChunkID, err error) {
	if k.IsZero() {
		return nil, blobs.ChunkID{}, fmt.Errorf("seal chunk: %w", ErrZeroKey)
	}
	if len(plain) == 0 || len(plain) > blobs.MaxChunkSize {
		return nil, blobs.ChunkID{}, fmt.Errorf("seal chunk: size %d: %w", len(plain), blobs.ErrMalformed)
	}
	plainID := blobs.SumChunk(plain)
	key, nonce := k.chunkKey(plainID)
	out := make([]byte, 1, len(plain)+Overhead)
	out[0] = version
	out = newAEAD(key).Seal(out, nonce[:], plain, out[:1])
	return out, blobs.SumChunk(out), nil
}

// OpenChunk decrypts a sealed chunk whose plaintext has ID plainID, checks
// its tag and that the plaintext hashes to plainID, and returns the plaintext.
func OpenChunk(k FolderKey, plainID blobs.ChunkID, sealed []byte) ([]byte, error) {
	if k.IsZero() {
		return nil, fmt.Errorf("open chunk %v: %w", plainID, ErrZeroKey)
	}
	if len(sealed) <= Overhead || len(sealed) > MaxSealedChunkSize || sealed[0] != version {
		return nil, fmt.Errorf("open chunk %v: bad version or size %d: %w", plainID, len(sealed), blobs.ErrMalformed)
	}
	key, nonce := k.chunkKey(plainID)
	plain, err := newAEAD(key).Open(make([]byte, 0, len(sealed)-Overhead), nonce[:], sealed[1:], sealed[:1])
	if err != nil {
		return nil, fmt.Errorf("open chunk %v with %v: %w", plainID, k, ErrOpen)
	}
	if got := blobs.SumChunk(plain); got != plainID {
		return nil, fmt.Errorf("open chunk %v: plaintext hashes to %v: %w", plainID, got, blobs.ErrMismatch)
	}
	return plain, nil
}

// Chunk is one chunk of a Manifest: the plaintext reference (secret) and the
// sealed chunk's ID (public).
type Chunk struct {
	Plain  blobs.ChunkRef
	Cipher blobs.ChunkID
}

// CipherRef is one entry of a sealed manifest's public part.
type CipherRef struct {
	ID   blobs.ChunkID
	Size uint32 // sealed size: plaintext size + Overhead
}

// Manifest is a blob's chunk list as its owners see it.
type Manifest struct {
	Chunks []Chunk
}

// Plain returns the plaintext manifest (whose Ref is the blob's BlobRef).
func (m Manifest) Plain() blobs.Manifest {
	cs := make([]blobs.ChunkRef, len(m.Chunks))
	for i, c := range m.Chunks {
		cs[i] = c.Plain
	}
	return blobs.Manifest{Chunks: cs}
}

// Cipher returns the storage peer's view: sealed IDs and sizes, in order.
func (m Manifest) Cipher() []CipherRef {
	cs := make([]CipherRef, len(m.Chunks))
	for i, c := range m.Chunks {
		cs[i] = CipherRef{ID: c.Cipher, Size: c.Plain.Size + Overhead}
	}
	return cs
}

// CipherManifest returns the public part as a blobs.Manifest, whose Ref is
// the blob's stable name on a storage peer. (Its chunk sizes may exceed
// blobs.MaxChunkSize, so it does not pass blobs.Manifest.Verify.)
func (m Manifest) CipherManifest() blobs.Manifest {
	cs := make([]blobs.ChunkRef, len(m.Chunks))
	for i, c := range m.Cipher() {
		cs[i] = blobs.ChunkRef{ID: c.ID, Size: c.Size}
	}
	return blobs.Manifest{Chunks: cs}
}

// SealManifest encrypts m: the sealed IDs and sizes stay readable (see
// CipherChunks), the plaintext IDs are encrypted with a random nonce.
func SealManifest(k FolderKey, m Manifest) ([]byte, error) {
	if k.IsZero() {
		return nil, fmt.Errorf("seal manifest: %w", ErrZeroKey)
	}
	if len(m.Chunks) > blobs.MaxManifestChunks {
		return nil, fmt.Errorf("seal manifest: %d chunks: %w", len(m.Chunks), blobs.ErrMalformed)
	}
	plain := m.Plain()
	for i, c := range plain.Chunks {
		if c.Size == 0 || c.Size > blobs.MaxChunkSize {
			return nil, fmt.Errorf("seal manifest: chunk %d has size %d: %w", i, c.Size, blobs.ErrMalformed)
		}
	}
	out := []byte{version}
	out = binary.AppendUvarint(out, uint64(len(m.Chunks)))
	for _, c := range m.Cipher() {
		out = append(out, c.ID[:]...)
		out = binary.BigEndian.AppendUint32(out, c.Size)
	}
	pub := len(out)
	var nonce [24]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("seal manifest: %w", err)
	}
	out = append(out, nonce[:]...)
	pb, _ := plain.MarshalBinary()
	return newAEAD(k.derive(ctxManifest)).Seal(out, nonce[:], pb, out[:pub]), nil
}

// splitManifest decodes the public part and returns it and its length.
func splitManifest(sealed []byte) ([]CipherRef, int, error) {
	if len(sealed) < 1 || sealed[0] != version {
		return nil, 0, fmt.Errorf("unknown version: %w", blobs.ErrMalformed)
	}
	n, k := binary.Uvarint(sealed[1:])
	if k <= 0 || binary.PutUvarint(make([]byte, binary.MaxVarintLen64), n) != k {
		return nil, 0, fmt.Errorf("bad count: %w", blobs.ErrMalformed)
	}
	rest := sealed[1+k:]
	if n > blobs.MaxManifestChunks || uint64(len(rest)) < n*36 {
		return nil, 0, fmt.Errorf("%d chunks in %d bytes: %w", n, len(rest), blobs.ErrMalformed)
	}
	cs := make([]CipherRef, n)
	for i := range cs {
		copy(cs[i].ID[:], rest[36*i:])
		cs[i].Size = binary.BigEndian.Uint32(rest[36*i+32:])
		if cs[i].Size <= Overhead || cs[i].Size > MaxSealedChunkSize {
			return nil, 0, fmt.Errorf("chunk %d has sealed size %d: %w", i, cs[i].Size, blobs.ErrMalformed)
		}
	}
	return cs, 1 + k + int(n)*36, nil
}

// CipherChunks returns the public part of a sealed manifest: what a storage
// peer retains for the blob. It needs no key and checks no tag.
func CipherChunks(sealed []byte) ([]CipherRef, error) {
	cs, _, err := splitManifest(sealed)
	if err != nil {
		return nil, fmt.Errorf("read sealed manifest: %w", err)
	}
	return cs, nil
}

// OpenManifest decrypts and checks a sealed manifest.
func OpenManifest(k FolderKey, sealed []byte) (Manifest, error) {
	if k.IsZero() {
		return Manifest{}, fmt.Errorf("open manifest: %w", ErrZeroKey)
	}
	cs, pub, err := splitManifest(sealed)
	if err != nil {
		return Manifest{}, fmt.Errorf("open manifest: %w", err)
	}
	rest := sealed[pub:]
	if len(rest) < 24+chacha20poly1305.Overhead {
		return Manifest{}, fmt.Errorf("open manifest: short: %w", blobs.ErrMalformed)
	}
	pb, err := newAEAD(k.derive(ctxManifest)).Open(nil, rest[:24], rest[24:], sealed[:pub])
	if err != nil {
		return Manifest{}, fmt.Errorf("open manifest with %v: %w", k, ErrOpen)
	}
	var plain blobs.Manifest
	if err := plain.UnmarshalBinary(pb); err != nil {
		return Manifest{}, fmt.Errorf("open manifest: %w", err)
	}
	if len(plain.Chunks) != len(cs) {
		return Manifest{}, fmt.Errorf("open manifest: %d plaintext and %d sealed chunks: %w", len(plain.Chunks), len(cs), blobs.ErrMalformed)
	}
	m := Manifest{Chunks: make([]Chunk, len(cs))}
	for i, c := range cs {
		if c.Size != plain.Chunks[i].Size+Overhead {
			return Manifest{}, fmt.Errorf("open manifest: chunk %d: sealed size %d for plaintext size %d: %w", i, c.Size, plain.Chunks[i].Size, blobs.ErrMalformed)
		}
		m.Chunks[i] = Chunk{Plain: plain.Chunks[i], Cipher: c.ID}
	}
	return m, nil
}

// SealedName is the text form of a sealed name: "n" + lower-case base32.
// It is comparable and safe as a map key, a file name or an object key.
type SealedName string

const namePrefix = "n"

// SealName encrypts name deterministically (see the package doc).
func SealName(k FolderKey, name string) (SealedName, error) {
	if k.IsZero() {
		return "", fmt.Errorf("seal name: %w", ErrZeroKey)
	}
	if len(name) > MaxNameLen {
		return "", fmt.Errorf("seal name: %d bytes: %w", len(name), blobs.ErrMalformed)
	}
	padded := binary.AppendUvarint(nil, uint64(len(name)))
	padded = append(padded, name...)
	padded = append(padded, make([]byte, (namePad-len(padded)%namePad)%namePad)...)
	nonce := k.nameSIV(padded)
	out := append([]byte{version}, nonce[:]...)
	out = newAEAD(k.derive(ctxName)).Seal(out, nonce[:], padded, out[:1])
	return SealedName(namePrefix + strings.ToLower(b32.EncodeToString(out))), nil
}

func (k FolderKey) nameSIV(padded []byte) [24]byte {
	siv := k.derive(ctxNameSIV)
	h, err := blake3.NewKeyed(siv[:])
	if err != nil {
		panic(err)
	}
	h.Write(padded)
	var nonce [24]byte
	d := h.Digest()
	d.Read(nonce[:])
	return nonce
}

// OpenName decrypts a sealed name.
func OpenName(k FolderKey, s SealedName) (string, error) {
	if k.IsZero() {
		return "", fmt.Errorf("open name: %w", ErrZeroKey)
	}
	rest, ok := strings.CutPrefix(string(s), namePrefix)
	maxLen := b32.EncodedLen(1 + 24 + MaxNameLen + binary.MaxVarintLen64 + namePad + chacha20poly1305.Overhead)
	if !ok || len(rest) > maxLen || strings.ToLower(rest) != rest {
		return "", fmt.Errorf("open name: %w", blobs.ErrMalformed)
	}
	b, err := b32.DecodeString(strings.ToUpper(rest))
	if err != nil || strings.ToLower(b32.EncodeToString(b)) != rest {
		return "", fmt.Errorf("open name: bad base32: %w", blobs.ErrMalformed)
	}
	if len(b) < 1+24+namePad+chacha20poly1305.Overhead || b[0] != version {
		return "", fmt.Errorf("open name: bad version or size: %w", blobs.ErrMalformed)
	}
	padded, err := newAEAD(k.derive(ctxName)).Open(nil, b[1:25], b[25:], b[:1])
	if err != nil {
		return "", fmt.Errorf("open name with %v: %w", k, ErrOpen)
	}
	n, vl := binary.Uvarint(padded)
	if vl <= 0 || n > MaxNameLen || uint64(len(padded)-vl) < n {
		return "", fmt.Errorf("open name: bad length: %w", blobs.ErrMalformed)
	}
	// The synthetic IV fixes the padding: one sealed form per name.
	if siv := k.nameSIV(padded); subtle.ConstantTimeCompare(siv[:], b[1:25]) != 1 {
		return "", fmt.Errorf("open name: synthetic IV mismatch: %w", ErrOpen)
	}
	name := string(padded[vl : vl+int(n)])
	if again, _ := SealName(k, name); again != s {
		return "", fmt.Errorf("open name: non-canonical encoding: %w", blobs.ErrMalformed)
	}
	return name, nil
}

// SealRecord encrypts data (item metadata) with a random nonce, bound to ad
// (pass the item's sealed name).
func SealRecord(k FolderKey, data, ad []byte) ([]byte, error) {
	if k.IsZero() {
		return nil, fmt.Errorf("seal record: %w", ErrZeroKey)
	}
	out := make([]byte, 1+24, 1+24+len(data)+chacha20poly1305.Overhead)
	out[0] = version
	if _, err := rand.Read(out[1:25]); err != nil {
		return nil, fmt.Errorf("seal record: %w", err)
	}
	return newAEAD(k.derive(ctxRecord)).Seal(out, out[1:25], data, recordAD(ad)), nil
}

// OpenRecord decrypts a sealed record bound to ad.
func OpenRecord(k FolderKey, sealed, ad []byte) ([]byte, error) {
	if k.IsZero() {
		return nil, fmt.Errorf("open record: %w", ErrZeroKey)
	}
	if len(sealed) < 1+24+chacha20poly1305.Overhead || sealed[0] != version {
		return nil, fmt.Errorf("open record: bad version or size: %w", blobs.ErrMalformed)
	}
	data, err := newAEAD(k.derive(ctxRecord)).Open(nil, sealed[1:25], sealed[25:], recordAD(ad))
	if err != nil {
		return nil, fmt.Errorf("open record with %v: %w", k, ErrOpen)
	}
	return data, nil
}

func recordAD(ad []byte) []byte { return append([]byte{version}, ad...) }
