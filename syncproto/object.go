package syncproto

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/meshwork/meshwork/syncproto/hlc"
)

// Config is what an Object needs from the device holding it.
type Config struct {
	// Self is this device: the `by` of its own updates.
	Self DeviceID
	// Clock gives the `when` of its own updates and bounds remote ones.
	Clock *hlc.Clock
	// Epoch is the epoch of this device's change logs, created with its
	// database (NewEpoch). NewObject creates a random one when it is zero.
	// DecodeObject ignores it and keeps the stored one.
	Epoch Epoch
	// Signer signs the versions this device creates (SignVersion). Nil:
	// they are unsigned.
	Signer Signer
	// Verifier checks the signatures of versions received from peers
	// (ApplyFrom). Nil: signatures are not checked.
	Verifier Verifier
	// Validate, when set, judges every new version of an item by what it
	// means, before it counts: each version Apply receives that the
	// replica does not hold yet, and each local change (Update, UpdateFrom,
	// Delete, Resolve). A version it refuses is not applied, so never
	// logged nor relayed; Apply reports it wrapped in ErrRefused.
	Validate Validator
	// MaxItemSize, when positive, bounds the encoding (EncodeItem) of an
	// item Apply accepts; a larger one is refused with ErrTooLarge.
	MaxItemSize int
	// FormerWriter, when set, reports for a device that may not write
	// object obj (now) until when it could: a version it authored whose
	// topmost `when` is not after until is judged as a writer's. Work a
	// device did before it was revoked stays valid, for the devices that
	// had it and for one that joins later alike (else their replicas would
	// differ for good). It is called with the replica locked and must not
	// call the Object's methods.
	FormerWriter func(obj ObjectID, d DeviceID) (until hlc.Timestamp, ok bool)
}

// MaxUpdateStep bounds how far a version received by Apply may advance an
// item's update count beyond the highest count of the replica's versions of
// the item (zero for an item it does not hold): a larger jump is refused
// with ErrUpdateStep. Every local update adds one, so an honest device
// that edits an item 2^24 times (once a second for 194 days) while away
// from every peer is still accepted; a hostile one cannot push an item to
// the top of the count in one version.
const MaxUpdateStep = 1 << 24

// A Validator judges a new version of an item by its meaning: prev is the
// replica's item as it is (nil when the replica does not hold it; it may
// carry conflicts), next the new version (without conflicts; its topmost
// history record is its author's). It runs with the replica locked: it may
// read the replica through v, and must not call the Object's methods. A
// non-nil error refuses the version.
type Validator func(v View, prev *Item, next Item) error

// View is read access to a replica for its Validator, valid during the
// call only.
type View struct{ o *Object }

// Object returns the replica's object ID.
func (v View) Object() ObjectID { return v.o.id }

// Item returns a copy of the replica's item id.
func (v View) Item(id ItemID) (Item, bool) {
	e, ok := v.o.log.items[id]
	if !ok {
		return Item{}, false
	}
	return e.item.Clone(), true
}

// Items returns copies of the replica's items in ID order, tombstones
// included.
func (v View) Items() []Item {
	out := make([]Item, 0, len(v.o.log.items))
	for _, id := range sortedKeys(v.o.log.items) {
		out = append(out, v.o.log.items[id].item.Clone())
	}
	return out
}

// Object is one device's replica of a mesh object: a feed of items with
// FeedSync metadata, the object's members and roles, the device's change
// log of the object, and the cursors of the peers' logs this device has
// read. It is safe for concurrent use.
type Object struct {
	id       ObjectID
	typ      ObjectType
	self     DeviceID
	clock    *hlc.Clock
	signer   Signer
	verifier Verifier
	valid    Validator
	max      int // Config.MaxItemSize
	former   func(ObjectID, DeviceID) (hlc.Timestamp, bool)

	mu      sync.Mutex
	members map[DeviceID]Role
	log     changeLog
	cursors map[DeviceID]Cursor
}

