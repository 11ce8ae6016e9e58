package folder

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshwork/meshwork/blobs/transfer"
)

// partialsIn lists the partial files in n's tree.
func partialsIn(t *testing.T, n *testNode) []string {
	var out []string
	for rel := range tree(t, n.root) {
		if strings.HasPrefix(filepath.Base(rel), tmpPrefix) {
			out = append(out, rel)
		}
	}
	return out
}

// TestStaleConflictPartialRemoved: the conflict copy of a version whose
// content could not be fetched (its author changed it meanwhile) leaves no
// partial file, neither at once nor once the conflict is resolved (chaos harness, seed 8: it stayed visible
// for good while every device said it was in sync). The partial of a
// version still wanted stays, and completes later.
func TestStaleConflictPartialRemoved(t *testing.T) {
	a, b := pair(t)
	a.write("notes.txt", []byte("v1"), 0o644)
	a.scan()
	b.mustPull(a)
	a.write("notes.txt", randBytes(1, 300<<10), 0o644)
	b.write("notes.txt", randBytes(2, 200<<10), 0o644)
	a.scan()
	b.scan()
	unavailable := func() error { return transfer.ErrUnavailable }
	a.fetch.onChunk, b.fetch.onChunk = unavailable, unavailable
	_ = a.pull(b) // fails: nothing can be fetched
	_ = b.pull(a)
	it, _ := a.obj.Item("notes.txt")
	if len(it.Sync.Conflicts) != 1 {
		t.Fatalf("want a conflict, got %d", len(it.Sync.Conflicts))
	}
	winner, loser := a, b
	if it.Sync.Top().By == devB {
		winner, loser = b, a
	}
	// A conflict copy whose content no peer could provide leaves no
	// partial: it is dropped at once (chaos seed 4), not only once the
	// conflict is resolved.
	if p := partialsIn(t, winner); len(p) != 0 {
		t.Fatalf("the winner keeps partials of the conflict copy it could not fetch: %v", p)
	}
	if _, err := winner.obj.Resolve("notes.txt"); err != nil {
		t.Fatal(err)
	}
	if err := winner.f.Apply(context.Background(), winner.obj.Items()); err != nil && !errors.Is(err, transfer.ErrUnavailable) {
		t.Fatal(err)
	}
	if p := partialsIn(t, winner); len(p) != 0 {
		t.Fatalf("the resolved conflict's copy left partial files: %v", p)
	}
	// The loser still wants the winner's version: its partial stays
	// until the content can be fetched, and then goes.
	_ = loser.pull(winner)
	if len(partialsIn(t, loser)) == 0 {
		t.Fatal("the loser dropped the partial of the version it still wants")
	}
	loser.fetch.onChunk, winner.fetch.onChunk = nil, nil
	for _, n := range []*testNode{loser, winner} { // the retry of what failed
		if err := n.f.Apply(context.Background(), n.obj.Items()); err != nil {
			t.Fatalf("apply on %s: %v", n.self[8:13], err)
		}
	}
	sameTree(t, a, b)
	noTemps(t, a.root)
	noTemps(t, b.root)
}

// TestLocalDeleteDropsConflictCopy: a conflict resolved by a local change
// (the winner deleted, or renamed, on one device) drops the unedited
// conflict copy there as well as on the devices that receive the change
// (chaos harness, seed 26: the device that renamed the file kept its copy
// alone for good).
func TestLocalDeleteDropsConflictCopy(t *testing.T) {
	a, b := editedOnBoth(t, "notes.txt")
	a.mustPull(b)
	b.mustPull(a)
	it, _ := a.obj.Item("notes.txt")
	if len(it.Sync.Conflicts) != 1 {
		t.Fatalf("want a conflict, got %d", len(it.Sync.Conflicts))
	}
	name := conflictName("notes.txt", it.Sync.Conflicts[0])
	if err := os.Rename(a.path("notes.txt"), a.path("renamed.txt")); err != nil {
		t.Fatal(err)
	}
	a.scan()
	b.mustPull(a)
	for _, n := range []*testNode{a, b} {
		if _, err := os.Lstat(n.path(name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: conflict copy %s still there after its conflict was resolved by a rename on A: %v", n.self[8:13], name, err)
		}
	}
	sameTree(t, a, b)
}

// TestMovedPartialRemoved: a directory renamed by the user while a
// transfer into it was under way takes the partial file along, where no
// record names it; the next scan removes it (chaos harness, seed 20: it
// stayed visible for good), and leaves alone the partial of a transfer
// still under way.
func TestMovedPartialRemoved(t *testing.T) {
	a, b := pair(t)
	a.write("d/big.bin", randBytes(3, 300<<10), 0o644)
	a.write("other.bin", randBytes(4, 200<<10), 0o644)
	a.scan()
	b.scan() // B's first scan is behind it: what follows is a later scan's work
	b.fetch.onChunk = func() error { return transfer.ErrUnavailable }
	_ = b.pull(a) // both transfers fail: two partial files
	if p := partialsIn(t, b); len(p) != 2 {
		t.Fatalf("want 2 partial files on B, got %v", p)
	}
	if err := os.Rename(b.path("d"), b.path("e")); err != nil {
		t.Fatal(err)
	}
	b.scan()
	p := partialsIn(t, b)
	if len(p) != 1 || strings.HasPrefix(p[0], "e/") {
		t.Fatalf("after the rename and a scan, want only other.bin's partial, got %v", p)
	}
	b.fetch.onChunk = nil
	if err := b.f.Apply(context.Background(), b.obj.Items()); err != nil {
		t.Fatal(err)
	}
	a.mustPull(b)
	sameTree(t, a, b)
	noTemps(t, b.root)
}

// TestDeletedDirWithConflictCopyRemoved: a directory deleted on A holds,
// on B, the conflict copy of a file in it; B keeps the directory while the
// copy is there, and removes it once the copy goes into the version
// history (chaos harness, seed 9: B kept the empty directory for good).
func TestDeletedDirWithConflictCopyRemoved(t *testing.T) {
	a, b := editedOnBoth(t, "d/notes.txt")
	a.mustPull(b)
	b.mustPull(a)
	if it, _ := a.obj.Item("d/notes.txt"); len(it.Sync.Conflicts) != 1 {
		t.Fatalf("want a conflict, got %d", len(it.Sync.Conflicts))
	}
	if err := os.RemoveAll(a.path("d")); err != nil {
		t.Fatal(err)
	}
	a.scan()
	b.mustPull(a)
	if _, err := os.Lstat(b.path("d")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("B kept directory d, deleted on A, after its conflict copy went: %v", err)
	}
	sameTree(t, a, b)
}
