package identity

import (
	"bytes"
	"cmp"
	"container/heap"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Log is a verified, append-only membership log. Not safe for concurrent
// use; Clone it to hand a copy to another goroutine. The zero Log is empty
// and belongs to no mesh; use NewMesh or DecodeLog.
type Log struct {
	mesh  MeshID
	g     *graph
	order []*entry  // deterministic topological order
	heads []EntryID // entries without children, sorted
	st    *state    // membership after applying order
}

// graph indexes a set of entries and caches ancestor sets.
type graph struct {
	byID map[EntryID]*entry
	anc  map[EntryID]map[EntryID]bool // strict ancestors, cached for revocations
}

// ancestors returns the strict ancestors of id.
func (g *graph) ancestors(id EntryID) map[EntryID]bool {
	seen := map[EntryID]bool{}
	stack := slices.Clone(g.byID[id].parents)
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[p] {
			continue
		}
		seen[p] = true
		stack = append(stack, g.byID[p].parents...)
	}
	return seen
}

// isAncestor reports whether a is a strict ancestor of b.
func (g *graph) isAncestor(a, b EntryID) bool {
	s, ok := g.anc[b]
	if !ok {
		s = g.ancestors(b)
		g.anc[b] = s
	}
	return s[a]
}

func newMesh(key crypto.PrivKey, name string, now time.Time) (*Log, error) {
	id, err := deviceID(key)
	if err != nil {
		return nil, fmt.Errorf("new mesh: %w", err)
	}
	e := &entry{kind: kindGenesis, author: id, subject: id, name: name, role: RoleOwner, time: now.UnixNano()}
	if err := e.seal(key); err != nil {
		return nil, fmt.Errorf("new mesh: %w", err)
	}
	l := &Log{mesh: MeshID(e.id), g: &graph{byID: map[EntryID]*entry{}, anc: map[EntryID]map[EntryID]bool{}}, st: newState()}
	l.push(e)
	return l, nil
}

// push appends e, whose parents are all of l's heads and which passed
// check against l.st, so that it comes last in the deterministic order.
func (l *Log) push(e *entry) {
	l.g.byID[e.id] = e
	l.order = append(l.order, e)
	l.heads = []EntryID{e.id}
	l.st.apply(e)
	l.st.note(e)
}

// build verifies entries (in any order) and makes a Log of them. Errors
// name the entry by its index in entries. Signatures are checked unless
// trusted reports the entry was verified before.
func build(entries []*entry, trusted func(*entry) bool) (*Log, error) {
	where := func(i int) string { return fmt.Sprintf("entry %d (%s)", i, entries[i].id.short()) }
	index := make(map[EntryID]int, len(entries))
	var genesis []*entry
	for i, e := range entries {
		if _, dup := index[e.id]; dup {
			return nil, fmt.Errorf("%s: duplicate entry: %w", where(i), ErrMalformed)
		}
		index[e.id] = i
		if trusted == nil || !trusted(e) {
			if err := e.verify(); err != nil {
				return nil, fmt.Errorf("%s: %w", where(i), err)
			}
		}
		if e.kind == kindGenesis {
			genesis = append(genesis, e)
		}
	}
	switch len(genesis) {
	case 0:
		return nil, fmt.Errorf("log of %d entries has no genesis entry: %w", len(entries), ErrTruncated)
	case 1:
	default:
		return nil, fmt.Errorf("log has %d genesis entries: %w", len(genesis), ErrWrongMesh)
	}
	l := &Log{mesh: MeshID(genesis[0].id)}
	l.g = &graph{byID: make(map[EntryID]*entry, len(entries)), anc: map[EntryID]map[EntryID]bool{}}
	children := make(map[EntryID]int, len(entries))
	for i, e := range entries {
		if e.kind != kindGenesis && e.mesh != l.mesh {
			return nil, fmt.Errorf("%s: mesh %s, log is %s: %w", where(i), e.mesh, l.mesh, ErrWrongMesh)
		}
		for _, p := range e.parents {
			if _, ok := index[p]; !ok {
				return nil, fmt.Errorf("%s: parent %s is missing: %w", where(i), p.short(), ErrTruncated)
			}
			children[p]++
		}
		l.g.byID[e.id] = e
	}
	l.order = topoSort(entries, children)
	if len(l.order) != len(entries) {
		return nil, fmt.Errorf("log has a parent cycle: %w", ErrMalformed)
	}
	for _, e := range l.order {
		if children[e.id] == 0 {
			l.heads = append(l.heads, e.id)
		}
	}
	slices.SortFunc(l.heads, func(a, b EntryID) int { return bytes.Compare(a[:], b[:]) })

	// Check each entry against the state of its causal past. With one
	// parent p that state is p's causal past plus p (p comes last in any
	// deterministic order of it), so a chain costs one apply per entry.
	after := map[EntryID]*state{} // state including e, while e has unvisited children
	pending := maps.Clone(children)
	for _, e := range l.order {
		var s *state
		switch len(e.parents) {
		case 0:
			s = newState()
		case 1:
			p := e.parents[0]
			s = after[p]
			if pending[p]--; pending[p] == 0 {
				delete(after, p)
			} else {
				s = s.clone()
			}
		default:
			anc := l.g.ancestors(e.id)
			past := make([]*entry, 0, len(anc))
			for _, x := range l.order {
				if anc[x.id] {
					past = append(past, x)
				}
			}
			s = l.g.computeState(past)
			for _, p := range e.parents {
				if pending[p]--; pending[p] == 0 {
					delete(after, p)
				}
			}
		}
		if err := s.check(e, true); err != nil {
			return nil, fmt.Errorf("%s: %v by %s: %w", where(index[e.id]), e.kind, e.author, err)
		}
		s.apply(e)
		s.note(e)
		if children[e.id] > 0 {
			after[e.id] = s
		}
	}
	l.st = l.g.computeState(l.order)
	return l, nil
}

