package folder

import (
	"context"
	"errors"
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
// content could not be fetched (its author changed it meanwhile) leaves a
// partial file; once the conflict is resolved, the copy is no longer
// wanted and its partial goes (chaos harness, seed 8: it stayed visible
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
	if len(partialsIn(t, winner)) == 0 {
		t.Fatal("the winner holds no partial of the conflict copy it could not fetch")
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
