package node

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestRoundResync: after resync (a folder joined here), this device is not
// caught up with a member until a round that started after the resync
// completes; a round already running when it was asked for does not count,
// and the new round is run without anyone waiting for it.
func TestRoundResync(t *testing.T) {
	ka, _, _ := crypto.GenerateEd25519Key(nil)
	kb, _, _ := crypto.GenerateEd25519Key(nil)
	ha, hb := tcpHost(t, ka), tcpHost(t, kb)
	defer ha.Close()
	defer hb.Close()
	if err := ha.Connect(context.Background(), peer.AddrInfo{ID: hb.ID(), Addrs: hb.Addrs()}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	release := map[int]chan struct{}{}
	started := make(chan int, 4)
	n := 0
	syncWith := func(ctx context.Context, p peer.ID) error {
		mu.Lock()
		n++
		i := n
		ch := make(chan struct{})
		release[i] = ch
		mu.Unlock()
		started <- i
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	free := func(i int) {
		mu.Lock()
		close(release[i])
		mu.Unlock()
	}
	noPush := func(context.Context, peer.ID) error { return nil }
	b := newRoundBook(ha.Network(), func(peer.ID) bool { return true }, syncWith, noPush, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.loop(ctx) }()
	defer func() { cancel(); <-done }()

	p := hb.ID()
	b.kick(p)
	first := <-started // the connection's round, running
	b.resync(p)        // a folder joined while it runs
	free(first)
	waitUntil(t, func() bool { _, ok := b.last(p); return ok })
	if b.caughtUp(p) {
		t.Fatal("caught up by a round that started before the resync")
	}
	second := <-started // the resync's round, started by itself
	if b.caughtUp(p) {
		t.Fatal("caught up before the resync's round completed")
	}
	free(second)
	waitUntil(t, func() bool { return b.caughtUp(p) })
}

// waitUntil polls cond (state changed by another goroutine, no event to
// wait on) for up to 10 s.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
