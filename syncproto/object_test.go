package syncproto

import (
	"errors"
	"testing"
	"time"

	"github.com/meshwork/meshwork/syncproto/hlc"
)

const (
	devA DeviceID = "12D3KooWAlpha"
	devB DeviceID = "12D3KooWBravo"
	devR DeviceID = "12D3KooWReader"
)

func twoEditors(t testing.TB, sim *simTime) (a, b *Object) {
	members := map[DeviceID]Role{devA: RoleOwner, devB: RoleEditor, devR: RoleReader}
	return newSimObject(t, sim, devA, 0, members), newSimObject(t, sim, devB, 0, members)
}

func mustApply(t *testing.T, o *Object, it Item) (bool, Item) {
	t.Helper()
	changed, res, err := o.Apply(it)
	if err != nil {
		t.Fatalf("%s: apply %q: %v", o.Self(), it.Sync.ID, err)
	}
	return changed, res
}

func mustItem(t *testing.T, o *Object, id ItemID) Item {
	t.Helper()
	it, ok := o.Item(id)
	if !ok {
		t.Fatalf("%s: no item %q", o.Self(), id)
	}
	return it
}

// TestWalkthrough takes two endpoints through the FeedSync sample story:
// create, update, concurrent update, resolution, delete.
func TestWalkthrough(t *testing.T) {
	sim := &simTime{t: simStart}
	a, b := twoEditors(t, sim)

	it, err := a.Update("milk", Content{Title: "Buy milk", Body: Text("1 l")})
	if err != nil {
		t.Fatal(err)
	}
	if it.Sync.Updates != 1 || it.Sync.Top().By != devA || it.Sync.Top().Sequence != 1 {
		t.Fatalf("created item: %s", show(it))
	}
	if changed, _ := mustApply(t, b, it); !changed {
		t.Fatal("b: create not applied")
	}
	if changed, _ := mustApply(t, b, it); changed {
		t.Fatal("b: applying the same item twice changed it")
	}

	sim.advance(time.Minute)
	it, err = b.Update("milk", Content{Title: "Buy milk and eggs"})
	if err != nil {
		t.Fatal(err)
	}
	if it.Sync.Updates != 2 || len(it.Sync.History) != 2 || it.Sync.Top().By != devB {
		t.Fatalf("b's update: %s", show(it))
	}
	mustApply(t, a, it)
	if got := mustItem(t, a, "milk"); got.Title != "Buy milk and eggs" || len(got.Sync.Conflicts) != 0 {
		t.Fatalf("a after b's update: %s", show(got))
	}

	// Concurrent updates: b's is a second later and wins on both sides.
	sim.advance(time.Minute)
	ia, _ := a.Update("milk", Content{Title: "from a"})
	sim.advance(time.Second)
	ib, _ := b.Update("milk", Content{Title: "from b"})
	_, ra := mustApply(t, a, ib)
	_, rb := mustApply(t, b, ia)
	if !ra.Equal(rb) {
		t.Fatalf("a and b differ:\n%s\n%s", show(ra), show(rb))
	}
	if ra.Title != "from b" || len(ra.Sync.Conflicts) != 1 || ra.Sync.Conflicts[0].Title != "from a" {
		t.Fatalf("after concurrent updates: %s", show(ra))
	}

	// a resolves, keeping its own text; b takes the resolution.
	sim.advance(time.Minute)
	res, err := a.Resolve("milk", ra.Sync.Conflicts[0].Content)
	if err != nil {
		t.Fatal(err)
	}
	if res.Title != "from a" || len(res.Sync.Conflicts) != 0 || res.Sync.Updates != 4 {
		t.Fatalf("resolution: %s", show(res))
	}
	if _, got := mustApply(t, b, res); !got.Equal(res) {
		t.Fatalf("b after resolution: %s", show(got))
	}

	// Delete on b; a sees the tombstone.
	del, err := b.Delete("milk")
	if err != nil {
		t.Fatal(err)
	}
	if !del.Sync.Deleted || del.Sync.Updates != 5 {
		t.Fatalf("delete: %s", show(del))
	}
	if _, got := mustApply(t, a, del); !got.Sync.Deleted {
		t.Fatalf("a after delete: %s", show(got))
	}
	if _, err := a.Delete("nothing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete of a missing item: %v, want ErrNotFound", err)
	}
	if _, err := a.Resolve("milk", Content{}, Content{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("resolve with two contents: %v", err)
	}
}

