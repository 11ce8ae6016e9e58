package store

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/meshwork/meshwork/blobs"
)

func TestPartial(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	dir := t.TempDir()
	// The blob repeats a 1 MiB block, so a chunk appears at two offsets;
	// part of it is already in a synced file.
	block := randBytes(20, 600<<10)
	data := append(append(append([]byte(nil), block...), randBytes(21, 4<<20)...), block...)
	data = append(data, randBytes(22, 2<<20)...)
	m, ref, _ := blobs.Split(bytes.NewReader(data), nil)
	chunkData := func(i int) []byte {
		var off int
		for _, c := range m.Chunks[:i] {
			off += int(c.Size)
		}
		return data[off : off+int(m.Chunks[i].Size)]
	}
	local := filepath.Join(dir, "local")
	writeFile(t, local, chunkData(len(m.Chunks)-1))
	if _, _, err := s.AddFile(ctx, local); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target")
	p, err := s.OpenPartial(ctx, m, target)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Put(ctx, m.Chunks[0].ID, chunkData(1)); !errors.Is(err, blobs.ErrMismatch) {
		t.Fatalf("wrong bytes accepted: %v", err)
	}
	if err := p.Put(ctx, m.Chunks[0].ID, chunkData(0)); err != nil {
		t.Fatal(err)
	}
	p.Close()
	// Reopen (resume): the chunk written is still known, the rest is not.
	p, err = s.OpenPartial(ctx, m, target)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if ok, _ := s.Has(ctx, m.Chunks[0].ID); !ok {
		t.Fatal("resumed partial lost its chunk")
	}
	miss, _ := s.Missing(ctx, m)
	if err := p.Commit(ctx); !errors.Is(err, ErrMissing) {
		t.Fatalf("commit with %d missing: %v", len(miss), err)
	}
	for i, c := range m.Chunks {
		if ok, _ := s.Has(ctx, c.ID); !ok {
			if err := p.Put(ctx, c.ID, chunkData(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Tamper with the partial file behind our back: Commit must notice.
	f, _ := os.OpenFile(p.Path(), os.O_RDWR, 0)
	f.WriteAt([]byte{0xff ^ data[5]}, 5)
	f.Close()
	if err := p.Commit(ctx); !errors.Is(err, ErrMissing) {
		t.Fatalf("commit of tampered partial: %v", err)
	}
	if ok, _ := s.Has(ctx, m.Chunks[0].ID); ok {
		t.Fatal("tampered chunk still indexed")
	}
	if err := p.Put(ctx, m.Chunks[0].ID, chunkData(0)); err != nil {
		t.Fatal(err)
	}
	if err := p.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(target)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("target differs: %v", err)
	}
	if chunkFiles(t, s) != 0 {
		t.Fatal("partial used the chunk store")
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Chunks {
		if _, err := s.Get(ctx, c.ID, nil); err != nil {
			t.Fatalf("chunk after commit: %v", err)
		}
	}
	if _, b, err := s.AddFile(ctx, target); err != nil || b != ref {
		t.Fatalf("re-add committed file: %v %v", b, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("directory holds %d entries, want local and target", len(ents))
	}

	// Abort removes everything.
	p2, err := s.OpenPartial(ctx, m, filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p2.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("aborted partial left behind")
	}
}

// TestPartialDirectWrites writes a blob of unaligned content-defined chunks
// in a shuffled order, with direct writes on and off, and checks the
// committed file byte for byte (the direct middles and buffered edges of
// neighbouring chunks must meet exactly). With direct writes, chunks are
// handed over once placed at their file offset within a page (each middle
// is written without a copy) and once misplaced (each is copied).
func TestPartialDirectWrites(t *testing.T) {
	ctx := context.Background()
	data := randBytes(30, 9<<20+12345)
	m, _, err := blobs.Split(bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	offs := make([]int, len(m.Chunks))
	for i := 1; i < len(m.Chunks); i++ {
		offs[i] = offs[i-1] + int(m.Chunks[i-1].Size)
	}
	// Each chunk is handed to Put from its own buffer, at its file
	// offset's place within a page ("placed": written without a copy) or
	// one byte past it (copied into an aligned buffer first).
	chunkAt := func(i int, shift int) []byte {
		c := m.Chunks[i]
		buf := make([]byte, int(c.Size)+2*directAlign)
		base := int(uintptr(unsafe.Pointer(&buf[0])) & uintptr(directAlign-1))
		at := (directAlign - base + offs[i]%directAlign + shift) % directAlign
		return append(buf[at:at], data[offs[i]:offs[i]+int(c.Size)]...)
	}
	for _, mode := range []struct {
		name   string
		direct bool
		shift  int
	}{{"direct placed", true, 0}, {"direct misplaced", true, 1}, {"buffered", false, 0}} {
		s := newTestStore(t)
		s.SetDirectWrites(mode.direct)
		target := filepath.Join(t.TempDir(), "target")
		p, err := s.OpenPartial(ctx, m, target)
		if err != nil {
			t.Fatal(err)
		}
		inPlace := inPlaceWrites.Load()
		for _, i := range rand.Perm(len(m.Chunks)) {
			if err := p.Put(ctx, m.Chunks[i].ID, chunkAt(i, mode.shift)); err != nil {
				t.Fatal(err)
			}
		}
		inPlace = inPlaceWrites.Load() - inPlace
		if mode.direct && p.df == nil {
			t.Logf("O_DIRECT not available in %s: buffered writes only", filepath.Dir(target))
		}
		if !mode.direct && p.df != nil {
			t.Fatal("direct writes turned off but a direct descriptor was opened")
		}
		if mode.direct && p.df != nil {
			if p.noDf.Load() {
				t.Fatalf("%s: a direct write was refused on a filesystem that opened O_DIRECT", mode.name)
			}
			var want int64 // chunks written directly, if placed
			for _, c := range m.Chunks {
				if c.Size >= minDirect && mode.shift == 0 {
					want++
				}
			}
			if inPlace != want {
				t.Fatalf("%s: %d of %d chunks written without a copy, want %d", mode.name, inPlace, len(m.Chunks), want)
			}
		}
		if err := p.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(target)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: committed file differs from the blob", mode.name)
		}
	}
}

// TestCommitAs: the committed file has the given permission bits and
// modification time (to the nanosecond), and the returned FileInfo is the
// target's.
func TestCommitAs(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	data := randBytes(31, 70<<10)
	m, _, err := blobs.Split(bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "target")
	p, err := s.OpenPartial(ctx, m, target)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Put(ctx, m.Chunks[0].ID, data); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2019, 3, 4, 5, 6, 7, 123456789, time.UTC)
	fi, err := p.CommitAs(ctx, 0o751, mtime)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.Lstat(target)
	if err != nil {
		t.Fatal(err)
	}
	if got.Mode().Perm() != 0o751 || !got.ModTime().Equal(mtime) || got.Size() != int64(len(data)) {
		t.Fatalf("committed file: mode %v mtime %v size %d; want 0751, %v, %d", got.Mode(), got.ModTime(), got.Size(), mtime, len(data))
	}
	if !os.SameFile(fi, got) || !fi.ModTime().Equal(got.ModTime()) || fi.Mode() != got.Mode() {
		t.Fatalf("CommitAs returned %v %v %v, the target is %v %v %v", fi.Mode(), fi.ModTime(), fi.Size(), got.Mode(), got.ModTime(), got.Size())
	}
}

// TestCommitDropsStoreCopies: chunks held in the chunk store and committed
// into a file through a Partial are kept once, in the file, and still read.
func TestCommitDropsStoreCopies(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	data := randBytes(40, 3<<20)
	m, _, err := blobs.Split(bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for i, c := range m.Chunks {
		if i%2 == 0 { // half from the store, half sent to the partial
			if err := s.Put(ctx, c.ID, data[off:off+int(c.Size)]); err != nil {
				t.Fatal(err)
			}
		}
		off += int(c.Size)
	}
	if n := chunkFiles(t, s); n == 0 {
		t.Fatal("no chunk in the chunk store to begin with")
	}
	target := filepath.Join(t.TempDir(), "target")
	p, err := s.OpenPartial(ctx, m, target)
	if err != nil {
		t.Fatal(err)
	}
	off = 0
	for i, c := range m.Chunks {
		if i%2 == 1 {
			if err := p.Put(ctx, c.ID, data[off:off+int(c.Size)]); err != nil {
				t.Fatal(err)
			}
		}
		off += int(c.Size)
	}
	if err := p.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(target); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("committed file differs: %v", err)
	}
	if n := chunkFiles(t, s); n != 0 {
		t.Fatalf("%d chunk-store copies kept beside the committed file", n)
	}
	for _, c := range m.Chunks {
		if _, err := s.Get(ctx, c.ID, nil); err != nil {
			t.Fatalf("chunk %v after commit: %v", c.ID, err)
		}
	}
}

// TestCommitExpectTarget: a commit renames over its target only if the
// target is still what ExpectTarget saw; an edit made after the check is
// left as it is (ErrTargetChanged), and the partial file can be committed
// once the caller has looked again.
func TestCommitExpectTarget(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	data := randBytes(32, 70<<10)
	m, _, err := blobs.Split(bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "target")
	open := func() *Partial {
		t.Helper()
		p, err := s.OpenPartial(ctx, m, target)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		if err := p.Put(ctx, m.Chunks[0].ID, data); err != nil {
			t.Fatal(err)
		}
		return p
	}
	edit := func(content string) fs.FileInfo {
		t.Helper()
		if err := os.WriteFile(target, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(target)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}

	// Checked absent; a file appears before the commit.
	p := open()
	p.ExpectTarget(nil)
	edit("a local edit\n")
	if _, err := p.CommitAs(ctx, 0, time.Time{}); !errors.Is(err, ErrTargetChanged) {
		t.Fatalf("commit over a file that appeared: %v, want ErrTargetChanged", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "a local edit\n" {
		t.Fatalf("the edit was replaced: %q", b)
	}

	// Checked as it was; edited again (another size) before the commit.
	fi := edit("a local edit\n")
	p = open()
	p.ExpectTarget(fi)
	edit("edited once more, longer\n")
	if _, err := p.CommitAs(ctx, 0, time.Time{}); !errors.Is(err, ErrTargetChanged) {
		t.Fatalf("commit over a file edited after the check: %v, want ErrTargetChanged", err)
	}

	// Checked as it is now: the commit goes through.
	fi, err = os.Lstat(target)
	if err != nil {
		t.Fatal(err)
	}
	p = open()
	p.ExpectTarget(fi)
	if _, err := p.CommitAs(ctx, 0, time.Time{}); err != nil {
		t.Fatalf("commit over the file as checked: %v", err)
	}
	if b, _ := os.ReadFile(target); !bytes.Equal(b, data) {
		t.Fatal("the committed file does not hold the blob")
	}
}
