package folder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"

	"github.com/meshwork/meshwork/blobs/store"
	"github.com/meshwork/meshwork/blobs/transfer"
)

// TestUnavailableReported: content no peer can provide, of the current
// version or of a conflict copy, is listed by Unavailable (the node parks
// those items instead of retrying them as busy for good, chaos seeds 4 and
// 5), the Apply error is OnlyUnavailable, and once a peer has the content
// again the list empties.
func TestUnavailableReported(t *testing.T) {
	a, b := editedOnBoth(t, "notes.txt")
	b.fetch.mu.Lock()
	b.fetch.peers = nil // A's content is gone from every peer B can reach
	b.fetch.mu.Unlock()
	err := b.pull(a)
	if err == nil {
		t.Fatal("apply with A's content unavailable: no error")
	}
	if !OnlyUnavailable(err) {
		t.Errorf("OnlyUnavailable(%v) = false", err)
	}
	if k := ErrorKind(err); k != KindUnavailable {
		t.Errorf("ErrorKind = %q, want %q", k, KindUnavailable)
	}
	it, _ := b.obj.Item("notes.txt")
	if len(it.Sync.Conflicts) != 1 {
		t.Fatalf("conflicts: %d", len(it.Sync.Conflicts))
	}
	want := Unavailable{Files: []string{"notes.txt"}} // A's version won: B lacks it
	if it.Sync.Top().By == devB {                     // B's won: A's is the conflict copy
		want = Unavailable{Copies: []string{conflictName("notes.txt", it.Sync.Conflicts[0])}}
	}
	got := b.f.Unavailable()
	if !slices.Equal(got.Files, want.Files) || !slices.Equal(got.Copies, want.Copies) {
		t.Errorf("Unavailable = %+v, want %+v", got, want)
	}
	if ids := b.f.UnavailableItems(); !ids["notes.txt"] || len(ids) != 1 {
		t.Errorf("UnavailableItems = %v, want notes.txt", ids)
	}
	if e := b.f.LastError(); e != nil {
		t.Errorf("LastError = %+v: unavailable content is not a failure of the folder", e)
	}
	// A peer has it again: the retry writes it and the list empties.
	b.fetch.mu.Lock()
	b.fetch.peers = []*store.Store{a.st}
	b.fetch.mu.Unlock()
	if err := b.f.Apply(context.Background(), b.obj.Items()); err != nil {
		t.Fatalf("apply with A online: %v", err)
	}
	if got := b.f.Unavailable(); len(got.Files)+len(got.Copies) != 0 {
		t.Errorf("Unavailable after the retry = %+v, want none", got)
	}
	a.mustPull(b)
	sameTree(t, a, b)
}

// TestOnlyUnavailable: a join is only unavailable when each part is.
func TestOnlyUnavailable(t *testing.T) {
	un := fmt.Errorf("apply file %q: %w", "x", unavailable(transfer.ErrUnavailable))
	full := fmt.Errorf("write %q: %w", "y", syscall.ENOSPC)
	other := errors.New("something else")
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, true},
		{un, true},
		{errors.Join(un, un), true},
		{errors.Join(errors.Join(un), fmt.Errorf("path: %w", ErrLocalChange)), true},
		{errors.Join(un, full), false},
		{errors.Join(un, other), false},
		{errors.Join(errors.Join(un), other), false},
		{unavailable(full), false}, // a chunk that could not be written here
		{other, false},
	} {
		if got := OnlyUnavailable(c.err); got != c.want {
			t.Errorf("OnlyUnavailable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
