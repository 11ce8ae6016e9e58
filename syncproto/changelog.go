package syncproto

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// Cursor is how far a peer has read a device's change log of one object:
// the log's epoch and the highest sequence number it holds. The zero Cursor
// asks for everything.
type Cursor struct {
	Epoch Epoch
	Seq   uint64
}

// Change is one entry of a change log: the item as it was after the
// change numbered Seq. The log keeps only the latest change of each item
// (earlier versions are subsumed by it), so sequence numbers have gaps.
type Change struct {
	Seq  uint64
	Item Item
}

// Changes is the answer to ChangesSince: the changes of one object after
// a cursor, in increasing Seq order. After applying all of them a peer
// holds everything up to Cursor().
type Changes struct {
	Object  ObjectID
	Epoch   Epoch
	Head    uint64 // the log's highest sequence number when listed
	Changes []Change
}

// Cursor returns the cursor a peer that applied all of c holds.
func (c Changes) Cursor() Cursor { return Cursor{Epoch: c.Epoch, Seq: c.Head} }

// changeLog is the per-object log of one device: every change the device
// made to its replica (its own updates and the merges that changed an
// item), numbered by a monotonically increasing sequence.
type changeLog struct {
	epoch Epoch
	head  uint64
	items map[ItemID]*entry
}

type entry struct {
	item Item
	seq  uint64
}

// put records it as the latest state of its item.
func (l *changeLog) put(it Item) {
	l.head++
	l.items[it.Sync.ID] = &entry{item: it, seq: l.head}
}

// since lists the changes after c.
func (l *changeLog) since(obj ObjectID, c Cursor) (Changes, error) {
	var after uint64
	switch {
	case c.Epoch.IsZero():
		if c.Seq != 0 {
			return Changes{}, fmt.Errorf("changes of %q since %d without epoch: %w", obj, c.Seq, ErrMalformed)
		}
	case c.Epoch != l.epoch:
		return Changes{}, fmt.Errorf("changes of %q since epoch %v, log is epoch %v: %w", obj, c.Epoch, l.epoch, ErrEpochMismatch)
	case c.Seq > l.head:
		// The peer has seen more than this log holds: the log was
		// rolled back (restored from an old backup) without a new epoch.
		return Changes{}, fmt.Errorf("changes of %q since %d, log head is %d: %w", obj, c.Seq, l.head, ErrEpochMismatch)
	default:
		after = c.Seq
	}
	out := Changes{Object: obj, Epoch: l.epoch, Head: l.head}
	for _, e := range l.items {
		if e.seq > after {
			out.Changes = append(out.Changes, Change{Seq: e.seq, Item: e.item.Clone()})
		}
	}
	slices.SortFunc(out.Changes, func(a, b Change) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// EncodeChanges returns the encoding of c. It does not validate it.
func EncodeChanges(c Changes) []byte { return encodeChangesV(c, FormatVersion) }

func encodeChangesV(c Changes, v byte) []byte {
	b := headerV(kindChanges, v)
	b = appendString(b, string(c.Object))
	b = append(b, c.Epoch[:]...)
	b = appendUvarint(b, c.Head)
	b = appendUvarint(b, uint64(len(c.Changes)))
	for _, ch := range c.Changes {
		b = appendUvarint(b, ch.Seq)
		b = appendItemV(b, ch.Item, v)
	}
	return b
}

// DecodeChanges decodes changes written by EncodeChanges and validates
// them: valid items with distinct IDs, sequence numbers strictly
// increasing, none above Head.
func DecodeChanges(data []byte) (Changes, error) {
	d, err := newDecoder(data, kindChanges)
	if err != nil {
		return Changes{}, fmt.Errorf("decode changes: %w", err)
	}
	var c Changes
	c.Object = ObjectID(d.text("object id"))
	c.Epoch = d.epoch()
	c.Head = d.uvarint()
	n := d.count(10, "change")
	var last uint64
	seen := make(map[ItemID]bool)
	for i := 0; i < n && d.err == nil; i++ {
		ch := Change{Seq: d.uvarint()}
		ch.Item = d.item(true)
		if d.err == nil {
			if ch.Seq <= last || ch.Seq > c.Head {
				d.fail("change sequence %d after %d, head %d", ch.Seq, last, c.Head)
			}
			if seen[ch.Item.Sync.ID] {
				d.fail("item %q listed twice", ch.Item.Sync.ID)
			}
		}
		seen[ch.Item.Sync.ID] = true
		last = ch.Seq
		c.Changes = append(c.Changes, ch)
	}
	if err := d.finish(); err != nil {
		return Changes{}, fmt.Errorf("decode changes: %w", err)
	}
	if _, err := ParseObjectID(string(c.Object)); err != nil {
		return Changes{}, fmt.Errorf("decode changes: %w", err)
	}
	if c.Epoch.IsZero() {
		return Changes{}, fmt.Errorf("decode changes of %q: zero epoch: %w", c.Object, ErrMalformed)
	}
	for _, ch := range c.Changes {
		if err := ch.Item.Validate(); err != nil {
			return Changes{}, fmt.Errorf("decode changes of %q: change %d: %w", c.Object, ch.Seq, err)
		}
	}
	return c, nil
}

// sortedKeys returns the keys of m in increasing order.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	return slices.Sorted(maps.Keys(m))
}