// TestReaderChangesRefused: a reader receives items, but its changes are
// refused locally and by every other device.
func TestReaderChangesRefused(t *testing.T) {
	sim := &simTime{t: simStart}
	a, _ := twoEditors(t, sim)
	r := newSimObject(t, sim, devR, 0, a.Members())

	it, err := a.Update("note", Content{Title: "owner's note"})
	if err != nil {
		t.Fatal(err)
	}
	if changed, _ := mustApply(t, r, it); !changed {
		t.Fatal("reader did not receive the item")
	}
	if r.CanWrite(devR) || !r.CanWrite(devA) || !r.CanWrite(devB) || r.CanWrite("12D3KooWStranger") {
		t.Fatal("CanWrite does not follow the roles")
	}
	if _, err := r.Update("note", Content{Title: "reader's edit"}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("reader's local update: %v, want ErrReadOnly", err)
	}

	// A modified reader client makes the change anyway.
	forged, err := UpdateItem(it, devR, sim2ts(sim), false)
	if err != nil {
		t.Fatal(err)
	}
	forged.Title = "reader's edit"
	head := a.Head()
	if _, _, err := a.Apply(forged); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("apply of a reader's change: %v, want ErrReadOnly", err)
	}
	if got := mustItem(t, a, "note"); !got.Equal(it) || a.Head() != head {
		t.Fatalf("a changed after a refused change: %s", show(got))
	}

	// Hidden as a conflict inside an editor's item: refused as well.
	sim.advance(time.Second)
	edit, err := UpdateItem(it, devB, sim2ts(sim), false)
	if err != nil {
		t.Fatal(err)
	}
	edit.Sync.Conflicts = []Item{forged}
	if _, _, err := a.Apply(edit); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("apply of an editor's item with a reader's conflict: %v, want ErrReadOnly", err)
	}

	// Through a change batch: refused, skipped, and the cursor moves on.
	batch := Changes{Object: a.ID(), Epoch: Epoch{9}, Head: 7, Changes: []Change{{Seq: 7, Item: forged}}}
	n, err := a.ApplyChanges(devR, batch)
	if n != 0 || !errors.Is(err, ErrReadOnly) {
		t.Fatalf("ApplyChanges = %d, %v; want 0, ErrReadOnly", n, err)
	}
	if c := a.Cursor(devR); c != batch.Cursor() {
		t.Fatalf("cursor after a refused batch = %+v, want %+v", c, batch.Cursor())
	}

	// Non-members are refused the same way.
	stranger, _ := UpdateItem(it, "12D3KooWStranger", sim2ts(sim), false)
	if _, _, err := a.Apply(stranger); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("apply of a non-member's change: %v, want ErrReadOnly", err)
	}
}

func sim2ts(s *simTime) hlc.Timestamp { return hlc.FromTime(s.t) }

// TestUpdateFoldsOwnConflicts: when a device updates an item while one of
// its own earlier versions is a conflict, that version's history is folded
// in. Without it, a replica that receives the versions in another order
// keeps a stale conflict (TestConvergence fails).
func TestUpdateFoldsOwnConflicts(t *testing.T) {
	sim := &simTime{t: simStart}
	a, b := twoEditors(t, sim)
	base, _ := a.Update("x", Content{Title: "base"})
	mustApply(t, b, base)

	sim.advance(time.Second)
	va, _ := a.Update("x", Content{Title: "a"}) // updates 2
	sim.advance(time.Second)
	b.Update("x", Content{Title: "b1"})          // updates 2
	vb, _ := b.Update("x", Content{Title: "b2"}) // updates 3: wins on updates
	_, merged := mustApply(t, a, vb)
	if len(merged.Sync.Conflicts) != 1 || merged.Sync.Conflicts[0].Sync.Top().By != devA {
		t.Fatalf("a's own version is not a conflict: %s", show(merged))
	}
	sim.advance(time.Second)
	up, err := a.Update("x", Content{Title: "a again"})
	if err != nil {
		t.Fatal(err)
	}
	if len(up.Sync.Conflicts) != 0 {
		t.Fatalf("own conflict kept: %s", show(up))
	}
	if !va.SubsumedBy(up) {
		t.Fatal("the folded version is not subsumed")
	}
	for _, h := range va.Sync.History {
		if !subsumedByAny(h, up.Sync.History) {
			t.Fatalf("record %+v of the folded version is not in the new history:\n%s", h, show(up))
		}
	}
}

