package node

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// TestKeepNewestRecord: a member's address record is replaced only by one
// at least as new: a stale one forwarded by a member that still holds it
// (made before the device restarted on new ports) does not win over the
// fresh one (chaos soak seed 744).
func TestKeepNewestRecord(t *testing.T) {
	s := newMemberState()
	p := peer.ID("device")
	if !s.keepRecord(p, []byte("after restart"), 20) {
		t.Fatal("a first record was not kept")
	}
	if s.keepRecord(p, []byte("before restart"), 10) {
		t.Fatal("an older record was kept")
	}
	if got := string(s.records[p].raw); got != "after restart" {
		t.Fatalf("kept %q, want the newest record", got)
	}
	if !s.keepRecord(p, []byte("after restart"), 20) {
		t.Fatal("the same record again was refused (its addresses would not be refreshed)")
	}
	if !s.keepRecord(p, []byte("later still"), 30) || string(s.records[p].raw) != "later still" {
		t.Fatal("a newer record did not replace the kept one")
	}
}

// TestReaching: a member that is not connected counts as connecting (not
// offline) until a dial to it has failed, and again once its addresses
// change, until the dial that tries them ends; the retries of a member
// that keeps failing do not count (chaos soak seed 577).
func TestReaching(t *testing.T) {
	h, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	p := peer.ID("device")
	n := &Node{members: newMemberState(), kick: make(chan struct{}, 1), host: h}
	s := n.members
	if n.reaching(p) {
		t.Fatal("a member with no address (and no DHT) counts as reaching")
	}
	h.Peerstore().AddAddr(p, ma.StringCast("/ip4/127.0.0.1/tcp/4001"), time.Hour)
	now := time.Unix(1000, 0)
	if _, known := s.reaching(p); known {
		t.Fatal("a member never dialled has a dial state")
	}
	st, due := s.claimDial(p, now)
	if !due || !n.reaching(p) {
		t.Fatalf("first dial: due %v, reaching %v", due, n.reaching(p))
	}
	s.endDial(st, false, now)
	if n.reaching(p) {
		t.Fatal("reaching after its dial failed")
	}
	if _, due := s.claimDial(p, now.Add(time.Hour)); !due || n.reaching(p) {
		t.Fatalf("a retry of a failing member: due %v, reaching %v", due, n.reaching(p))
	}
	n.learntAddrs(p) // new addresses while the retry runs
	if !n.reaching(p) {
		t.Fatal("addresses learnt during a dial: not reaching")
	}
	select {
	case <-n.kick:
	default:
		t.Fatal("learntAddrs did not wake the redial loop")
	}
	if _, kicked := s.endDial(st, false, now); !kicked || !n.reaching(p) {
		t.Fatalf("a dial that began before the addresses came ended: kicked %v, reaching %v", kicked, n.reaching(p))
	}
	if _, due := s.claimDial(p, now); !due {
		t.Fatal("the dial with the new addresses is not due at once")
	}
	s.endDial(st, false, now) // it failed too
	if n.reaching(p) {
		t.Fatal("reaching after the new addresses failed")
	}
	if _, due := s.claimDial(p, now.Add(3*time.Second)); due {
		t.Fatal("due before the backoff (doubled by each of three failures) passed")
	}
	if _, due := s.claimDial(p, now.Add(4*time.Second)); !due {
		t.Fatal("not due once the backoff passed")
	}
	s.endDial(st, false, now)
	// A kick for another reason (a relay, a membership change) while a
	// dial runs makes it run again, but says nothing of the addresses.
	if _, due := s.claimDial(p, now.Add(time.Hour)); !due {
		t.Fatal("not due after an hour")
	}
	s.kickDials()
	if _, kicked := s.endDial(st, false, now); !kicked || n.reaching(p) {
		t.Fatalf("a dial kicked for another reason ended: kicked %v, reaching %v (want not reaching)", kicked, n.reaching(p))
	}
	s.claimDial(p, now)
	s.endDial(st, true, now)
	if s.failures(st) != 0 {
		t.Fatalf("after a success: %d failures", s.failures(st))
	}
}
