package transfer

import (
	"testing"
	"time"
)

// TestWindowAdapts: with a fixed per-request time (no queue at the peer) the
// window opens to the maximum; when every request in the window queues
// behind the others (time grows with the window) it settles low.
func TestWindowAdapts(t *testing.T) {
	p := &peerState{window: initialWindow}
	for range 100 {
		p.adapt(10*time.Millisecond, 1<<20)
	}
	if p.window != maxWindow {
		t.Errorf("idle pipe: window %d, want %d", p.window, maxWindow)
	}
	// A peer serving one chunk per 10 ms with 2 ms of latency: a request
	// waits for everything ahead of it in the window.
	q := &peerState{window: initialWindow}
	for range 200 {
		rtt := 2*time.Millisecond + time.Duration(q.window)*10*time.Millisecond
		q.adapt(rtt, 1<<20)
	}
	if q.window < minWindow || q.window > minWindow+4 {
		t.Errorf("saturated peer: window %d, want it near the floor %d, far below %d", q.window, minWindow, maxWindow)
	}
}