// TestUpdateFromMovedOn: an edit made to a version the item has moved on
// from (a file edited offline while another device edited it) is kept
// beside the other edit as a conflict, on both replicas; Update would have
// superseded the edit it never saw.
func TestUpdateFromMovedOn(t *testing.T) {
	sim := &simTime{t: simStart}
	a, b := twoEditors(t, sim)
	v1, _ := a.Update("x", Content{Title: "base"})
	mustApply(t, b, v1)
	base := v1.Sync.Top() // what b's disk holds

	sim.advance(time.Second)
	va, _ := a.Update("x", Content{Title: "a"})
	mustApply(t, b, va) // merged on b before b's scan reports its edit
	sim.advance(time.Second)
	vb, err := b.UpdateFrom("x", base, Content{Title: "b"})
	if err != nil {
		t.Fatal(err)
	}
	titles := func(it Item) map[string]bool {
		m := map[string]bool{it.Title: true}
		for _, c := range it.Sync.Conflicts {
			m[c.Title] = true
		}
		return m
	}
	if len(vb.Sync.Conflicts) != 1 || !titles(vb)["a"] || !titles(vb)["b"] {
		t.Fatalf("both edits should be kept, one as a conflict:\n%s", show(vb))
	}
	if vb.Sync.Top().By != devB || vb.Sync.Top().Sequence != 2 {
		t.Fatalf("b's edit should win on its later when, at sequence 2:\n%s", show(vb))
	}
	_, onA := mustApply(t, a, vb)
	if !onA.Equal(vb) {
		t.Fatalf("replicas differ:\na: %s\nb: %s", show(onA), show(vb))
	}

	// Still at base, or moved on only by a itself: a plain update (which
	// folds a's own conflict in).
	sim.advance(time.Second)
	v3, err := a.UpdateFrom("x", onA.Sync.Top(), Content{Title: "a resolves"})
	if err != nil || len(v3.Sync.Conflicts) != 0 || v3.Sync.Top().By != devA || v3.Sync.Updates != 3 || !vb.SubsumedBy(v3) {
		t.Fatalf("update at base: %v\n%s", err, show(v3))
	}
	v4, err := a.UpdateFrom("x", base, Content{Title: "again"})
	if err != nil || v4.Sync.Updates != 4 || !v3.SubsumedBy(v4) {
		t.Fatalf("an item whose newest update is a's own should be updated by a: %v\n%s", err, show(v4))
	}
}

// TestUpdateFromNothing: something created here (base zero) where another
// device created the same item is concurrent with it; where the item is a
// tombstone it brings it back; a base found in no version makes the edit
// concurrent with all of them.
func TestUpdateFromNothing(t *testing.T) {
	sim := &simTime{t: simStart}
	a, b := twoEditors(t, sim)
	va, _ := a.Update("new", Content{Title: "a's"})
	mustApply(t, b, va)
	sim.advance(time.Second)
	vb, err := b.UpdateFrom("new", History{}, Content{Title: "b's"})
	if err != nil || len(vb.Sync.Conflicts) != 1 || vb.Sync.Conflicts[0].Title != "a's" || vb.Title != "b's" {
		t.Fatalf("two creations should be a conflict: %v\n%s", err, show(vb))
	}

	a.Update("gone", Content{Title: "old"})
	gone, _ := a.Delete("gone")
	mustApply(t, b, gone)
	back, err := b.UpdateFrom("gone", History{}, Content{Title: "again"})
	if err != nil || back.Sync.Deleted || len(back.Sync.Conflicts) != 0 || !gone.SubsumedBy(back) {
		t.Fatalf("a new file where the item was deleted should revive it: %v\n%s", err, show(back))
	}

	other, _ := a.Update("other", Content{Title: "a's"})
	mustApply(t, b, other)
	vo, err := b.UpdateFrom("other", History{Sequence: 7, By: devA}, Content{Title: "b's"})
	if err != nil || len(vo.Sync.Conflicts) != 1 {
		t.Fatalf("an unknown base should make the edit concurrent: %v\n%s", err, show(vo))
	}
}

