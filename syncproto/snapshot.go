package syncproto

import (
	"fmt"
)

// MarshalBinary returns the encoding of the replica (kind 'O'): its ID,
// type, members, change log (items with the sequence of their latest
// change) and the cursors of the peers' logs. The device and the clock
// are not part of it.
func (o *Object) MarshalBinary() ([]byte, error) { return o.marshalV(FormatVersion), nil }

func (o *Object) marshalV(v byte) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := headerV(kindObject, v)
	b = appendString(b, string(o.id))
	b = appendString(b, string(o.typ))
	b = append(b, o.log.epoch[:]...)
	b = appendUvarint(b, o.log.head)
	b = appendUvarint(b, uint64(len(o.members)))
	for _, d := range sortedKeys(o.members) {
		b = appendString(b, string(d))
		b = append(b, byte(o.members[d]))
	}
	b = appendUvarint(b, uint64(len(o.log.items)))
	for _, id := range sortedKeys(o.log.items) {
		e := o.log.items[id]
		b = appendUvarint(b, e.seq)
		b = appendItemV(b, e.item, v)
	}
	b = appendUvarint(b, uint64(len(o.cursors)))
	for _, d := range sortedKeys(o.cursors) {
		c := o.cursors[d]
		b = appendString(b, string(d))
		b = append(b, c.Epoch[:]...)
		b = appendUvarint(b, c.Seq)
	}
	return b
}

// DecodeObject decodes a replica written by MarshalBinary, held by
// cfg.Self with cfg.Clock. The stored epoch is kept. The clock witnesses
// every `when` this device wrote into the replica, so that its HLC does not
// go back after a restart (without the skew bound: they are its own).
func DecodeObject(data []byte, cfg Config) (*Object, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	d, err := newDecoder(data, kindObject)
	if err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	id := ObjectID(d.text("object id"))
	typ := ObjectType(d.text("object type"))
	o := newObject(id, typ, cfg)
	o.log.epoch = d.epoch()
	o.log.head = d.uvarint()

	var prevDev DeviceID
	n := d.count(3, "member")
	for i := 0; i < n && d.err == nil; i++ {
		dev := DeviceID(d.bytes())
		r := Role(d.byte())
		if d.err == nil && (i > 0 && dev <= prevDev || r == RoleNone || !r.valid()) {
			d.fail("member %q: out of order or role %v", dev, r)
		}
		prevDev = dev
		o.members[dev] = r
	}

	seqs := make(map[uint64]bool)
	var prevID ItemID
	n = d.count(10, "item")
	for i := 0; i < n && d.err == nil; i++ {
		seq := d.uvarint()
		it := d.item(true)
		if d.err == nil && (i > 0 && it.Sync.ID <= prevID || seq == 0 || seq > o.log.head || seqs[seq]) {
			d.fail("item %q at sequence %d: out of order or bad sequence", it.Sync.ID, seq)
		}
		prevID = it.Sync.ID
		seqs[seq] = true
		o.log.items[it.Sync.ID] = &entry{item: it, seq: seq}
	}

	prevDev = ""
	n = d.count(18, "cursor")
	for i := 0; i < n && d.err == nil; i++ {
		dev := DeviceID(d.bytes())
		c := Cursor{Epoch: d.epoch(), Seq: d.uvarint()}
		if d.err == nil && (i > 0 && dev <= prevDev || c == Cursor{}) {
			d.fail("cursor of %q: out of order or zero", dev)
		}
		prevDev = dev
		o.cursors[dev] = c
	}
	if err := d.finish(); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}

	if _, err := ParseObjectID(string(id)); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	if _, err := ParseObjectType(string(typ)); err != nil {
		return nil, fmt.Errorf("decode object %q: %w", id, err)
	}
	if o.log.epoch.IsZero() {
		return nil, fmt.Errorf("decode object %q: zero epoch: %w", id, ErrMalformed)
	}
	if err := checkMembers(o.members); err != nil {
		return nil, fmt.Errorf("decode object %q: %w", id, err)
	}
	for dev := range o.cursors {
		if _, err := ParseDeviceID(string(dev)); err != nil {
			return nil, fmt.Errorf("decode object %q: cursor: %w", id, err)
		}
	}
	for _, e := range o.log.items {
		if err := e.item.Validate(); err != nil {
			return nil, fmt.Errorf("decode object %q: %w", id, err)
		}
		for _, v := range appendVersions(nil, e.item) {
			for _, h := range v.Sync.History {
				if h.By == o.self {
					o.clock.Witness(h.When)
				}
			}
		}
	}
	return o, nil
}