// NewObject returns a replica of object id of type typ with the given
// members, held by cfg.Self. There must be at least one owner.
func NewObject(id ObjectID, typ ObjectType, members map[DeviceID]Role, cfg Config) (*Object, error) {
	if _, err := ParseObjectID(string(id)); err != nil {
		return nil, fmt.Errorf("new object: %w", err)
	}
	if _, err := ParseObjectType(string(typ)); err != nil {
		return nil, fmt.Errorf("new object %q: %w", id, err)
	}
	if err := checkConfig(cfg); err != nil {
		return nil, fmt.Errorf("new object %q: %w", id, err)
	}
	if err := checkMembers(members); err != nil {
		return nil, fmt.Errorf("new object %q: %w", id, err)
	}
	epoch := cfg.Epoch
	if epoch.IsZero() {
		var err error
		if epoch, err = NewEpoch(nil); err != nil {
			return nil, fmt.Errorf("new object %q: %w", id, err)
		}
	}
	o := newObject(id, typ, cfg)
	o.log.epoch = epoch
	maps.Copy(o.members, members)
	return o, nil
}

func newObject(id ObjectID, typ ObjectType, cfg Config) *Object {
	return &Object{
		id:       id,
		typ:      typ,
		self:     cfg.Self,
		clock:    cfg.Clock,
		signer:   cfg.Signer,
		verifier: cfg.Verifier,
		valid:    cfg.Validate,
		max:      cfg.MaxItemSize,
		former:   cfg.FormerWriter,
		members:  make(map[DeviceID]Role),
		log:      changeLog{items: make(map[ItemID]*entry)},
		cursors:  make(map[DeviceID]Cursor),
	}
}

func checkConfig(cfg Config) error {
	if _, err := ParseDeviceID(string(cfg.Self)); err != nil {
		return fmt.Errorf("config: self: %w", err)
	}
	if cfg.Clock == nil {
		return fmt.Errorf("config: no clock: %w", ErrMalformed)
	}
	return nil
}

func checkMembers(members map[DeviceID]Role) error {
	owners := 0
	for d, r := range members {
		if _, err := ParseDeviceID(string(d)); err != nil {
			return fmt.Errorf("member: %w", err)
		}
		if r == RoleNone || !r.valid() {
			return fmt.Errorf("member %q: role %v: %w", d, r, ErrMalformed)
		}
		if r == RoleOwner {
			owners++
		}
	}
	if owners == 0 {
		return fmt.Errorf("no owner: %w", ErrMalformed)
	}
	return nil
}

// ID returns the object's ID.
func (o *Object) ID() ObjectID { return o.id }

// Type returns the object's type.
func (o *Object) Type() ObjectType { return o.typ }

// Self returns the device holding this replica.
func (o *Object) Self() DeviceID { return o.self }

// Role returns d's role in the object (RoleNone for non-members).
//
// An endpoint of a member device, "DEVICE/NAME" (a program that takes part
// in sync through that device's API as a FeedSync endpoint of its own), may
// write when DEVICE may write: its role is DEVICE's, owner lowered to
// editor, unless it is a member under its own name.
func (o *Object) Role(d DeviceID) Role {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.roleLocked(d)
}

func (o *Object) roleLocked(d DeviceID) Role {
	if r, ok := o.members[d]; ok {
		return r
	}
	if dev, _, ok := strings.Cut(string(d), "/"); ok {
		r := o.members[DeviceID(dev)]
		if r == RoleOwner {
			r = RoleEditor
		}
		return r
	}
	return RoleNone
}

// wroteBefore reports whether h, by a device that may not write now, was
// written while it could (Config.FormerWriter). An endpoint DEVICE/NAME
// counts as its device. Called with mu held.
func (o *Object) wroteBefore(h History) bool {
	if o.former == nil || h.When.IsZero() {
		return false
	}
	d := h.By
	if dev, _, ok := strings.Cut(string(d), "/"); ok {
		d = DeviceID(dev)
	}
	until, ok := o.former(o.id, d)
	return ok && !h.When.After(until)
}

// CanWrite reports whether d may change items: whether it is an owner or
// an editor of the object.
func (o *Object) CanWrite(d DeviceID) bool { return o.Role(d).CanWrite() }

// Members returns a copy of the object's members and their roles.
func (o *Object) Members() map[DeviceID]Role {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.members)
}

