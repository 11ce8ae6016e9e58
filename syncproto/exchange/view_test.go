package exchange

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/meshwork/meshwork/syncproto"
)

// countingStore counts the snapshots written.
type countingStore struct {
	*MemStore
	puts atomic.Int64
}

func (s *countingStore) Put(ctx context.Context, id syncproto.ObjectID, b []byte) error {
	s.puts.Add(1)
	return s.MemStore.Put(ctx, id, b)
}

// View reads a replica under its lock and does nothing else: no snapshot
// written, nothing pushed to a connected member, f's error returned as is,
// and an unknown object refused.
func TestViewReadsOnly(t *testing.T) {
	ms := newMemberSet()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{MemStore: NewMemStore()}
	a := &node{t: t, name: "A", key: key, members: ms, store: cs}
	a.start()
	ms.add(a.h.ID())
	b := newNode(t, "B", ms)
	m := roles(a, owner, b, editor)
	a.addObject(obj, m)
	b.addObject(obj, m)
	connect(t, a, b)
	a.update(obj, "x", "v")
	waitFor(t, timeout, "push", func() bool { return b.has(obj, "x") })
	waitFor(t, timeout, "idle", func() bool {
		return a.e.Stats().SessionsStarted == b.e.Stats().SessionsServed && b.e.Stats().SessionsStarted == a.e.Stats().SessionsServed
	})
	puts, before := cs.puts.Load(), a.e.Stats()

	var got syncproto.Item
	var ok bool
	if err := a.e.View(obj, func(o *syncproto.Object) error { got, ok = o.Item("x"); return nil }); err != nil {
		t.Fatalf("view: %v", err)
	}
	if !ok || got.Sync.ID != "x" {
		t.Fatalf("view saw item %v (found %v), want x", got.Sync.ID, ok)
	}
	sentinel := errors.New("reader's own")
	if err := a.e.View(obj, func(*syncproto.Object) error { return sentinel }); err != sentinel {
		t.Errorf("view returned %v, want f's error as is", err)
	}
	if err := a.e.View("nope", func(*syncproto.Object) error { t.Error("f ran for an unknown object"); return nil }); !errors.Is(err, ErrUnknownObject) {
		t.Errorf("view of an unknown object: %v, want ErrUnknownObject", err)
	}
	// View is synchronous: whatever Change would have persisted is written
	// before it returns, so the count can be read at once. Sessions are not
	// compared: the engine may start one of its own at any time (a catch-up
	// after the connection settles), which says nothing about View.
	if n := cs.puts.Load() - puts; n != 0 {
		t.Errorf("view wrote %d snapshots", n)
	}
	if after := a.e.Stats(); after.ChangesSent != before.ChangesSent {
		t.Errorf("view pushed: changes %d→%d", before.ChangesSent, after.ChangesSent)
	}
}
