package node

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
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
