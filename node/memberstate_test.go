package node

import (
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/identity"
)

// TestMemberStateUpdate: update hands fn the current log (nil before a
// mesh), keeps a log fn returns even when fn fails (Init and join keep a
// mesh whose saving failed), keeps the current log when fn returns nil,
// and current hands out copies.
func TestMemberStateUpdate(t *testing.T) {
	s := newMemberState()
	owner := fsKey(t, 1)
	ownerID, _ := peer.IDFromPrivateKey(owner)
	other := fsKey(t, 2)
	otherID, _ := peer.IDFromPrivateKey(other)
	if s.current() != nil || s.isMember(ownerID) {
		t.Fatal("a new memberState has a log")
	}
	if _, ok := s.lookup(ownerID); ok {
		t.Fatal("lookup found a member before any log")
	}
	now := time.Now()
	l, err := identity.NewMesh(owner, "owner", now)
	if err != nil {
		t.Fatal(err)
	}
	saveFailed := errors.New("save failed")
	err = s.update(func(cur *identity.Log) (*identity.Log, error) {
		if cur != nil {
			t.Errorf("update gave fn a log before any: %v", cur.MeshID())
		}
		return l, saveFailed
	})
	if !errors.Is(err, saveFailed) {
		t.Fatalf("update returned %v, want fn's error", err)
	}
	if !s.isMember(ownerID) {
		t.Fatal("the log fn returned with its error was not kept")
	}
	// In place, returning nil: the change is kept, the log not replaced.
	err = s.update(func(cur *identity.Log) (*identity.Log, error) {
		if cur != l {
			t.Error("update did not give fn the current log")
		}
		return nil, cur.Add(owner, otherID, "other", identity.RoleMember, now)
	})
	if err != nil {
		t.Fatalf("add a member: %v", err)
	}
	if m, ok := s.lookup(otherID); !ok || m.Name != "other" || m.Revoked {
		t.Fatalf("lookup(other) = %+v, %v after adding it", m, ok)
	}
	c := s.current()
	if err := c.Revoke(owner, otherID, now); err != nil {
		t.Fatal(err)
	}
	if !s.isMember(otherID) {
		t.Fatal("revoking in the copy current returned revoked in the state")
	}
}

// TestMemberStateDials: a member's first dial is due at once, a second
// is not while the first runs, a failure backs off (doubling) unless the
// dial was kicked meanwhile, a success resets, and forgetDial starts over.
func TestMemberStateDials(t *testing.T) {
	s := newMemberState()
	p := peer.ID("member")
	now := time.Unix(1000, 0)
	st, due := s.claimDial(p, now)
	if !due {
		t.Fatal("a member's first dial is not due")
	}
	if _, again := s.claimDial(p, now); again {
		t.Fatal("a second dial was due while the first runs")
	}
	retry, kicked := s.endDial(st, false, now)
	if retry != minDialBackoff || kicked || s.failures(st) != 1 {
		t.Fatalf("failed dial: retry %v kicked %v failures %d, want %v false 1", retry, kicked, s.failures(st), minDialBackoff)
	}
	if _, due := s.claimDial(p, now); due {
		t.Fatal("a dial was due at once after a failure")
	}
	if _, due := s.claimDial(p, now.Add(minDialBackoff)); !due {
		t.Fatal("a dial was not due after its backoff")
	}
	s.kickDials() // while busy: retry as soon as it ends
	if retry, kicked := s.endDial(st, false, now); retry != 2*minDialBackoff || !kicked {
		t.Fatalf("kicked failed dial: retry %v kicked %v, want %v true", retry, kicked, 2*minDialBackoff)
	}
	if _, due := s.claimDial(p, now); !due {
		t.Fatal("a dial kicked while busy was not due at once after it failed")
	}
	s.endDial(st, true, now)
	if s.failures(st) != 0 || st.backoff != minDialBackoff {
		t.Fatalf("after a success: failures %d backoff %v", s.failures(st), st.backoff)
	}
	s.forgetDial(p)
	if st2, due := s.claimDial(p, now); !due || st2 == st {
		t.Fatal("forgetDial kept the member's dial state")
	}
}

// TestMemberStateRecordsOf: the kept records of the given members, in
// their order, without skip's, at most max.
func TestMemberStateRecordsOf(t *testing.T) {
	s := newMemberState()
	a, b, c := peer.ID("a"), peer.ID("b"), peer.ID("c")
	for _, p := range []peer.ID{a, b, c} {
		s.keepRecord(p, []byte("rec-"+string(p)), 1)
	}
	ms := []identity.Member{{ID: c}, {ID: a}, {ID: b}, {ID: "none"}}
	got := s.recordsOf(ms, a, 2)
	if len(got) != 2 || string(got[0]) != "rec-c" || string(got[1]) != "rec-b" {
		t.Fatalf("recordsOf = %q, want [rec-c rec-b]", got)
	}
	if got := s.recordsOf(nil, "", 10); got != nil {
		t.Fatalf("recordsOf(no members) = %q, want nil", got)
	}
}