// SetRole gives d the role r (RoleNone removes d). Only an owner may change
// roles, and the last owner may not be removed or demoted.
func (o *Object) SetRole(d DeviceID, r Role) error {
	if _, err := ParseDeviceID(string(d)); err != nil {
		return fmt.Errorf("set role in %q: %w", o.id, err)
	}
	if !r.valid() {
		return fmt.Errorf("set role of %q in %q: %v: %w", d, o.id, r, ErrMalformed)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.members[o.self] != RoleOwner {
		return fmt.Errorf("set role of %q in %q by %q: %w", d, o.id, o.self, ErrNotOwner)
	}
	next := maps.Clone(o.members)
	if r == RoleNone {
		delete(next, d)
	} else {
		next[d] = r
	}
	if err := checkMembers(next); err != nil {
		return fmt.Errorf("set role of %q in %q to %v: %w", d, o.id, r, err)
	}
	o.members = next
	return nil
}

// SetMembers replaces the member list with one derived from an outside
// authority that every device computes alike (the daemon derives object
// roles from the mesh's signed membership log and its catalog), so unlike
// SetRole it does not require this device to be an owner. The list must
// name at least one owner.
func (o *Object) SetMembers(members map[DeviceID]Role) error {
	next := make(map[DeviceID]Role, len(members))
	for d, r := range members {
		if _, err := ParseDeviceID(string(d)); err != nil {
			return fmt.Errorf("set members of %q: %w", o.id, err)
		}
		if !r.valid() {
			return fmt.Errorf("set members of %q: role of %q: %v: %w", o.id, d, r, ErrMalformed)
		}
		if r != RoleNone {
			next[d] = r
		}
	}
	if err := checkMembers(next); err != nil {
		return fmt.Errorf("set members of %q: %w", o.id, err)
	}
	o.mu.Lock()
	o.members = next
	o.mu.Unlock()
	return nil
}

// Epoch returns the epoch of this device's change log of the object.
func (o *Object) Epoch() Epoch { return o.log.epoch }

// Head returns the highest sequence number of this device's change log.
func (o *Object) Head() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.log.head
}

// Item returns a copy of the item with the given ID.
func (o *Object) Item(id ItemID) (Item, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.log.items[id]
	if !ok {
		return Item{}, false
	}
	return e.item.Clone(), true
}

// Items returns copies of all items, tombstones included, in ID order.
func (o *Object) Items() []Item {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Item, 0, len(o.log.items))
	for _, id := range sortedKeys(o.log.items) {
		out = append(out, o.log.items[id].item.Clone())
	}
	return out
}

// Apply merges an item received from a peer into the replica (Merge) and
// reports whether the replica changed and what it now holds.
//
// The incoming item is refused, and the replica left as it was, when it is
// not valid (ErrMalformed), when one of the versions it brings that the
// replica does not already hold was authored (its topmost `by`) by a device
// that may not write (ErrReadOnly), or when one of its `when` values is too
// far in the future for the clock (ErrClockSkew; the item can be retried
// later). It is refused too when its encoding exceeds Config.MaxItemSize
// (ErrTooLarge), when a new version advances the update count by more than
// MaxUpdateStep (ErrUpdateStep), or when Config.Validate refuses a new
// version (ErrRefused). Otherwise the clock observes the new `when` values,
// so that later local updates come after them, and a change is appended to
// the log when the item changed.
//
// Apply is ApplyFrom with no sending device: every new version must be
// signed.
func (o *Object) Apply(incoming Item) (changed bool, result Item, err error) {
	return o.ApplyFrom("", incoming)
}

