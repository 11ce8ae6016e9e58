package node

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestKeepNewestRecord: a member's address record is replaced only by one
// at least as new: a stale one forwarded by a member that still holds it
// (made before the device restarted on new ports) does not win over the
// fresh one (chaos soak seed 744).
func TestKeepNewestRecord(t *testing.T) {
	n := &Node{records: map[peer.ID]keptRecord{}}
	p := peer.ID("device")
	if !n.keepRecord(p, []byte("after restart"), 20) {
		t.Fatal("a first record was not kept")
	}
	if n.keepRecord(p, []byte("before restart"), 10) {
		t.Fatal("an older record was kept")
	}
	if got := string(n.records[p].raw); got != "after restart" {
		t.Fatalf("kept %q, want the newest record", got)
	}
	if !n.keepRecord(p, []byte("after restart"), 20) {
		t.Fatal("the same record again was refused (its addresses would not be refreshed)")
	}
	if !n.keepRecord(p, []byte("later still"), 30) || string(n.records[p].raw) != "later still" {
		t.Fatal("a newer record did not replace the kept one")
	}
}

// TestReaching: a member that is not connected counts as connecting (not
// offline) until a dial to it has failed, and again once its addresses
// change, until the dial that tries them ends; the retries of a member
// that keeps failing do not count (chaos soak seed 577).
func TestReaching(t *testing.T) {
	p := peer.ID("device")
	st := &dialState{backoff: minDialBackoff}
	n := &Node{dials: map[peer.ID]*dialState{p: st}, kick: make(chan struct{}, 1)}
	now := time.Unix(1000, 0)
	if !n.reaching(p) {
		t.Fatal("never dialled: not reaching")
	}
	st.busy = true
	if !n.reaching(p) {
		t.Fatal("first dial under way: not reaching")
	}
	st.end(false, now)
	if n.reaching(p) {
		t.Fatal("reaching after its dial failed")
	}
	st.busy = true // a retry
	if n.reaching(p) {
		t.Fatal("a retry of a failing member counts as reaching")
	}
	n.learntAddrs(p) // new addresses while the retry runs
	if !n.reaching(p) || !st.kicked {
		t.Fatalf("addresses learnt during a dial: reaching %v, kicked %v", n.reaching(p), st.kicked)
	}
	select {
	case <-n.kick:
	default:
		t.Fatal("learntAddrs did not wake the redial loop")
	}
	st.end(false, now) // that dial may have used the old addresses
	if !n.reaching(p) || !st.next.IsZero() {
		t.Fatalf("a dial that began before the addresses came ended: reaching %v, next %v (want at once)", n.reaching(p), st.next)
	}
	st.busy = true
	st.end(false, now) // the dial with the new addresses failed too
	if n.reaching(p) {
		t.Fatal("reaching after the new addresses failed")
	}
	if want := now.Add(4 * minDialBackoff); !st.next.Equal(want) { // doubled by each of the three failures before
		t.Fatalf("next dial %v, want %v", st.next, want)
	}
	st.busy = true
	st.end(true, now)
	if st.failures != 0 || st.backoff != minDialBackoff {
		t.Fatalf("after a success: %d failures, backoff %v", st.failures, st.backoff)
	}
}
