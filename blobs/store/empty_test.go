package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/meshwork/meshwork/blobs"
)

// TestEmptyBlobManifest: the manifest of empty content (no chunks) is
// known to every store, whether or not a file here has that content: a
// receiver must never need a peer for it. Chaos soak seed 753: a device's
// only empty file had lost the empty manifest's record (its other empty
// file had been rewritten), every peer answered "manifest not available",
// and the others never created the 0-byte file.
func TestEmptyBlobManifest(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	if blobs.EmptyRef != (blobs.Manifest{}).Ref() || blobs.EmptyRef.Size != 0 {
		t.Fatalf("EmptyRef %v is not the ref of a manifest without chunks", blobs.EmptyRef)
	}
	check := func(when string) {
		t.Helper()
		m, err := s.Manifest(ctx, blobs.EmptyRef)
		if err != nil {
			t.Fatalf("%s: manifest of the empty blob: %v", when, err)
		}
		if len(m.Chunks) != 0 || m.Verify(blobs.EmptyRef) != nil {
			t.Fatalf("%s: manifest of the empty blob has %d chunks", when, len(m.Chunks))
		}
	}
	check("fresh store")
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeFile(t, a, nil)
	writeFile(t, b, nil)
	for _, p := range []string{a, b} {
		if _, ref, err := s.AddFile(ctx, p); err != nil || ref != blobs.EmptyRef {
			t.Fatalf("add empty file %s: ref %v, %v", p, ref, err)
		}
	}
	if err := s.RemoveFile(ctx, a); err != nil {
		t.Fatal(err)
	}
	check("one of two empty files removed")
	if err := s.RemoveFile(ctx, b); err != nil {
		t.Fatal(err)
	}
	check("no empty file left")
}