// ApplyFrom is Apply for an item received from device from. With a
// Verifier, every version the item brings that the replica does not hold
// must carry its author's valid signature (VerifyVersion; an unsigned one
// passes only when from is its author): else the item is refused
// (ErrBadSignature). Versions the replica already holds are kept as held:
// an incoming copy never replaces them.
func (o *Object) ApplyFrom(from DeviceID, incoming Item) (changed bool, result Item, err error) {
	if err := incoming.Validate(); err != nil {
		return false, Item{}, fmt.Errorf("apply to %q: %w", o.id, err)
	}
	id := incoming.Sync.ID
	if o.max > 0 {
		if n := len(EncodeItem(incoming)); n > o.max {
			return false, Item{}, fmt.Errorf("apply item %q to %q: %d bytes exceed the limit of %d: %w", id, o.id, n, o.max, ErrTooLarge)
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var local *Item
	if e, ok := o.log.items[id]; ok {
		local = &e.item
	}
	fresh := newVersions(local, incoming)
	known := knownUpdates(local)
	var latest hlc.Timestamp
	for _, v := range fresh {
		top := v.Sync.Top()
		if r := o.roleLocked(top.By); !r.CanWrite() && !o.wroteBefore(top) {
			return false, Item{}, fmt.Errorf("apply item %q to %q: update %d by %q (%v): %w",
				id, o.id, top.Sequence, top.By, r, ErrReadOnly)
		}
		if uint64(v.Sync.Updates) > known+MaxUpdateStep {
			return false, Item{}, fmt.Errorf("apply item %q to %q: update count %d by %q is more than %d beyond %d: %w",
				id, o.id, v.Sync.Updates, top.By, MaxUpdateStep, known, ErrUpdateStep)
		}
		if o.verifier != nil {
			if err := VerifyVersion(o.id, v, from, o.verifier); err != nil {
				return false, Item{}, fmt.Errorf("apply to %q: %w", o.id, err)
			}
		}
		// Judged by meaning only once its author is known to be genuine.
		if err := o.validate(local, v); err != nil {
			return false, Item{}, fmt.Errorf("apply item %q to %q: update %d by %q: %w", id, o.id, top.Sequence, top.By, err)
		}
		for _, h := range v.Sync.History {
			if h.When.After(latest) {
				latest = h.When
			}
		}
	}
	if err := o.clock.Observe(latest); err != nil {
		return false, Item{}, fmt.Errorf("apply item %q to %q: %w", id, o.id, err)
	}
	// Only the new versions join the local ones: a copy of a held version
	// (same `by` and sequence) with other bytes must not replace it.
	var vs []Item
	if local != nil {
		vs = appendVersions(vs, *local)
	}
	merged := fromVersions(append(vs, fresh...))
	if local != nil && merged.Equal(*local) {
		return false, local.Clone(), nil
	}
	o.log.put(merged)
	return true, merged.Clone(), nil
}

// validate runs the Validator on version next; the caller holds o.mu.
func (o *Object) validate(prev *Item, next Item) error {
	if o.valid == nil {
		return nil
	}
	if err := o.valid(View{o}, prev, next.stripped()); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return nil
}

// knownUpdates is the highest update count of local's versions (0 for nil).
func knownUpdates(local *Item) uint64 {
	if local == nil {
		return 0
	}
	var m uint32
	for _, v := range local.Versions() {
		m = max(m, v.Sync.Updates)
	}
	return uint64(m)
}

// newVersions returns the versions of incoming that local does not hold:
// those not subsumed by local or one of its conflicts. A version and a
// local one that subsume each other but differ (the same `by` and sequence
// with other content: an item at the top of the update count, see
// UpdateItem) is new too: the merge may pick it.
func newVersions(local *Item, incoming Item) []Item {
	var have []Item
	if local != nil {
		have = appendVersions(nil, *local)
	}
	var out []Item
	for _, v := range appendVersions(nil, incoming) {
		known := false
		for _, h := range have {
			if v.SubsumedBy(h) && (!h.SubsumedBy(v) || v.Equal(h)) {
				known = true
				break
			}
		}
		if !known {
			out = append(out, v)
		}
	}
	return out
}

// ApplyChanges applies a batch of changes read from peer's change log and
// advances the cursor of that log. Items refused for good (ErrMalformed,
// ErrReadOnly) are skipped and reported; an item refused for now
// (ErrClockSkew) stops the batch with the cursor just before it, so that
// it is asked for again next time. It returns the number of items that
// changed and the refusals, joined.
func (o *Object) ApplyChanges(peer DeviceID, c Changes) (changed int, err error) {
	if c.Object != o.id {
		return 0, fmt.Errorf("apply changes of %q from %q to %q: %w", c.Object, peer, o.id, ErrMalformed)
	}
	var errs []error
	for _, ch := range c.Changes {
		ok, _, err := o.ApplyFrom(peer, ch.Item)
		if errors.Is(err, ErrClockSkew) {
			o.setCursor(peer, c.Epoch, ch.Seq-1)
			return changed, errors.Join(append(errs, err)...)
		}
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			changed++
		}
	}
	o.setCursor(peer, c.Epoch, c.Head)
	return changed, errors.Join(errs...)
}

func (o *Object) setCursor(peer DeviceID, epoch Epoch, seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cursors[peer] = Cursor{Epoch: epoch, Seq: seq}
}

// Cursor returns how far this device has read peer's change log of the
// object; the zero Cursor when it has read nothing.
func (o *Object) Cursor(peer DeviceID) Cursor {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cursors[peer]
}

// SetCursor records how far this device has read peer's change log; a zero
// Cursor forgets it (the next exchange is a full reconciliation).
func (o *Object) SetCursor(peer DeviceID, c Cursor) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c == (Cursor{}) {
		delete(o.cursors, peer)
		return
	}
	o.cursors[peer] = c
}