// topoSort orders entries parents first, breaking ties by smallest
// EntryID (Kahn's algorithm with a min-heap). The order of a causally
// closed subset is this order restricted to the subset.
func topoSort(entries []*entry, children map[EntryID]int) []*entry {
	kids := make(map[EntryID][]*entry, len(entries))
	waiting := make(map[EntryID]int, len(entries))
	h := &entryHeap{}
	for _, e := range entries {
		waiting[e.id] = len(e.parents)
		if len(e.parents) == 0 {
			heap.Push(h, e)
		}
		for _, p := range e.parents {
			kids[p] = append(kids[p], e)
		}
	}
	order := make([]*entry, 0, len(entries))
	for h.Len() > 0 {
		e := heap.Pop(h).(*entry)
		order = append(order, e)
		for _, k := range kids[e.id] {
			if waiting[k.id]--; waiting[k.id] == 0 {
				heap.Push(h, k)
			}
		}
	}
	return order
}

type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return bytes.Compare(h[i].id[:], h[j].id[:]) < 0 }
func (h entryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *entryHeap) Push(x any)        { *h = append(*h, x.(*entry)) }
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// MeshID returns the mesh the log belongs to.
func (l *Log) MeshID() MeshID { return l.mesh }

// Len returns the number of entries, including ignored ones.
func (l *Log) Len() int { return len(l.order) }

// Heads returns the IDs of the entries no other entry names as a parent,
// sorted. Two logs of a mesh with the same heads hold the same entries.
func (l *Log) Heads() []EntryID { return slices.Clone(l.heads) }

// Clone returns an independent copy of l. (Entries are immutable and are
// shared.)
func (l *Log) Clone() *Log {
	c := &Log{mesh: l.mesh, order: slices.Clone(l.order), heads: slices.Clone(l.heads)}
	if l.st != nil {
		c.st = l.st.clone()
	}
	if l.g != nil {
		c.g = &graph{byID: make(map[EntryID]*entry, len(l.g.byID)), anc: map[EntryID]map[EntryID]bool{}}
		for k, v := range l.g.byID {
			c.g.byID[k] = v
		}
	}
	return c
}