func TestChangesSince(t *testing.T) {
	sim := &simTime{t: simStart}
	a, b := twoEditors(t, sim)
	if a.Epoch() == b.Epoch() || a.Epoch().IsZero() {
		t.Fatal("epochs not distinct")
	}
	a.Update("i1", Content{Title: "1"})
	a.Update("i2", Content{Title: "2"})
	a.Update("i1", Content{Title: "1b"}) // replaces i1's entry
	all, err := a.ChangesSince(Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	if all.Head != 3 || len(all.Changes) != 2 || all.Changes[0].Item.Sync.ID != "i2" || all.Changes[1].Seq != 3 || all.Changes[1].Item.Title != "1b" {
		t.Fatalf("full listing: %+v", all)
	}
	n, err := b.ApplyChanges(devA, all)
	if err != nil || n != 2 {
		t.Fatalf("ApplyChanges = %d, %v", n, err)
	}
	cur := b.Cursor(devA)
	if cur != (Cursor{Epoch: a.Epoch(), Seq: 3}) {
		t.Fatalf("cursor = %+v", cur)
	}
	if d, err := a.ChangesSince(cur); err != nil || len(d.Changes) != 0 {
		t.Fatalf("nothing new: %+v, %v", d, err)
	}
	a.Update("i3", Content{Title: "3"})
	d, err := a.ChangesSince(cur)
	if err != nil || len(d.Changes) != 1 || d.Changes[0].Seq != 4 || d.Changes[0].Item.Sync.ID != "i3" {
		t.Fatalf("delta: %+v, %v", d, err)
	}

	// Merges are logged too, so b passes a's changes on.
	b.ApplyChanges(devA, d)
	fromB, _ := b.ChangesSince(Cursor{Epoch: b.Epoch(), Seq: 2})
	if len(fromB.Changes) != 1 || fromB.Changes[0].Item.Sync.ID != "i3" {
		t.Fatalf("b's log: %+v", fromB)
	}
	// Applying something that changes nothing is not logged.
	head := b.Head()
	mustApply(t, b, d.Changes[0].Item)
	if b.Head() != head {
		t.Fatal("a no-op apply was logged")
	}

	// a's database is lost: a new replica with a new epoch.
	a2 := newSimObject(t, sim, devA, 0, a.Members())
	a2.log.epoch = Epoch{0xee}
	if _, err := a2.ChangesSince(b.Cursor(devA)); !errors.Is(err, ErrEpochMismatch) {
		t.Fatalf("old cursor on a new log: %v, want ErrEpochMismatch", err)
	}
	if _, err := a.ChangesSince(Cursor{Epoch: a.Epoch(), Seq: 99}); !errors.Is(err, ErrEpochMismatch) {
		t.Fatalf("cursor beyond head: %v, want ErrEpochMismatch", err)
	}
	if _, err := a.ChangesSince(Cursor{Seq: 1}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("cursor without epoch: %v, want ErrMalformed", err)
	}
	// Full reconciliation the other way: a2 gets everything back from b.
	full, _ := b.ChangesSince(Cursor{})
	if _, err := a2.ApplyChanges(devB, full); err != nil {
		t.Fatal(err)
	}
	if len(a2.Items()) != 3 {
		t.Fatalf("a2 after full reconciliation holds %d items", len(a2.Items()))
	}
	if _, err := a.ApplyChanges(devB, Changes{Object: "other"}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("changes of another object: %v", err)
	}
}

func TestRoles(t *testing.T) {
	sim := &simTime{t: simStart}
	a, b := twoEditors(t, sim)
	if err := b.SetRole(devR, RoleEditor); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("editor changing roles: %v, want ErrNotOwner", err)
	}
	if err := a.SetRole(devA, RoleEditor); !errors.Is(err, ErrMalformed) {
		t.Fatalf("demoting the last owner: %v, want ErrMalformed", err)
	}
	if err := a.SetRole(devR, RoleEditor); err != nil || !a.CanWrite(devR) {
		t.Fatalf("promote reader: %v", err)
	}
	if err := a.SetRole(devB, RoleNone); err != nil || a.Role(devB) != RoleNone {
		t.Fatalf("remove member: %v", err)
	}
	if _, err := NewObject("o", TypeList, map[DeviceID]Role{devA: RoleEditor}, Config{Self: devA, Clock: sim.clockAt(0)}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("object without owner: %v", err)
	}
	for _, r := range []Role{RoleNone, RoleReader, RoleEditor, RoleOwner} {
		if got, err := ParseRole(r.String()); err != nil || got != r {
			t.Fatalf("ParseRole(%q) = %v, %v", r, got, err)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	sim := &simTime{t: simStart}
	a, b := twoEditors(t, sim)
	a.Update("f", Content{Title: "file", Body: &FileEntry{Path: "docs/a.txt", Mode: 0o644, ModTime: simStart, Size: 3, Blob: mustRef(t, "blake3-00ff")}})
	sim.advance(time.Second)
	vb, _ := b.Update("f", Content{Title: "concurrent"})
	mustApply(t, a, vb)
	a.SetCursor(devB, Cursor{Epoch: b.Epoch(), Seq: 1})
	data, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// Restart with a clock an hour behind: the HLC must not go back.
	restarted := sim.clockAt(-time.Hour)
	a2, err := DecodeObject(data, Config{Self: devA, Clock: restarted})
	if err != nil {
		t.Fatal(err)
	}
	data2, _ := a2.MarshalBinary()
	if string(data) != string(data2) {
		t.Fatal("snapshot does not round-trip")
	}
	if a2.Epoch() != a.Epoch() || a2.Head() != a.Head() || a2.Cursor(devB) != a.Cursor(devB) || a2.Role(devR) != RoleReader {
		t.Fatal("snapshot lost state")
	}
	last := mustItem(t, a, "f")
	up, err := a2.Update("f", Content{Title: "after restart"})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range last.Sync.History {
		if h.By == devA && !up.Sync.Top().When.After(h.When) {
			t.Fatalf("when after restart %v not after %v", up.Sync.Top().When, h.When)
		}
	}
	if _, err := DecodeObject(data[:len(data)-1], Config{Self: devA, Clock: restarted}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated snapshot: %v", err)
	}
}

// An endpoint "DEVICE/NAME" writes with its device's role (owner lowered
// to editor); an endpoint of a reader or a non-member may not write.
func TestEndpointRole(t *testing.T) {
	o, err := NewObject("o", TypeList, map[DeviceID]Role{"own": RoleOwner, "ed": RoleEditor, "rd": RoleReader}, Config{Self: "own", Clock: (&simTime{t: simStart}).clockAt(0)})
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[DeviceID]Role{
		"own/app": RoleEditor, "ed/app": RoleEditor, "rd/app": RoleReader, "x/app": RoleNone, "own": RoleOwner, "app": RoleNone,
	} {
		if got := o.Role(d); got != want {
			t.Errorf("Role(%q) = %v, want %v", d, got, want)
		}
	}
}

// TestFormerWriterKept: a device that may no longer write (revoked: not a
// member at all) still has the versions it wrote before then accepted,
// when Config.FormerWriter vouches for that time, and nothing after it. A
// replica created after the revocation then holds the same as one that had
// the versions before (chaos harness, soak seed 994).
func TestFormerWriterKept(t *testing.T) {
	sim := &simTime{t: simStart}
	_, b := twoEditors(t, sim)
	before, err := b.Update("before", Content{Title: "written while an editor"})
	if err != nil {
		t.Fatal(err)
	}
	sim.advance(time.Minute)
	revokedAt := hlc.FromTime(sim.t)
	sim.advance(time.Minute)
	after, err := b.Update("after", Content{Title: "written after the revocation"})
	if err != nil {
		t.Fatal(err)
	}

	members := map[DeviceID]Role{devA: RoleOwner} // b is gone
	asked := 0
	former := func(obj ObjectID, d DeviceID) (hlc.Timestamp, bool) {
		asked++
		if obj == "obj" && d == devB {
			return revokedAt, true
		}
		return hlc.Timestamp{}, false
	}
	o, err := NewObject("obj", TypeList, members, Config{Self: devC, Clock: sim.clockAt(0), Epoch: Epoch{7}, FormerWriter: former})
	if err != nil {
		t.Fatal(err)
	}
	if changed, _ := mustApply(t, o, before); !changed {
		t.Fatal("a version the revoked device wrote before its revocation was not taken")
	}
	if _, _, err := o.Apply(after); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("a version written after the revocation: %v, want ErrReadOnly", err)
	}
	// An endpoint of the revoked device counts as the device.
	ep, err := UpdateItem(before, devB+"/feed", hlc.FromTime(simStart.Add(30*time.Second)), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.Apply(ep); err != nil {
		t.Fatalf("an endpoint's version from before the revocation: %v", err)
	}
	if asked == 0 {
		t.Fatal("FormerWriter was never asked")
	}

	// Without FormerWriter the same version is refused: the replicas of a
	// device that had it and of one that did not would differ for good.
	plain, err := NewObject("obj", TypeList, members, Config{Self: devC, Clock: sim.clockAt(0), Epoch: Epoch{8}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := plain.Apply(before); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("without FormerWriter: %v, want ErrReadOnly", err)
	}
}