// ChangesSince returns this device's changes to the object after c, for a
// peer that holds c. A zero Cursor lists every item: the full
// reconciliation. A cursor of another epoch, or beyond the log's head,
// fails with ErrEpochMismatch: the peer must start over with a zero Cursor.
func (o *Object) ChangesSince(c Cursor) (Changes, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.log.since(o.id, c)
}

// Update makes a local change to an item, creating it when it does not
// exist: the content is replaced, Updates incremented and a history record
// with this device's `by` and the clock's `when` pushed. An update of a
// tombstone brings the item back.
//
// Conflicts that are earlier versions by this device are folded in (as
// Resolve does): the new history record would subsume them anyway, and
// keeping their history keeps subsumption transitive, which replicas need to
// converge. Other conflicts are kept.
func (o *Object) Update(id ItemID, c Content) (Item, error) {
	return o.change(id, "update", nil, func(cur *Item) (Item, bool, error) { return updated(cur, id, c), false, nil })
}

// UpdateFrom is Update for an edit made to an earlier version of the item:
// base is the topmost history record of the version the editor started
// from (a synced folder's file as it was on disk), or zero for an edit
// that started from nothing (a file created here).
//
// When the item is still at base, or its newest update is this device's
// own, or it does not exist, or base is zero and the item is a tombstone,
// UpdateFrom is Update. Otherwise the item has moved on since the edit's
// starting point, with updates from other devices the editor had not seen,
// and the edit is a new version of the base version (BaseVersion),
// concurrent with those updates: it is merged with the item (Merge), so
// that both are kept on every replica, one as the winner and the other as
// its conflict. Update would instead make the edit silently supersede
// updates it never saw.
func (o *Object) UpdateFrom(id ItemID, base History, c Content) (Item, error) {
	return o.change(id, "update", &base, func(cur *Item) (Item, bool, error) { return updated(cur, id, c), false, nil })
}

// updated is cur (a new item when nil) with content c.
func updated(cur *Item, id ItemID, c Content) Item {
	var it Item
	if cur == nil {
		it = Item{Sync: Sync{ID: id}}
	} else {
		it = *cur
	}
	it.Content = c.Clone()
	return it
}

// Delete makes an item a tombstone: a local update with Deleted set. The
// content is kept. Deleting a tombstone that has no conflicts changes
// nothing.
func (o *Object) Delete(id ItemID) (Item, error) {
	return o.change(id, "delete", nil, func(cur *Item) (Item, bool, error) {
		if cur == nil {
			return Item{}, false, ErrNotFound
		}
		if cur.Sync.Deleted && len(cur.Sync.Conflicts) == 0 {
			return *cur, false, errUnchanged
		}
		return *cur, true, nil
	})
}

