package exchange

import (
	"sync/atomic"
	"testing"

	"github.com/meshwork/meshwork/syncproto"
)

// TestPanicInMergeReleasesReplica: a panic while B merges a CHANGES frame
// (here from B's validator, standing for any bug reachable from the wire)
// is recovered by the session's backstop, and B's replica is not left
// locked: a later session still applies A's changes and local edits on B
// still work.
func TestPanicInMergeReleasesReplica(t *testing.T) {
	ms := newMemberSet()
	a, b := newNode(t, "A", ms), newNode(t, "B", ms)
	m := roles(a, owner, b, editor)
	a.addObject(obj, m)
	var panicked atomic.Bool
	cfg := b.e.ObjectConfig()
	cfg.Validate = func(v syncproto.View, prev *syncproto.Item, next syncproto.Item) error {
		if next.Sync.ID == "boom" && panicked.CompareAndSwap(false, true) {
			panic("validator bug")
		}
		return nil
	}
	o, err := syncproto.NewObject(obj, syncproto.TypeList, m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.e.Add(o); err != nil {
		t.Fatal(err)
	}
	a.update(obj, "boom", "makes B's validator panic once")
	connect(t, a, b)
	waitFor(t, timeout, "B's session to panic", panicked.Load)
	waitFor(t, timeout, "the panic counted on B", func() bool { return b.e.c.panics.Load() > 0 })
	a.update(obj, "after", "sent after the panic")
	waitFor(t, timeout, "both items on B after the panic", func() bool { return b.has(obj, "boom") && b.has(obj, "after") })
	b.update(obj, "local", "B's replica is not locked")
	waitFor(t, timeout, "B's local edit on A", func() bool { return a.has(obj, "local") })
}
