package identity

import (
	"fmt"
	"maps"

	"github.com/libp2p/go-libp2p/core/peer"
)

// state is the membership computed from a set of entries.
type state struct {
	members map[peer.ID]Member // including revoked devices
	invites map[InviteID]bool  // every invite redeemed by an entry seen so far
}

func newState() *state {
	return &state{members: map[peer.ID]Member{}, invites: map[InviteID]bool{}}
}

func (s *state) clone() *state {
	return &state{members: maps.Clone(s.members), invites: maps.Clone(s.invites)}
}

// active returns id's membership if id is a current, non-revoked member.
func (s *state) active(id peer.ID) (Member, error) {
	m, ok := s.members[id]
	switch {
	case !ok:
		return m, fmt.Errorf("device %s: %w", id, ErrNotMember)
	case m.Revoked:
		return m, fmt.Errorf("device %s: %w", id, ErrRevoked)
	}
	return m, nil
}

// admin checks that id may sign membership changes granting role (the empty
// role for a revocation).
func (s *state) admin(id peer.ID, role Role) (Member, error) {
	m, err := s.active(id)
	if err != nil {
		return m, fmt.Errorf("author: %w: %w", err, ErrUnauthorized)
	}
	if !m.Role.CanAdmin() {
		return m, fmt.Errorf("author %s is %s: %w", id, m.Role, ErrUnauthorized)
	}
	if roleRank(role) > roleRank(m.Role) {
		return m, fmt.Errorf("author %s is %s and cannot grant %s: %w", id, m.Role, role, ErrUnauthorized)
	}
	return m, nil
}

// absent checks that id has never been a member.
func (s *state) absent(id peer.ID) error {
	m, ok := s.members[id]
	switch {
	case ok && m.Revoked:
		return fmt.Errorf("device %s: %w (a revoked device needs a new key)", id, ErrRevoked)
	case ok:
		return fmt.Errorf("device %s: %w", id, ErrAlreadyMember)
	}
	return nil
}

// check reports whether e may be applied to s. strict is the author's view
// (the entry's causal past): every rule must hold. When not strict (the
// merged state), revoking an already revoked device is allowed, as a no-op,
// so that concurrent revocations of one device all count.
func (s *state) check(e *entry, strict bool) error {
	switch e.kind {
	case kindGenesis:
		if len(s.members) != 0 {
			return fmt.Errorf("second genesis: %w", ErrWrongMesh)
		}
		return nil
	case kindRedeem:
		if _, err := s.active(e.author); err != nil {
			return fmt.Errorf("redeemer: %w: %w", err, ErrUnauthorized)
		}
		g := &e.redeem.grant
		if len(g.Redeemers) > 0 && !g.MayRedeem(e.author) {
			return g.notRedeemer(e.author) // version 1 grants: any member, as they were redeemed
		}
		if _, err := s.admin(g.Inviter, g.Role); err != nil {
			return fmt.Errorf("invite: %w", err)
		}
		if g.Expired(e.when()) {
			return fmt.Errorf("invite %s expired at %s, redeemed at %s: %w",
				g.ID(), g.Expires.UTC().Format("2006-01-02T15:04:05Z"), e.when().Format("2006-01-02T15:04:05Z"), ErrInviteExpired)
		}
		if s.invites[g.ID()] {
			return fmt.Errorf("invite %s: %w", g.ID(), ErrInviteUsed)
		}
		return s.absent(e.subject)
	case kindAdd:
		if _, err := s.admin(e.author, e.role); err != nil {
			return err
		}
		return s.absent(e.subject)
	}
	// kindSetRole, kindRevoke: author acts on an existing device.
	grant := e.role
	if e.subject == e.author {
		return fmt.Errorf("device %s cannot change its own membership: %w", e.author, ErrUnauthorized)
	}
	target, err := s.active(e.subject)
	if err != nil && (strict || e.kind != kindRevoke || target.ID == "") {
		return err
	}
	if target.Role == RoleOwner {
		grant = RoleOwner // only owners may demote or revoke owners
	}
	_, err = s.admin(e.author, grant)
	return err
}

// apply applies e, which passed check, to s.
func (s *state) apply(e *entry) {
	switch e.kind {
	case kindGenesis, kindAdd, kindRedeem:
		by := e.author
		if e.redeem != nil {
			by = e.redeem.grant.Inviter
		}
		s.members[e.subject] = Member{ID: e.subject, Name: e.name, Role: e.role, AddedBy: by, AddedAt: e.when()}
	case kindSetRole:
		m := s.members[e.subject]
		m.Role = e.role
		s.members[e.subject] = m
	case kindRevoke:
		m := s.members[e.subject]
		if !m.Revoked {
			m.RevokedAt = e.when()
		}
		m.Revoked = true
		s.members[e.subject] = m
	}
}

// note records what e shows even when e is ignored: an invite it redeems
// is used up.
func (s *state) note(e *entry) {
	if e.redeem != nil {
		s.invites[e.redeem.grant.ID()] = true
	}
}

// actors returns the devices whose authority e exercises: its author and,
// for a redemption, the inviter.
func (e *entry) actors() []peer.ID {
	if e.redeem != nil {
		return []peer.ID{e.author, e.redeem.grant.Inviter}
	}
	return []peer.ID{e.author}
}

// computeState computes the state of order, a causally closed set of
// entries in deterministic topological order, with the merge rules of the
// package doc: each entry is applied if it passes check in the state so
// far, unless one of its actors was revoked by an applied revocation of
// which it is not an ancestor. A revocation that takes effect after such an
// entry was applied restarts the computation with the new ban; bans only
// grow, so there are at most as many restarts as revocations.
func (g *graph) computeState(order []*entry) *state {
	bans := map[peer.ID][]*entry{} // applied revocations per revoked device
	banned := func(e *entry) bool {
		for _, a := range e.actors() {
			for _, r := range bans[a] {
				if !g.isAncestor(e.id, r.id) {
					return true
				}
			}
		}
		return false
	}
	for {
		s := newState()
		applied := map[peer.ID][]*entry{} // applied entries per actor
		restart := false
		for _, e := range order {
			if banned(e) || s.check(e, false) != nil {
				s.note(e)
				continue
			}
			s.apply(e)
			s.note(e)
			for _, a := range e.actors() {
				applied[a] = append(applied[a], e)
			}
			if e.kind != kindRevoke || containsEntry(bans[e.subject], e) {
				continue
			}
			bans[e.subject] = append(bans[e.subject], e)
			for _, x := range applied[e.subject] {
				if !g.isAncestor(x.id, e.id) {
					restart = true
					break
				}
			}
			if restart {
				break
			}
		}
		if !restart {
			return s
		}
	}
}

func containsEntry(list []*entry, e *entry) bool {
	for _, x := range list {
		if x == e {
			return true
		}
	}
	return false
}
