package syncproto

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

func newValidatedObject(t *testing.T, sim *simTime, self DeviceID, cfg Config) *Object {
	t.Helper()
	members := map[DeviceID]Role{devA: RoleOwner, devB: RoleEditor, devR: RoleReader}
	cfg.Self, cfg.Clock, cfg.Epoch = self, sim.clockAt(0), Epoch{byte(len(self)), self[len(self)-1]}
	o, err := NewObject("obj", TypeList, members, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// The Validator sees every new version, from peers and local edits, with
// the item it replaces; what it refuses is neither applied nor logged.
func TestValidatorRefuses(t *testing.T) {
	sim := &simTime{t: simStart}
	type call struct {
		prev  *Item
		next  Item
		items int
	}
	var calls []call
	// Only devA may write titles starting with "owner:".
	rule := func(v View, prev *Item, next Item) error {
		calls = append(calls, call{prev, next, len(v.Items())})
		if v.Object() != "obj" {
			return fmt.Errorf("view of %q", v.Object())
		}
		if len(next.Sync.Conflicts) != 0 {
			return errors.New("next has conflicts")
		}
		if prev != nil && prev.Title == "owner:locked" && next.Sync.Top().By != devA {
			return fmt.Errorf("%q may not change a locked item", next.Sync.Top().By)
		}
		return nil
	}
	a := newValidatedObject(t, sim, devA, Config{Validate: rule})
	b := newValidatedObject(t, sim, devB, Config{Validate: rule})
	it, err := a.Update("x", Content{Title: "owner:locked"})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0].prev != nil || calls[0].next.Sync.Top().By != devA {
		t.Fatalf("local create: calls %+v", calls)
	}
	mustApply(t, b, it)
	if len(calls) != 2 || calls[1].prev != nil || calls[1].items != 0 {
		t.Fatalf("apply of a new item: calls %+v", calls)
	}
	// b's own edit is refused locally.
	if _, err := b.Update("x", Content{Title: "mine now"}); !errors.Is(err, ErrRefused) {
		t.Fatalf("b's local edit of a locked item: %v", err)
	}
	if got := mustItem(t, b, "x"); got.Title != "owner:locked" {
		t.Fatalf("b's refused edit changed the item: %s", show(got))
	}
	// A version by b built elsewhere is refused by a, and not logged.
	sim.advance(time.Second)
	forged, err := UpdateItem(it, devB, sim2ts(sim), false)
	if err != nil {
		t.Fatal(err)
	}
	forged.Title = "mine now"
	head := a.Head()
	if _, _, err := a.Apply(forged); !errors.Is(err, ErrRefused) {
		t.Fatalf("apply of b's version: %v", err)
	}
	if a.Head() != head || mustItem(t, a, "x").Title != "owner:locked" {
		t.Fatalf("a refused version was applied or logged: head %d→%d", head, a.Head())
	}
	// ApplyChanges skips it, reports it, and passes it.
	c := Changes{Object: "obj", Epoch: b.Epoch(), Head: 7, Changes: []Change{{Seq: 3, Item: forged}}}
	if _, err := a.ApplyChanges(devB, c); !errors.Is(err, ErrRefused) {
		t.Fatalf("apply changes: %v", err)
	}
	if cur := a.Cursor(devB); cur.Seq != 7 {
		t.Fatalf("cursor after a refused change: %v", cur)
	}
	// Applying what a replica already holds does not call the validator.
	n := len(calls)
	mustApply(t, a, it)
	if len(calls) != n {
		t.Fatal("the validator judged a version the replica holds")
	}
	// The owner's edit passes everywhere.
	it2, err := a.Update("x", Content{Title: "owner:locked", Body: Text("v2")})
	if err != nil {
		t.Fatal(err)
	}
	if _, res := mustApply(t, b, it2); res.Body != Text("v2") {
		t.Fatalf("b after the owner's edit: %s", show(res))
	}
}

// An incoming version may advance the update count by at most
// MaxUpdateStep over what the replica knows of the item.
func TestUpdateStepBound(t *testing.T) {
	sim := &simTime{t: simStart}
	a := newValidatedObject(t, sim, devA, Config{})
	at := func(updates uint32) Item {
		return Item{Sync: Sync{ID: "x", Updates: updates, History: []History{{Sequence: updates, When: sim2ts(sim), By: devB}}},
			Content: Content{Title: fmt.Sprint(updates)}}
	}
	if _, _, err := a.Apply(at(math.MaxUint32)); !errors.Is(err, ErrUpdateStep) {
		t.Fatalf("new item at the top of the count: %v", err)
	}
	if _, _, err := a.Apply(at(MaxUpdateStep + 1)); !errors.Is(err, ErrUpdateStep) {
		t.Fatalf("new item just above the step: %v", err)
	}
	mustApply(t, a, at(MaxUpdateStep)) // an offline device's many edits
	sim.advance(time.Second)
	if _, _, err := a.Apply(at(2*MaxUpdateStep + 1)); !errors.Is(err, ErrUpdateStep) {
		t.Fatalf("a jump of more than the step: %v", err)
	}
	sim.advance(time.Second)
	mustApply(t, a, at(2*MaxUpdateStep))
	if _, err := a.Update("x", Content{Title: "local"}); err != nil {
		t.Fatalf("local edit after the accepted jumps: %v", err)
	}
	if got := mustItem(t, a, "x"); got.Sync.Updates != 2*MaxUpdateStep+1 {
		t.Fatalf("after a local edit: %s", show(got))
	}
}

// At the top of the update count an item still takes edits, on every
// replica, and the replicas converge on the newest one.
func TestEditsAtTopOfCount(t *testing.T) {
	sim := &simTime{t: simStart}
	a, b := twoEditors(t, sim)
	top := Item{Sync: Sync{ID: "x", Updates: math.MaxUint32, History: []History{
		{Sequence: math.MaxUint32, When: sim2ts(sim), By: devB},
		{Sequence: 1, When: sim2ts(sim), By: devA},
	}}, Content: Content{Title: "top"}}
	// Both replicas already hold it (they trusted it before the step bound).
	a.log.put(top)
	b.log.put(top.Clone())
	for i := range 3 {
		for _, o := range []*Object{a, b} {
			sim.advance(time.Second)
			want := fmt.Sprintf("%s %d", o.Self(), i)
			it, err := o.Update("x", Content{Title: want})
			if err != nil {
				t.Fatalf("%s: edit at the top: %v", o.Self(), err)
			}
			if err := it.Validate(); err != nil || it.Sync.Updates != math.MaxUint32 {
				t.Fatalf("%s: edit at the top: %v %s", o.Self(), err, show(it))
			}
			other := a
			if o == a {
				other = b
			}
			if _, res := mustApply(t, other, it); res.Title != want || !res.Equal(mustItem(t, o, "x")) {
				t.Fatalf("%s after %s's edit at the top: %s\nwant %s", other.Self(), o.Self(), show(res), show(mustItem(t, o, "x")))
			}
		}
	}
	if n := len(mustItem(t, a, "x").Sync.History); n > 4 {
		t.Fatalf("history grows at the top: %d records", n)
	}
}

// Apply refuses an item whose encoding exceeds Config.MaxItemSize.
func TestMaxItemSize(t *testing.T) {
	sim := &simTime{t: simStart}
	a := newValidatedObject(t, sim, devA, Config{MaxItemSize: 1000})
	it := Item{Sync: Sync{ID: "big", Updates: 1, History: []History{{Sequence: 1, When: sim2ts(sim), By: devB}}},
		Content: Content{Body: Bytes(make([]byte, 1000))}}
	if _, _, err := a.Apply(it); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("apply of a large item: %v", err)
	}
	if _, ok := a.Item("big"); ok {
		t.Fatal("a too large item was applied")
	}
	it.Body = Bytes(make([]byte, 100))
	mustApply(t, a, it)
}
