package syncproto

import (
	"errors"
	"testing"
	"time"
)

// TestClockADayAhead shows what a device whose wall clock is a day ahead
// can and cannot do.
func TestClockADayAhead(t *testing.T) {
	sim := &simTime{t: simStart}
	members := map[DeviceID]Role{devA: RoleOwner, devB: RoleEditor}
	a := newSimObject(t, sim, devA, 0, members)
	fast := newSimObject(t, sim, devB, 24*time.Hour, members)

	base, _ := a.Update("x", Content{Title: "base"})
	mustApply(t, fast, base) // a's timestamps are in fast's past: fine

	// Concurrent updates; fast's `when` is a day later and would win.
	sim.advance(time.Second)
	va, _ := a.Update("x", Content{Title: "from a"})
	vf, _ := fast.Update("x", Content{Title: "from fast"})
	if CompareWinner(vf, va) <= 0 {
		t.Fatal("setup: the fast device's version should win by when")
	}

	// 1. a refuses it: it is more than MaxSkew in a's future.
	before := a.clock.Last()
	if _, _, err := a.Apply(vf); !errors.Is(err, ErrClockSkew) {
		t.Fatalf("apply of a day-ahead update: %v, want ErrClockSkew", err)
	}
	if got := mustItem(t, a, "x"); !got.Equal(va) {
		t.Fatalf("a changed: %s", show(got))
	}
	// 2. The skew does not spread: a's clock did not move to fast's time.
	if a.clock.Last() != before {
		t.Fatalf("a's clock moved from %v to %v", before, a.clock.Last())
	}
	// 3. Through the change log, the cursor stays before the refused
	// change, so it is asked for again.
	batch, _ := fast.ChangesSince(Cursor{})
	if _, err := a.ApplyChanges(devB, batch); !errors.Is(err, ErrClockSkew) {
		t.Fatalf("ApplyChanges: %v, want ErrClockSkew", err)
	}
	if c := a.Cursor(devB); c.Seq >= batch.Changes[0].Seq {
		t.Fatalf("cursor %+v moved past the refused change %d", c, batch.Changes[0].Seq)
	}

	// fast itself accepts a's version (it is in its past) and keeps winning
	// locally: that is its own view, not the mesh's.
	_, local := mustApply(t, fast, va)
	if local.Title != "from fast" {
		t.Fatalf("fast's merge: %s", show(local))
	}

	// 4. Just within the bound, it is accepted.
	sim.advance(24*time.Hour - a.clock.MaxSkew())
	if _, _, err := a.Apply(vf); err != nil {
		t.Fatalf("apply once within the bound: %v", err)
	}
	// 5. It does not dominate forever: a's next update comes after it (the
	// HLC observed it) and wins.
	up, _ := a.Update("x", Content{Title: "a later"})
	if !up.Sync.Top().When.After(vf.Sync.Top().When) || !vf.SubsumedBy(up) {
		t.Fatalf("a's update %v is not after the fast update %v", up.Sync.Top().When, vf.Sync.Top().When)
	}
	_, got := mustApply(t, fast, up)
	if got.Title != "a later" {
		t.Fatalf("fast after a's later update: %s", show(got))
	}
}
