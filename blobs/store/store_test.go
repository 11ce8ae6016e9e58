package store

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/meshwork/meshwork/blobs"
)

func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 2}).Read(b)
	return b
}

func newTestStore(t testing.TB) *Store {
	t.Helper()
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "db")).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := Open(db, []byte("blobs/"), filepath.Join(dir, "chunks"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func countChunks(t testing.TB, s *Store) int {
	t.Helper()
	n := 0
	if err := s.Enumerate(context.Background(), func(blobs.ChunkID, uint32) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func chunkFiles(t testing.TB, s *Store) int {
	t.Helper()
	n := 0
	filepath.WalkDir(s.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// TestDedupAcrossFiles: identical content in two files (at different
// offsets) is indexed once, and no chunk is copied out of the files.
func TestDedupAcrossFiles(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	dir := t.TempDir()
	shared := randBytes(1, 8<<20)
	writeFile(t, filepath.Join(dir, "a"), append(randBytes(2, 300<<10), shared...))
	writeFile(t, filepath.Join(dir, "b"), append(append(randBytes(3, 5000), shared...), randBytes(4, 2<<20)...))
	writeFile(t, filepath.Join(dir, "c"), shared)
	res, err := s.AddFolder(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	distinct := make(map[blobs.ChunkID]bool)
	total := 0
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		for _, c := range r.Manifest.Chunks {
			distinct[c.ID] = true
			total++
		}
	}
	if got := countChunks(t, s); got != len(distinct) || got >= total {
		t.Fatalf("index has %d chunks; %d distinct of %d listed", got, len(distinct), total)
	}
	if n := chunkFiles(t, s); n != 0 {
		t.Fatalf("AddFolder copied %d chunks into the chunk store", n)
	}
	// Every chunk reads back verified from a file.
	for id := range distinct {
		if _, err := s.Get(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Re-adding an unchanged file does not rehash and gives the same ref.
	m, ref, err := s.AddFile(ctx, filepath.Join(dir, "c"))
	if err != nil || ref != res[2].Ref || m.Ref() != ref {
		t.Fatalf("re-add: %v %v", ref, err)
	}
}

// TestEditedBehindOurBack: a file rewritten in place with the same size and
// mtime is not served as the old chunk, and the next AddFile rehashes it.
func TestEditedBehindOurBack(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	path := filepath.Join(t.TempDir(), "f")
	data := randBytes(5, 3<<20)
	writeFile(t, path, data)
	m, ref, err := s.AddFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Chunks) < 2 {
		t.Fatalf("want several chunks, got %d", len(m.Chunks))
	}
	fi, _ := os.Stat(path)
	edited := append([]byte(nil), data...)
	edited[10] ^= 0xff // inside chunk 0
	writeFile(t, path, edited)
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, m.Chunks[0].ID, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("edited chunk served: err = %v", err)
	}
	if ok, _ := s.Has(ctx, m.Chunks[0].ID); ok {
		t.Fatal("stale location still indexed")
	}
	if got, err := s.Get(ctx, m.Chunks[1].ID, nil); err != nil || blobs.SumChunk(got) != m.Chunks[1].ID {
		t.Fatalf("untouched chunk: %v", err)
	}
	_, ref2, err := s.AddFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if ref2 == ref {
		t.Fatal("AddFile returned the stale manifest")
	}
}

func TestPinPutGC(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	keep := randBytes(6, 2<<20)
	drop := randBytes(7, 2<<20)
	mk, _, _ := blobs.Split(bytes.NewReader(keep), nil)
	md, refD, _ := blobs.Split(bytes.NewReader(drop), nil)
	for _, x := range []struct {
		m    blobs.Manifest
		data []byte
	}{{mk, keep}, {md, drop}} {
		if _, err := s.Pin(ctx, x.m); err != nil {
			t.Fatal(err)
		}
		off := 0
		for _, c := range x.m.Chunks {
			if err := s.Put(ctx, c.ID, x.data[off:off+int(c.Size)]); err != nil {
				t.Fatal(err)
			}
			off += int(c.Size)
		}
	}
	if err := s.Put(ctx, mk.Chunks[0].ID, drop[:100]); !errors.Is(err, blobs.ErrMismatch) {
		t.Fatalf("bad chunk accepted: %v", err)
	}
	// An unpinned, unreferenced chunk.
	stray := randBytes(8, 1000)
	if err := s.Put(ctx, blobs.SumChunk(stray), stray); err != nil {
		t.Fatal(err)
	}
	before := countChunks(t, s)
	st, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Chunks != 1 || countChunks(t, s) != before-1 {
		t.Fatalf("gc of stray: %+v, %d -> %d chunks", st, before, countChunks(t, s))
	}
	if err := s.Unpin(ctx, refD); err != nil {
		t.Fatal(err)
	}
	st, err = s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Chunks != len(md.Chunks) || st.Bytes != int64(len(drop)) {
		t.Fatalf("gc after unpin: %+v, want %d chunks", st, len(md.Chunks))
	}
	if got, want := chunkFiles(t, s), len(mk.Chunks); got != want {
		t.Fatalf("%d chunk files left, want %d", got, want)
	}
	for _, c := range mk.Chunks {
		if _, err := s.Get(ctx, c.ID, nil); err != nil {
			t.Fatalf("pinned chunk lost: %v", err)
		}
	}
	if _, err := s.Get(ctx, md.Chunks[0].ID, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("collected chunk still served: %v", err)
	}
	// Removing the last file of a blob makes its chunk locations collectable.
	path := filepath.Join(t.TempDir(), "f")
	writeFile(t, path, drop)
	if _, _, err := s.AddFile(ctx, path); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveFile(ctx, path); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(ctx, md.Chunks[0].ID); ok {
		t.Fatal("removed file still a location")
	}
}

func TestMaterialize(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	dir := t.TempDir()
	// Half the blob comes from a synced file, half from the chunk store.
	data := randBytes(9, 6<<20)
	src := filepath.Join(dir, "src")
	writeFile(t, src, data[:3<<20])
	if _, _, err := s.AddFile(ctx, src); err != nil {
		t.Fatal(err)
	}
	m, ref, _ := blobs.Split(bytes.NewReader(data), nil)
	target := filepath.Join(dir, "sub", "target")
	if err := os.Mkdir(filepath.Dir(target), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pin(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.Materialize(ctx, m, target, nil); !errors.Is(err, ErrMissing) {
		t.Fatalf("materialize with missing chunks: %v", err)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("target written despite missing chunks")
	}
	off := 0
	for _, c := range m.Chunks {
		if err := s.Put(ctx, c.ID, data[off:off+int(c.Size)]); err != nil {
			t.Fatal(err)
		}
		off += int(c.Size)
	}
	var last blobs.Progress
	if err := s.Materialize(ctx, m, target, func(p blobs.Progress) { last = p }); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(target)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("target content differs: %v", err)
	}
	if last.DoneBytes != ref.Size || last.Fraction() != 1 {
		t.Fatalf("progress %+v", last)
	}
	if n := chunkFiles(t, s); n != 0 {
		t.Fatalf("%d chunk-store copies kept beside the materialised file", n)
	}
	if err := s.Unpin(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Chunks {
		if _, err := s.Get(ctx, c.ID, nil); err != nil {
			t.Fatalf("chunk of materialised file: %v", err)
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(target))
	if len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
}

func BenchmarkAddFolder(b *testing.B) {
	dir := b.TempDir()
	const files, size = 8, 32 << 20
	for i := range files {
		writeFile(b, filepath.Join(dir, string(rune('a'+i))), randBytes(uint64(100+i), size))
	}
	b.SetBytes(files * size)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		s := newTestStore(b)
		b.StartTimer()
		if _, err := s.AddFolder(context.Background(), dir); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHolders: a blob's holders are the files that retain it, open
// partials included; a file removed from the index no longer holds it.
func TestHolders(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	dir := t.TempDir()
	data := randBytes(50, 300<<10)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m, ref, err := s.AddFile(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddFile(ctx, b); err != nil {
		t.Fatal(err)
	}
	p, err := s.OpenPartial(ctx, m, filepath.Join(dir, "c"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got, err := s.Holders(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []string{a, b, p.Path()}; !slices.Equal(got, sortedCopy(want)) {
		t.Fatalf("holders %q, want %q", got, want)
	}
	if err := s.RemoveFile(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Holders(ctx, ref)
	if slices.Contains(got, a) || !slices.Contains(got, b) {
		t.Fatalf("after removing %s: holders %q", a, got)
	}
	other, _ := s.Holders(ctx, blobs.BlobRef{Size: 1})
	if len(other) != 0 {
		t.Fatalf("an unknown blob has holders %q", other)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// TestRemoveFilesUnder: the files indexed under a directory are forgotten,
// those beside it (a sibling whose name has the directory's as a prefix)
// are not, and the files stay on disk.
func TestRemoveFilesUnder(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	root := t.TempDir()
	in := []string{filepath.Join(root, "docs", "a"), filepath.Join(root, "docs", "sub", "b")}
	out := []string{filepath.Join(root, "docs2", "c"), filepath.Join(root, "d")}
	refs := map[string]blobs.BlobRef{}
	for i, p := range append(slices.Clone(in), out...) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, randBytes(uint64(60+i), 10<<10), 0o600); err != nil {
			t.Fatal(err)
		}
		_, ref, err := s.AddFile(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		refs[p] = ref
	}
	n, err := s.RemoveFilesUnder(ctx, filepath.Join(root, "docs")+"/")
	if err != nil || n != len(in) {
		t.Fatalf("removed %d, %v; want %d", n, err, len(in))
	}
	for _, p := range in {
		if h, _ := s.Holders(ctx, refs[p]); len(h) != 0 {
			t.Errorf("%s still indexed: holders %q", p, h)
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range out {
		if h, _ := s.Holders(ctx, refs[p]); !slices.Equal(h, []string{p}) {
			t.Errorf("%s outside the directory: holders %q", p, h)
		}
	}
}
