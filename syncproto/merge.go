package syncproto

import (
	"bytes"
	"math"
	"slices"

	"github.com/meshwork/meshwork/syncproto/hlc"
)

// This file is FeedSync 1.0 itself: subsumption, merge, the winner rule,
// update and conflict resolution, as pure functions on items.

// SubsumedBy reports whether history record x is subsumed by record y:
// when x has a By, y has the same By and a sequence at least as high;
// without a By, when both have the same When and Sequence.
func (x History) SubsumedBy(y History) bool {
	if x.By != "" {
		return y.By == x.By && y.Sequence >= x.Sequence
	}
	return !x.When.IsZero() && y.When == x.When && y.Sequence == x.Sequence
}

// SubsumedBy reports whether item x is subsumed by item y: whether x's
// topmost history record is subsumed by any history record of y. Conflicts
// play no part.
func (x Item) SubsumedBy(y Item) bool {
	if len(x.Sync.History) == 0 {
		return false
	}
	top := x.Sync.History[0]
	for _, h := range y.Sync.History {
		if top.SubsumedBy(h) {
			return true
		}
	}
	return false
}

// CompareWinner orders two versions of an item by the FeedSync winner rule:
// more updates wins; then the later topmost `when` (a present `when` beats an
// absent one); then the greater topmost `by` by DeviceID.Compare (a present
// `by` beats an absent one). It returns +1 when a wins, -1 when b wins and 0
// when the rule cannot tell them apart.
func CompareWinner(a, b Item) int {
	if a.Sync.Updates != b.Sync.Updates {
		if a.Sync.Updates > b.Sync.Updates {
			return 1
		}
		return -1
	}
	ta, tb := a.Sync.Top(), b.Sync.Top()
	if c := ta.When.Compare(tb.When); c != 0 {
		// The zero Timestamp is before every present one.
		return c
	}
	switch {
	case ta.By == tb.By:
		return 0
	case ta.By == "":
		return -1
	case tb.By == "":
		return 1
	}
	return ta.By.Compare(tb.By)
}

// compareTotal extends CompareWinner to a total order on distinct versions,
// so that the merge result does not depend on the order of its inputs even
// for inputs the FeedSync rule calls a tie.
func compareTotal(a, b Item) int {
	if c := CompareWinner(a, b); c != 0 {
		return c
	}
	if sa, sb := a.Sync.Top().Sequence, b.Sync.Top().Sequence; sa != sb {
		if sa > sb {
			return 1
		}
		return -1
	}
	return bytes.Compare(appendItem(nil, a), appendItem(nil, b))
}

// Merge merges an incoming item into the local one, as FeedSync 1.0
// prescribes; local is nil when the endpoint has no such item.
//
// Both items are split into their versions (the item stripped of its
// conflicts, plus each conflict). A version is dropped when a version from
// the other side, or a different version from its own side, subsumes it;
// two versions that subsume each other are the same update and are kept
// once. Of the remaining versions the winner (CompareWinner) is the result;
// unless its NoConflicts is set, the others become its Conflicts, ordered
// from the strongest to the weakest.
//
// The spec compares the versions of each side only with those of the other
// side. Comparing within a side as well changes nothing for items this
// package writes (their conflicts never subsume each other or the item),
// and it makes Merge a function of the set of versions it is given, which
// is what makes replicas converge whatever the delivery order.
func Merge(local *Item, incoming Item) Item {
	var vs []Item
	if local != nil {
		vs = appendVersions(vs, *local)
	}
	vs = appendVersions(vs, incoming)
	return fromVersions(vs)
}

// Versions returns the versions of it: it without its conflicts, then
// each conflict.
func (it Item) Versions() []Item { return appendVersions(nil, it) }

func appendVersions(vs []Item, it Item) []Item {
	vs = append(vs, it.stripped())
	for _, c := range it.Sync.Conflicts {
		vs = append(vs, c.stripped())
	}
	return vs
}

// fromVersions returns the item whose versions are the maximal elements of
// vs under subsumption.
func fromVersions(vs []Item) Item {
	slices.SortStableFunc(vs, func(a, b Item) int { return compareTotal(b, a) })
	var kept []Item
	for i, x := range vs {
		drop := false
		for j, y := range vs {
			if i == j || !x.SubsumedBy(y) {
				continue
			}
			// Mutual subsumption: the same update twice; keep the first.
			if !y.SubsumedBy(x) || j < i {
				drop = true
				break
			}
		}
		if !drop {
			kept = append(kept, x)
		}
	}
	if len(kept) == 0 {
		// Only possible for versions without history, which subsume
		// nothing and are subsumed by nothing; unreachable.
		return vs[0]
	}
	w := kept[0]
	if !w.Sync.NoConflicts && len(kept) > 1 {
		w.Sync.Conflicts = kept[1:]
	}
	return w
}

