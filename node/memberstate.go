package node

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/identity"
)

// memberState is what this device knows of its mesh's members: the
// membership log, each member's dial backoff and the members' signed
// address records to forward. It owns its lock; nothing outside its
// methods touches its fields.
//
// One lock guards all three, as Node.mu did: keepRecord reads the log to
// drop non-members' records in the same step. The lock is not a leaf: the
// func given to update runs under it and calls other parts (commitLocked
// writes the store and wakes loops;
// NewInvite asks the storage client and the host), so that a change of the log
// and its effects are one step. Nothing it calls may take it again.
type memberState struct {
	mu      sync.Mutex
	log     *identity.Log // nil until the device inits or joins a mesh
	dials   map[peer.ID]*dialState
	records map[peer.ID]keptRecord // the newest of each, marshalled envelopes
}

func newMemberState() *memberState {
	return &memberState{dials: map[peer.ID]*dialState{}, records: map[peer.ID]keptRecord{}}
}

// dialState is one member's redial backoff (discovery.go).
type dialState struct {
	next     time.Time
	backoff  time.Duration
	busy     bool
	kicked   bool // kicked while busy: dial again as soon as this dial ends
	failures int
	// fresh: addresses of the member were learnt since its last dial
	// ended (a forwarded record, the LAN), so it may be online although
	// the last dial failed; the next dial's end clears it (reaching).
	fresh bool
	// learntDuring: addresses learnt while a dial ran (it may have used
	// the old ones): fresh again when that dial ends. Kicks for other
	// reasons (a relay, a membership change) set neither.
	learntDuring bool
}

// keptRecord is a member's signed address record and its sequence number
// (the time the device made it: a restarted device's is higher).
type keptRecord struct {
	raw []byte
	seq uint64
}

// current returns a copy of the log, or nil before the device is in a
// mesh.
func (s *memberState) current() *identity.Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return nil
	}
	return s.log.Clone()
}

// isMember reports whether p is a current, non-revoked member.
func (s *memberState) isMember(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log != nil && s.log.IsMember(p)
}

// lookup returns p's entry in the log, a revoked one included; false
// before the device is in a mesh or when p is not in it.
func (s *memberState) lookup(p peer.ID) (identity.Member, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return identity.Member{}, false
	}
	return s.log.Lookup(p)
}

// isMeshAdmin reports whether device (a peer ID's text form) is a current
// owner or admin of the mesh: it may delete any manifest on the vault
// (vault.Server.SetAdmin, storage.go) and change any catalog entry
// (catalogrules.go).
func (s *memberState) isMeshAdmin(device string) bool {
	id, err := peer.Decode(device)
	if err != nil {
		return false
	}
	m, ok := s.lookup(id)
	return ok && !m.Revoked && m.Role.CanAdmin()
}

// update runs fn with the lock held on the current log (nil before the
// device is in a mesh), which fn may change in place. A non-nil log fn
// returns becomes the current one, also when fn fails: Init and join keep
// a new log whose saving failed, as they always did. fn must not call
// back into s.
func (s *memberState) update(fn func(cur *identity.Log) (*identity.Log, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := fn(s.log)
	if next != nil {
		s.log = next
	}
	return err
}

// keepRecord remembers a signed address record unless a newer one of p is
// kept, dropping non-members' records when there are too many. It reports
// whether it kept b. Without the check a member that still held a record
// from before p restarted (on new ports) forwarded it over the fresh one,
// and two devices restarted together never learned each other's current
// addresses (chaos soak seed 744: neither saw the other for 3 minutes).
func (s *memberState) keepRecord(p peer.ID, b []byte, seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.records[p]; ok && old.seq > seq {
		return false
	}
	if len(s.records) >= maxRecords {
		for id := range s.records {
			if s.log == nil || !s.log.IsMember(id) {
				delete(s.records, id)
			}
		}
	}
	s.records[p] = keptRecord{raw: b, seq: seq}
	return true
}

// recordsOf returns the kept records of members, in their order, leaving
// out skip's and stopping at max.
func (s *memberState) recordsOf(members []identity.Member, skip peer.ID, max int) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, m := range members {
		if r, ok := s.records[m.ID]; ok && m.ID != skip && len(out) < max {
			out = append(out, r.raw)
		}
	}
	return out
}

// claimDial returns p's dial state (a new one, at the shortest backoff,
// the first time) and whether a dial of p is due at now; when it is, the
// state is marked busy until endDial.
func (s *memberState) claimDial(p peer.ID, now time.Time) (*dialState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dials[p]
	if st == nil {
		st = &dialState{backoff: minDialBackoff}
		s.dials[p] = st
	}
	due := !st.busy && !now.Before(st.next)
	if due {
		st.busy = true
	}
	return st, due
}

// failures is how many dials of st failed in a row.
func (s *memberState) failures(st *dialState) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return st.failures
}

// endDial ends the dial claimDial started: a success resets the backoff;
// a failure schedules the next dial a backoff after now (at once if the
// dial was kicked meanwhile) and doubles the backoff. It returns the wait
// and the kicked flag the failed dial ended with, for its log line.
func (s *memberState) endDial(st *dialState, ok bool, now time.Time) (retryIn time.Duration, kicked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.busy = false
	if ok {
		st.backoff = minDialBackoff
		st.next = time.Time{}
		st.failures = 0
		return 0, false
	}
	st.failures++
	st.fresh, st.learntDuring = st.learntDuring, false // addresses learnt during this dial: not tried yet
	retryIn, kicked = st.backoff, st.kicked
	st.next = now.Add(st.backoff)
	if st.kicked { // something changed during the dial (a relay reservation, a new address)
		st.next, st.kicked = time.Time{}, false
	}
	st.backoff = min(2*st.backoff, maxDialBackoff)
	return retryIn, kicked
}

// kickDials makes every member's dial due now; a dial running is marked
// to be retried as soon as it ends.
func (s *memberState) kickDials() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.dials {
		st.next = time.Time{}
		st.kicked = st.busy
	}
}

// reaching reports whether p's dials may yet reach it: no dial has failed
// since the daemon started (the first may be under way), or its addresses
// changed since the last one failed; the retries of a member that keeps
// failing do not count. known is false when p has no dial state yet.
func (s *memberState) reaching(p peer.ID) (r, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dials[p]
	if st == nil {
		return false, false
	}
	return st.fresh || st.failures == 0, true
}

// learnt marks p's addresses as changed since its last dial: a dial
// running now is marked to be retried as soon as it ends.
func (s *memberState) learnt(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.dials[p]; st != nil {
		st.fresh = true
		if st.busy { // that dial may use the old addresses: once more after it
			st.learntDuring, st.kicked = true, true
		}
	}
}

// recordSeq is the sequence number of p's kept record (0 if none).
func (s *memberState) recordSeq(p peer.ID) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records[p].seq
}

// forgetDial drops p's dial state (p connected).
func (s *memberState) forgetDial(p peer.ID) {
	s.mu.Lock()
	delete(s.dials, p)
	s.mu.Unlock()
}
