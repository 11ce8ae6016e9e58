package syncproto

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/meshwork/meshwork/syncproto/hlc"
)

// simTime is the simulated physical time shared by a test's devices.
type simTime struct{ t time.Time }

func (s *simTime) advance(d time.Duration) { s.t = s.t.Add(d) }

// clockAt returns a clock reading s with a fixed offset.
func (s *simTime) clockAt(offset time.Duration) *hlc.Clock {
	return hlc.NewClock(func() time.Time { return s.t.Add(offset) }, 0)
}

var simStart = time.Date(2026, 1, 10, 10, 0, 0, 0, time.UTC)

func newSimObject(t testing.TB, sim *simTime, self DeviceID, offset time.Duration, members map[DeviceID]Role) *Object {
	t.Helper()
	o, err := NewObject("obj", TypeList, members, Config{Self: self, Clock: sim.clockAt(offset), Epoch: Epoch{byte(len(self)), self[len(self)-1]}})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestConvergenceEditFromOld is the history of TestConvergence's seed
// 1544 (of 4000 tried): a device edits an old version of an item
// (UpdateFrom with a base below its own newer version, as a folder does
// for a file edited while its newer version was still being applied); its
// new record subsumes its own newer version by sequence but lacked that
// version's history, so a version the newer one subsumed (another
// device's) stayed a conflict on the replicas that got it last and was
// dropped on the others (chaos seed 18: replicas disagreeing on a
// conflict).
func TestConvergenceEditFromOld(t *testing.T) { runConvergence(t, 1544) }

// TestConvergence runs random histories of updates, deletes, resolutions
// and partial exchanges between several devices, then delivers every item
// version that ever existed to every device, and to fresh observers, in
// random orders with duplicates. All of them must end up with identical
// items: the merge is commutative, idempotent and convergent.
func TestConvergence(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 50
	}
	conflicted := 0
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { conflicted += runConvergence(t, uint64(seed)) })
	}
	// The histories must exercise the interesting part of the merge.
	t.Logf("%d of %d runs ended with conflicts", conflicted, seeds)
	if conflicted < seeds/2 {
		t.Errorf("only %d of %d runs ended with conflicts", conflicted, seeds)
	}
}

// runConvergence runs one random history and reports 1 when the final
// items have conflicts.
func runConvergence(t *testing.T, seed uint64) int {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	sim := &simTime{t: simStart}
	ndev := 3 + rng.IntN(3)
	members := make(map[DeviceID]Role)
	var ids []DeviceID
	for i := range ndev {
		d := DeviceID(fmt.Sprintf("dev-%c", 'a'+i))
		ids = append(ids, d)
		members[d] = RoleEditor
	}
	members[ids[0]] = RoleOwner
	var devs []*Object
	for _, d := range ids {
		// Wall clocks disagree by up to ±2 minutes, within the bound.
		offset := time.Duration(rng.IntN(240)-120) * time.Second
		devs = append(devs, newSimObject(t, sim, d, offset, members))
	}
	itemIDs := []ItemID{"i1", "i2", "i3"}
	var universe []Item // every version any device ever held or sent
	record := func(it Item) { universe = append(universe, it) }

	steps := 40 + rng.IntN(120)
	for range steps {
		// Often no time passes, so that `when` ties and HLC counters occur.
		if rng.IntN(3) == 0 {
			sim.advance(time.Duration(rng.IntN(3000)) * time.Millisecond)
		}
		dev := devs[rng.IntN(len(devs))]
		id := itemIDs[rng.IntN(len(itemIDs))]
		switch op := rng.IntN(10); {
		case op < 4:
			it, err := dev.Update(id, Content{Title: fmt.Sprintf("%s@%d", dev.Self(), rng.IntN(1000)), Body: Text("t")})
			if err != nil {
				t.Fatal(err)
			}
			record(it)
		case op < 5:
			if it, err := dev.Delete(id); err == nil {
				record(it)
			}
		case op < 6:
			cur, ok := dev.Item(id)
			if !ok {
				continue
			}
			var it Item
			var err error
			if len(cur.Sync.Conflicts) > 0 && rng.IntN(2) == 0 {
				it, err = dev.Resolve(id, cur.Sync.Conflicts[0].Content)
			} else {
				it, err = dev.Resolve(id)
			}
			if err != nil {
				t.Fatal(err)
			}
			record(it)
		case op < 7:
			// An edit that started from an earlier version (or nothing).
			var base History
			if cur, ok := dev.Item(id); ok && rng.IntN(4) > 0 {
				vs := cur.Versions()
				v := vs[rng.IntN(len(vs))]
				base = v.Sync.History[rng.IntN(len(v.Sync.History))]
			}
			it, err := dev.UpdateFrom(id, base, Content{Title: fmt.Sprintf("%s@%d", dev.Self(), rng.IntN(1000)), Body: Text("t")})
			if err != nil {
				t.Fatal(err)
			}
			record(it)
		case op < 9:
			// Send one item to another device.
			it, ok := dev.Item(id)
			if !ok {
				continue
			}
			to := devs[rng.IntN(len(devs))]
			record(it)
			_, res, err := to.Apply(it)
			if err != nil {
				t.Fatal(err)
			}
			record(res)
		default:
			// A delta exchange through the change log.
			to := devs[rng.IntN(len(devs))]
			if to == dev {
				continue
			}
			batch, err := dev.ChangesSince(to.Cursor(dev.Self()))
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range batch.Changes {
				record(ch.Item)
			}
			if _, err := to.ApplyChanges(dev.Self(), batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, d := range devs {
		universe = append(universe, d.Items()...)
	}

	deliver := func(o *Object) {
		order := rng.Perm(len(universe))
		// Duplicates: a third of the versions again, anywhere.
		for range len(universe) / 3 {
			order = append(order, rng.IntN(len(universe)))
		}
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			if _, _, err := o.Apply(universe[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := devs
	for i := range 2 {
		all = append(all, newSimObject(t, sim, DeviceID(fmt.Sprintf("observer-%d", i)), 0, members))
	}
	for _, o := range all {
		deliver(o)
	}
	want := all[0].Items()
	for _, o := range all[1:] {
		got := o.Items()
		if len(got) != len(want) {
			t.Fatalf("%s holds %d items, %s holds %d", o.Self(), len(got), all[0].Self(), len(want))
		}
		for i := range got {
			if !got[i].Equal(want[i]) {
				t.Fatalf("%s and %s differ after %d steps:\n%s\nvs\n%s", o.Self(), all[0].Self(), steps, show(got[i]), show(want[i]))
			}
		}
	}
	// Idempotent: delivering everything again changes nothing.
	for _, it := range universe {
		changed, _, err := all[0].Apply(it)
		if err != nil {
			t.Fatal(err)
		}
		if changed {
			t.Fatalf("re-delivering %q changed %s", it.Sync.ID, all[0].Self())
		}
	}
	for _, it := range want {
		if len(it.Sync.Conflicts) > 0 {
			return 1
		}
	}
	return 0
}
