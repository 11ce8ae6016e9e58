package blobs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/zeebo/blake3"
)

// randBytes returns n deterministic pseudo-random (incompressible) bytes.
func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1}).Read(b)
	return b
}

func split(t testing.TB, data []byte) Manifest {
	t.Helper()
	m, ref, err := Split(bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Size != int64(len(data)) {
		t.Fatalf("ref size %d, want %d", ref.Size, len(data))
	}
	return m
}

func TestTextForms(t *testing.T) {
	id := SumChunk([]byte("hello"))
	s := id.String()
	if s[:5] != "chunk" || len(s) != 5+52 {
		t.Fatalf("chunk id text %q", s)
	}
	got, err := ParseChunkID(s)
	if err != nil || got != id {
		t.Fatalf("ParseChunkID(%q) = %v, %v", s, got, err)
	}
	var id2 ChunkID
	if err := id2.UnmarshalText([]byte(s)); err != nil || id2 != id {
		t.Fatalf("UnmarshalText: %v", err)
	}
	for _, bad := range []string{"", "chunk", "blob" + s[5:], s + "a", "chunk" + s[5:56] + "1", "CHUNK" + s[5:]} {
		if _, err := ParseChunkID(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseChunkID(%q) err = %v", bad, err)
		}
	}
	m := Manifest{Chunks: []ChunkRef{{ID: id, Size: 5}}}
	ref := m.Ref()
	rs := ref.String()
	r2, err := ParseBlobRef(rs)
	if err != nil || r2 != ref {
		t.Fatalf("ParseBlobRef(%q) = %v, %v", rs, r2, err)
	}
	for _, bad := range []string{rs + "x", rs[:len(rs)-2], "blob-5", rs[:len(rs)-1] + "05", rs[:len(rs)-1] + "-5"} {
		if _, err := ParseBlobRef(bad); err == nil {
			t.Errorf("ParseBlobRef(%q) succeeded", bad)
		}
	}
	if err := m.Verify(ref); err != nil {
		t.Fatal(err)
	}
	m.Chunks[0].Size = 6
	if err := m.Verify(ref); !errors.Is(err, ErrMismatch) {
		t.Fatalf("tampered manifest verified: %v", err)
	}
}

func TestSmallFileIsOneChunk(t *testing.T) {
	for _, n := range []int{1, 1000, MinChunkSize - 1, MinChunkSize} {
		m := split(t, randBytes(1, n))
		if len(m.Chunks) != 1 || m.Chunks[0].Size != uint32(n) {
			t.Errorf("%d bytes: %d chunks", n, len(m.Chunks))
		}
	}
	if m := split(t, nil); len(m.Chunks) != 0 {
		t.Errorf("empty input: %d chunks", len(m.Chunks))
	}
}

func TestChunkSizes(t *testing.T) {
	data := randBytes(2, 64<<20)
	m := split(t, data)
	var off int
	for i, c := range m.Chunks {
		if (c.Size < MinChunkSize && i != len(m.Chunks)-1) || c.Size > MaxChunkSize {
			t.Errorf("chunk %d size %d", i, c.Size)
		}
		if SumChunk(data[off:off+int(c.Size)]) != c.ID {
			t.Fatalf("chunk %d id mismatch", i)
		}
		off += int(c.Size)
	}
	avg := len(data) / len(m.Chunks)
	t.Logf("64 MiB: %d chunks, average %d KiB", len(m.Chunks), avg>>10)
	if avg < 512<<10 || avg > 2<<20 {
		t.Errorf("average chunk size %d far from %d", avg, AvgChunkSize)
	}
}

func changed(a, b Manifest) int {
	old := make(map[ChunkID]bool)
	for _, c := range a.Chunks {
		old[c.ID] = true
	}
	n := 0
	for _, c := range b.Chunks {
		if !old[c.ID] {
			n++
		}
	}
	return n
}

// TestInsertStability is the acceptance test: one byte inserted at the start
// (or anywhere) of a 64 MiB file changes at most 2 chunks.
func TestInsertStability(t *testing.T) {
	data := randBytes(3, 64<<20)
	base := split(t, data)
	r := rand.New(rand.NewPCG(4, 5))
	positions := []int{0, len(data) - 1, r.IntN(len(data))}
	for i, pos := range positions {
		ins := make([]byte, 0, len(data)+1)
		ins = append(ins, data[:pos]...)
		ins = append(ins, 0x5a)
		ins = append(ins, data[pos:]...)
		if n := changed(base, split(t, ins)); n > 2 {
			t.Errorf("insert at %d changed %d chunks", pos, n)
		}
		if i == 1 {
			continue
		}
		del := append(append([]byte(nil), data[:pos]...), data[pos+1:]...)
		if n := changed(base, split(t, del)); n > 2 {
			t.Errorf("delete at %d changed %d chunks", pos, n)
		}
	}
}

// TestSharedContent: identical content at different offsets of different
// streams yields the same chunks.
func TestSharedContent(t *testing.T) {
	shared := randBytes(6, 16<<20)
	a := append(randBytes(7, 3<<20+17), shared...)
	b := append(append(randBytes(8, 777), shared...), randBytes(9, 5<<20)...)
	ma, mb := split(t, a), split(t, b)
	inA := make(map[ChunkID]bool)
	for _, c := range ma.Chunks {
		inA[c.ID] = true
	}
	var sharedBytes int
	for _, c := range mb.Chunks {
		if inA[c.ID] {
			sharedBytes += int(c.Size)
		}
	}
	t.Logf("a: %d chunks, b: %d chunks, %d bytes shared", len(ma.Chunks), len(mb.Chunks), sharedBytes)
	// Only the chunks straddling the two edges of the shared region may differ.
	if sharedBytes < len(shared)-2*MaxChunkSize {
		t.Errorf("only %d of %d bytes shared", sharedBytes, len(shared))
	}
}

// TestChunkerFrozen pins chunking version 1: if this fails, every BlobRef
// ever shipped changes.
func TestChunkerFrozen(t *testing.T) {
	m := split(t, randBytes(10, 8<<20))
	var sizes []uint32
	for _, c := range m.Chunks {
		sizes = append(sizes, c.Size)
	}
	t.Logf("sizes %v ref %v", sizes, m.Ref())
	if got, want := m.Ref().String(), frozenRef; want != "" && got != want {
		t.Fatalf("chunking v1 changed: ref %s, want %s", got, want)
	}
}

func TestManifestBinary(t *testing.T) {
	m := split(t, randBytes(11, 5<<20))
	b, _ := m.MarshalBinary()
	var m2 Manifest
	if err := m2.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if m2.Ref() != m.Ref() {
		t.Fatal("round trip changed manifest")
	}
	for i := range b {
		if err := m2.UnmarshalBinary(b[:i]); err == nil {
			t.Fatalf("truncated at %d decoded", i)
		}
	}
}

func FuzzManifest(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0})
	m := Manifest{Chunks: []ChunkRef{{ID: SumChunk([]byte("a")), Size: 1}, {ID: SumChunk([]byte("b")), Size: MaxChunkSize}}}
	b, _ := m.MarshalBinary()
	f.Add(b)
	f.Add([]byte{1, 0x80, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Manifest
		if err := m.UnmarshalBinary(b); err != nil {
			return
		}
		b2, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip: %x != %x", b, b2)
		}
		if err := m.Verify(m.Ref()); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseRefs(f *testing.F) {
	f.Add(SumChunk(nil).String())
	f.Add(Manifest{}.Ref().String())
	f.Add("blob-0")
	f.Fuzz(func(t *testing.T, s string) {
		if id, err := ParseChunkID(s); err == nil && id.String() != s {
			t.Fatalf("chunk id %q round-trips to %q", s, id.String())
		}
		if r, err := ParseBlobRef(s); err == nil && r.String() != s {
			t.Fatalf("blob ref %q round-trips to %q", s, r.String())
		}
	})
}

const benchSize = 256 << 20

func BenchmarkChunkAndHash(b *testing.B) {
	data := randBytes(20, benchSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := Split(bytes.NewReader(data), nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChunkOnly(b *testing.B) {
	data := randBytes(20, benchSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		c := NewChunker(bytes.NewReader(data))
		for {
			if _, _, err := c.Next(); err == io.EOF {
				break
			}
		}
	}
}

func BenchmarkSHA256(b *testing.B) {
	data := randBytes(20, benchSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		h := sha256.New()
		for off := 0; off < len(data); off += 1 << 20 {
			h.Write(data[off : off+1<<20])
		}
		h.Sum(nil)
	}
}

func BenchmarkBLAKE3(b *testing.B) {
	data := randBytes(20, benchSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		for off := 0; off < len(data); off += 1 << 20 {
			SumChunk(data[off : off+1<<20])
		}
	}
}

// BenchmarkRawRead is the floor: copying the bytes through a 1 MiB buffer.
func BenchmarkRawRead(b *testing.B) {
	data := randBytes(20, benchSize)
	buf := make([]byte, 1<<20)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{bytes.NewReader(data)}, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// TestManifestRefReusesHashers checks that Ref, whose hashers are pooled,
// gives each manifest the hash a fresh derive-key hasher gives it, however
// calls are interleaved.
func TestManifestRefReusesHashers(t *testing.T) {
	want := func(m Manifest) BlobRef {
		h := blake3.NewDeriveKey(manifestContext)
		var buf [36]byte
		var r BlobRef
		for _, c := range m.Chunks {
			copy(buf[:32], c.ID[:])
			binary.BigEndian.PutUint32(buf[32:], c.Size)
			h.Write(buf[:])
			r.Size += int64(c.Size)
		}
		h.Sum(r.Hash[:0])
		return r
	}
	var ms []Manifest
	for i := 0; i < 5; i++ {
		var m Manifest
		for j := 0; j <= i*300; j++ { // up to 1,201 chunks: past the hasher's 8 KiB buffer
			m.Chunks = append(m.Chunks, ChunkRef{ID: SumChunk([]byte{byte(i), byte(j), byte(j >> 8)}), Size: uint32(j + 1)})
		}
		ms = append(ms, m)
	}
	for round := 0; round < 3; round++ {
		for i := len(ms) - 1; i >= 0; i-- {
			if got, w := ms[i].Ref(), want(ms[i]); got != w {
				t.Fatalf("round %d manifest %d: Ref %v, want %v", round, i, got, w)
			}
		}
	}
}