// Resolve resolves all conflicts of an item: their history is folded into
// the item (FoldConflicts) and a local update made. The item keeps its
// winning content and deleted state, or, when keep is given, takes keep as
// its content and is no longer deleted (to keep a conflict's content, pass
// its Content). At most one keep may be given. An item without conflicts is
// only updated when keep is given.
func (o *Object) Resolve(id ItemID, keep ...Content) (Item, error) {
	if len(keep) > 1 {
		return Item{}, fmt.Errorf("resolve %q in %q: %d contents to keep: %w", id, o.id, len(keep), ErrMalformed)
	}
	return o.change(id, "resolve", nil, func(cur *Item) (Item, bool, error) {
		if cur == nil {
			return Item{}, false, ErrNotFound
		}
		if len(cur.Sync.Conflicts) == 0 && len(keep) == 0 {
			return *cur, false, errUnchanged
		}
		it := FoldConflicts(*cur, nil)
		if len(keep) == 0 {
			return it, it.Sync.Deleted, nil
		}
		it.Content = keep[0].Clone()
		return it, false, nil
	})
}

var errUnchanged = errors.New("unchanged")

// change makes a local update: edit returns the item to update (content
// set) and whether it is to be deleted. A non-nil base is the version the
// edit started from (UpdateFrom).
func (o *Object) change(id ItemID, op string, base *History, edit func(cur *Item) (Item, bool, error)) (Item, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.members[o.self].CanWrite() {
		return Item{}, fmt.Errorf("%s %q in %q by %q (%v): %w", op, id, o.id, o.self, o.members[o.self], ErrReadOnly)
	}
	self := o.self
	var cur *Item
	if e, ok := o.log.items[id]; ok {
		c := e.item.Clone()
		cur = &c
	}
	var from *Item // the base version, when the item has moved on from it
	if cur != nil && base != nil {
		if v, ok := BaseVersion(*cur, *base, self); ok {
			from = &v
		}
	}
	target := cur
	if from != nil {
		target = from
	}
	it, deleted, err := edit(target)
	if errors.Is(err, errUnchanged) {
		return it.Clone(), nil
	}
	if err != nil {
		return Item{}, fmt.Errorf("%s %q in %q: %w", op, id, o.id, err)
	}
	if from == nil {
		it = FoldConflicts(it, func(c Item) bool { return c.Sync.Top().By == self })
	} else {
		// The new record's sequence must be above every record of this
		// device's in the item, or the item would subsume the edit.
		it.Sync.Updates = max(it.Sync.Updates, maxSequenceBy(*cur, self))
		// Then the edit subsumes this device's own versions: it takes in
		// their history, so that it also subsumes what they subsume.
		it = foldOwn(it, *cur, self)
	}
	it, err = UpdateItem(it, self, o.clock.Now(), deleted)
	if err != nil {
		return Item{}, fmt.Errorf("%s %q in %q: %w", op, id, o.id, err)
	}
	if err := o.validate(cur, it); err != nil {
		return Item{}, fmt.Errorf("%s %q in %q by %q: %w", op, id, o.id, self, err)
	}
	if o.signer != nil {
		if it, err = SignVersion(o.id, it, o.signer); err != nil {
			return Item{}, fmt.Errorf("%s %q in %q: %w", op, id, o.id, err)
		}
	}
	if from != nil {
		it = Merge(cur, it) // the edit beside the updates it never saw
	}
	if err := it.Validate(); err != nil {
		return Item{}, fmt.Errorf("%s %q in %q: %w", op, id, o.id, err)
	}
	o.log.put(it)
	return it.Clone(), nil
}

// SignOwn returns it with every version (the item and each conflict)
// whose topmost `by` is this device or one of its endpoints
// ("DEVICE/NAME") signed by this device's Signer: for items written by an
// outside FeedSync endpoint through this device's API, which has no key
// of its own. Other versions are left as they are. Without a Signer it
// returns it unchanged.
func (o *Object) SignOwn(it Item) (Item, error) {
	if o.signer == nil {
		return it, nil
	}
	it = it.Clone()
	own := func(v Item) bool { return AuthorDevice(v.Sync.Top().By) == o.self }
	if own(it) {
		signed, err := SignVersion(o.id, it, o.signer)
		if err != nil {
			return Item{}, err
		}
		it = signed
	}
	for i, c := range it.Sync.Conflicts {
		if own(c) {
			signed, err := SignVersion(o.id, c, o.signer)
			if err != nil {
				return Item{}, err
			}
			it.Sync.Conflicts[i] = signed
		}
	}
	return it, nil
}