// Merge adds the entries of other that l lacks and recomputes the
// membership. It returns how many entries were added. Merging is
// idempotent and commutative: any two logs holding the same entries have
// the same Encode and Members. On error l is unchanged.
func (l *Log) Merge(other *Log) (int, error) {
	if other == nil || other.mesh != l.mesh || l.mesh.IsZero() {
		var om MeshID
		if other != nil {
			om = other.mesh
		}
		return 0, fmt.Errorf("merge log of mesh %s into %s: %w", om, l.mesh, ErrWrongMesh)
	}
	all := slices.Clone(l.order)
	for _, e := range other.order {
		if _, ok := l.g.byID[e.id]; !ok {
			all = append(all, e)
		}
	}
	added := len(all) - len(l.order)
	if added == 0 {
		return 0, nil
	}
	// Entries of a Log were verified when they entered it; build re-checks
	// parents, authority and the merged state.
	m, err := build(all, func(*entry) bool { return true })
	if err != nil {
		return 0, fmt.Errorf("merge log of mesh %s: %w", l.mesh, err)
	}
	*l = *m
	return added, nil
}

// Members returns the current (non-revoked) members, sorted by name, then ID.
func (l *Log) Members() []Member {
	if l.st == nil {
		return nil
	}
	var ms []Member
	for _, m := range l.st.members {
		if !m.Revoked {
			ms = append(ms, m)
		}
	}
	slices.SortFunc(ms, func(a, b Member) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return ms
}

// Revoked returns the revoked members, sorted by ID.
func (l *Log) Revoked() []Member {
	if l.st == nil {
		return nil
	}
	var ms []Member
	for _, m := range l.st.members {
		if m.Revoked {
			ms = append(ms, m)
		}
	}
	slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return ms
}

// Lookup returns the device's membership, including a revoked one
// (Revoked is then true).
func (l *Log) Lookup(id peer.ID) (Member, bool) {
	if l.st == nil {
		return Member{}, false
	}
	m, ok := l.st.members[id]
	return m, ok
}

// IsMember reports whether id is a current, non-revoked member.
func (l *Log) IsMember(id peer.ID) bool {
	m, ok := l.Lookup(id)
	return ok && !m.Revoked
}

// Add adds device id with name and role, signed by key, whose device must
// be an owner or admin (only owners may add owners).
func (l *Log) Add(key crypto.PrivKey, id peer.ID, name string, role Role, now time.Time) error {
	err := l.append(key, &entry{kind: kindAdd, subject: id, name: name, role: role}, now)
	if err != nil {
		return fmt.Errorf("add device %s: %w", id, err)
	}
	return nil
}

// SetRole changes the role of member id. Only owners may make owners or
// change an owner's role; no device may change its own role.
func (l *Log) SetRole(key crypto.PrivKey, id peer.ID, role Role, now time.Time) error {
	if err := l.append(key, &entry{kind: kindSetRole, subject: id, role: role}, now); err != nil {
		return fmt.Errorf("set role of %s to %s: %w", id, role, err)
	}
	return nil
}

// Revoke revokes member id permanently. Only owners may revoke owners; no
// device may revoke itself.
func (l *Log) Revoke(key crypto.PrivKey, id peer.ID, now time.Time) error {
	if err := l.append(key, &entry{kind: kindRevoke, subject: id}, now); err != nil {
		return fmt.Errorf("revoke device %s: %w", id, err)
	}
	return nil
}

// append fills in e's author, mesh, parents and time, checks it against
// the current state, signs it with key and appends it.
func (l *Log) append(key crypto.PrivKey, e *entry, now time.Time) error {
	if err := l.prepare(key, e, now); err != nil {
		return err
	}
	if err := l.st.check(e, true); err != nil {
		return err
	}
	if err := e.seal(key); err != nil {
		return err
	}
	l.push(e)
	return nil
}

// prepare fills in e's author, mesh, parents and time.
func (l *Log) prepare(key crypto.PrivKey, e *entry, now time.Time) error {
	if l.mesh.IsZero() {
		return fmt.Errorf("empty log: %w", ErrTruncated)
	}
	author, err := deviceID(key)
	if err != nil {
		return err
	}
	e.author, e.mesh, e.parents, e.time = author, l.mesh, slices.Clone(l.heads), now.UnixNano()
	return e.checkShape()
}
