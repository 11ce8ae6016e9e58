package transfer

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestStalledPeerDropped: a peer that accepts requests and never answers
// (its store blocks every read, as a frozen or hostile member would) is
// dropped from the fetch once it has owed answers for the stall timeout:
// alone, the fetch fails with ErrStalled and ErrUnavailable instead of
// waiting for good; beside a peer that answers after the stalled one was
// dropped, the fetch completes from that peer.
func TestStalledPeerDropped(t *testing.T) {
	data := randBytes(11, 6<<20)
	open := make(chan struct{})
	defer close(open)
	stuck := newNode(t, nil, func(s Store) Store { return &heldStore{Store: s, open: open} })
	c := newNode(t, nil, nil)
	c.svc.stallTimeout = 200 * time.Millisecond
	m := stuck.seed(t, "f", data)
	connect(t, c, stuck)

	// A hang guard far above the stall timeout, not a timing assertion.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := c.svc.Fetch(ctx, m, ids(stuck), nil)
	if !errors.Is(err, ErrStalled) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("fetch from a lone stalled peer: %v, want ErrStalled and ErrUnavailable", err)
	}

	if n := c.svc.Stats().PeersStalled; n != 1 {
		t.Errorf("%d stalled peers counted, want 1", n)
	}
	if n := stuck.svc.Stats().ChunksServed; n != 0 {
		t.Errorf("the stalled peer served %d chunks", n)
	}
}

// TestStallRule: when a peer counts as stalled, on a virtual clock: only
// while it owes answers, from its last byte or its oldest pending request
// (whichever is later), or from the start of its stream while a HAVE is
// unanswered.
func TestStallRule(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	f := &fetch{s: &Service{stallTimeout: 10 * time.Second}}
	read := func(at time.Time) *lastRead {
		lr := &lastRead{}
		if !at.IsZero() {
			lr.nano.Store(at.UnixNano())
		}
		return lr
	}
	sent := func(ats ...time.Time) map[uint32]request {
		m := map[uint32]request{}
		for i, at := range ats {
			m[uint32(i+1)] = request{idx: i, sentAt: at}
		}
		return m
	}
	cases := []struct {
		name string
		p    peerState
		now  time.Time
		want time.Duration
	}{
		{"no stream yet", peerState{inflight: sent(t0)}, t0.Add(time.Hour), 0},
		{"owes nothing", peerState{read: read(t0), inflight: sent()}, t0.Add(time.Hour), 0},
		{"answering", peerState{read: read(t0.Add(55 * time.Second)), inflight: sent(t0)}, t0.Add(time.Minute), 0},
		{"silent since the last byte", peerState{read: read(t0), inflight: sent(t0.Add(-time.Second))}, t0.Add(11 * time.Second), 11 * time.Second},
		{"request sent after a quiet spell", peerState{read: read(t0), inflight: sent(t0.Add(time.Hour))}, t0.Add(time.Hour + 5*time.Second), 0},
		{"that request unanswered", peerState{read: read(t0), inflight: sent(t0.Add(time.Hour), t0.Add(time.Hour+time.Second))}, t0.Add(time.Hour + 12*time.Second), 12 * time.Second},
		{"HAVE pending on a new stream", peerState{read: read(time.Time{}), started: t0, haveLeft: 1}, t0.Add(9 * time.Second), 0},
		{"HAVE never answered", peerState{read: read(time.Time{}), started: t0, haveLeft: 1}, t0.Add(15 * time.Second), 15 * time.Second},
		{"reused stream, HAVE pending", peerState{read: read(t0.Add(-time.Hour)), started: t0, haveLeft: 1}, t0.Add(5 * time.Second), 0},
	}
	for _, c := range cases {
		if got := f.stalled(&c.p, c.now); got != c.want {
			t.Errorf("%s: stalled %v, want %v", c.name, got, c.want)
		}
	}
}

// TestFetchIdle: the whole-fetch backstop counts from the later of the
// last stored chunk and the last byte read from any peer.
func TestFetchIdle(t *testing.T) {
	t0 := time.Unix(2_000_000, 0)
	lr := &lastRead{}
	lr.nano.Store(t0.Add(5 * time.Second).UnixNano())
	f := &fetch{progressAt: t0, peers: []*peerState{{}, {read: &lastRead{}}, {read: lr}}}
	if got := f.idle(t0.Add(70 * time.Second)); got != 65*time.Second {
		t.Errorf("idle %v, want 65s (from the last byte)", got)
	}
	f.progressAt = t0.Add(20 * time.Second)
	if got := f.idle(t0.Add(70 * time.Second)); got != 50*time.Second {
		t.Errorf("idle %v, want 50s (from the last chunk)", got)
	}
}
