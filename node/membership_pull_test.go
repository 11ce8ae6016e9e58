package node

import "testing"

// TestPullMembershipBounded: streams refused to a non-member make the node
// exchange membership with its members (a peer that just joined is known
// moments later, chaos seed 21), at most once per pullInterval however
// many streams a non-member opens.
func TestPullMembershipBounded(t *testing.T) {
	n := &Node{pushAll: make(chan struct{}, 1)}
	n.pullMembership()
	select {
	case <-n.pushAll:
	default:
		t.Fatal("a refused stream did not schedule a membership exchange")
	}
	for range 100 {
		n.pullMembership()
	}
	select {
	case <-n.pushAll:
		t.Fatalf("refused streams within %s scheduled a second exchange", pullInterval)
	default:
	}
	n.lastPull.Add(-int64(pullInterval)) // as if pullInterval had passed
	n.pullMembership()
	select {
	case <-n.pushAll:
	default:
		t.Fatalf("a refused stream %s after the last exchange scheduled none", pullInterval)
	}
}