// UpdateItem returns it after a FeedSync update by `by` at `when`: Updates
// incremented, a new topmost history record (Updates, when, by), Deleted set
// as given, no Signature. Content and conflicts are unchanged.
//
// At the top of the count (Updates is math.MaxUint32, which only a hostile
// device's versions come near: see MaxUpdateStep) the count stays where it
// is and by's own record at that count, if any, is replaced by the new one,
// so that an item never stops taking edits. The new version and by's
// earlier one at the top subsume each other; the merge keeps the stronger,
// which is the new one (its `when` is later, since the clock observed every
// `when` the replica holds). It never fails; the error is kept for callers.
func UpdateItem(it Item, by DeviceID, when hlc.Timestamp, deleted bool) (Item, error) {
	out := it.Clone()
	if out.Sync.Updates == math.MaxUint32 {
		out.Sync.History = slices.DeleteFunc(out.Sync.History, func(h History) bool {
			return h.By == by && h.Sequence == math.MaxUint32
		})
		out.Sync.Updates-- // incremented again below
	}
	out.Sync.Updates++
	out.Sync.Deleted = deleted
	out.Sync.Signature = nil // a new version: its author signs it (SignVersion)
	out.Sync.History = slices.Insert(out.Sync.History, 0, History{Sequence: out.Sync.Updates, When: when, By: by})
	return out, nil
}

// FoldConflicts resolves the conflicts of it for which resolve returns true
// (all of them when resolve is nil), as FeedSync prescribes: each one, in
// order, is removed and every history record of it not subsumed by the
// item's history is inserted right after the item's topmost record. The
// caller then makes a normal update (UpdateItem). The Conflicts slice is
// nil when no conflict remains.
func FoldConflicts(it Item, resolve func(Item) bool) Item {
	out := it.Clone()
	var remaining []Item
	for _, c := range out.Sync.Conflicts {
		if resolve != nil && !resolve(c) {
			remaining = append(remaining, c)
			continue
		}
		foldHistory(&out, c)
	}
	out.Sync.Conflicts = remaining
	return out
}

// foldHistory inserts the history records of vs that out's history does
// not subsume after out's topmost record (or makes them its history when
// it has none).
func foldHistory(out *Item, vs ...Item) {
	var add []History
	for _, v := range vs {
		for _, h := range v.Sync.History {
			if !subsumedByAny(h, out.Sync.History) && !subsumedByAny(h, add) {
				add = append(add, h)
			}
		}
	}
	if len(out.Sync.History) == 0 {
		out.Sync.History = add
	} else {
		out.Sync.History = slices.Insert(out.Sync.History, 1, add...)
	}
}

// foldOwn returns edit, a new version of cur's item by self made from an
// earlier version (BaseVersion), with the history records of each version
// of cur whose topmost record is self's inserted after edit's topmost
// record (or as its history when it has none), as FoldConflicts does.
// The edit's update by self will subsume those versions (its sequence is
// above every record of self's): without their records, a version they
// subsume would not be subsumed by the edit, and replicas that received
// them in different orders would keep different conflicts (subsumption
// would not be transitive).
func foldOwn(edit, cur Item, self DeviceID) Item {
	out := edit.Clone()
	var own []Item
	for _, v := range cur.Versions() {
		if v.Sync.Top().By == self {
			own = append(own, v)
		}
	}
	foldHistory(&out, own...)
	return out
}

func subsumedByAny(h History, hs []History) bool {
	for _, y := range hs {
		if h.SubsumedBy(y) {
			return true
		}
	}
	return false
}

// BaseVersion returns the version of it that an edit started from, when
// it has moved on from that version through updates by devices other than
// self. base is the topmost record of the edit's starting version, zero
// for an edit that started from nothing.
//
// The version is the item or the conflict whose history holds base, cut to
// base and the records below it, with base's sequence as its Updates: the
// item as it was at base (its content and conflicts are left empty). When
// no version holds base, or base is zero, the starting point is a new item
// without history, concurrent with every version of it.
//
// It reports false when it has not moved on: its topmost record is base,
// or self's own (this device's newest update is what was edited), or base
// is zero and it is a tombstone (something new where the item was
// deleted).
func BaseVersion(it Item, base History, self DeviceID) (Item, bool) {
	top := it.Sync.Top()
	if top.By == self || (top.By == base.By && top.Sequence == base.Sequence) {
		return Item{}, false
	}
	out := Item{Sync: Sync{ID: it.Sync.ID}}
	if base == (History{}) {
		return out, !it.Sync.Deleted
	}
	for _, v := range it.Versions() {
		for i, h := range v.Sync.History {
			if h.By != base.By || h.Sequence != base.Sequence {
				continue
			}
			hist := v.Sync.History[i:]
			for _, r := range hist {
				if r.Sequence > base.Sequence {
					return out, true // not a version this package wrote
				}
			}
			out.Sync.Updates = base.Sequence
			out.Sync.History = slices.Clone(hist)
			return out, true
		}
	}
	return out, true
}

// maxSequenceBy returns the highest sequence of by's records in it and its
// conflicts.
func maxSequenceBy(it Item, by DeviceID) uint32 {
	var m uint32
	for _, v := range it.Versions() {
		for _, h := range v.Sync.History {
			if h.By == by {
				m = max(m, h.Sequence)
			}
		}
	}
	return m
}
