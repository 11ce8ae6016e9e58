package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// roundBook is the sync-rounds part: it runs a two-way sync round with
// each member that connects (kick, loop), one at a time per member, and
// remembers when this device last completed a round with each member (the
// round's start), which the in-sync rule reads (caughtUp, last; insync.go).
// It owns its state and lock; nothing outside its methods touches its
// fields. It holds only what a round needs: the host's network (who is
// connected, since when), the membership check, the engine's Sync, and
// pushState, the membership exchange that opens a round.
type roundBook struct {
	net      network.Network
	isMember func(peer.ID) bool                   // memberState.isMember
	sync     func(context.Context, peer.ID) error // the engine's Sync
	push     func(context.Context, peer.ID) error // pushState (membership.go)
	log      *slog.Logger

	mu      sync.Mutex // a leaf: no call out is made under it
	done    map[peer.ID]time.Time
	floor   map[peer.ID]time.Time // resync: a round must start after it to catch up
	want    map[peer.ID]bool
	running map[peer.ID]bool
	kickCh  chan struct{} // one pending wake-up of loop
}

func newRoundBook(net network.Network, isMember func(peer.ID) bool,
	syncWith, push func(context.Context, peer.ID) error, log *slog.Logger) *roundBook {
	return &roundBook{
		net: net, isMember: isMember, sync: syncWith, push: push, log: log,
		done:    make(map[peer.ID]time.Time),
		floor:   make(map[peer.ID]time.Time),
		want:    make(map[peer.ID]bool),
		running: make(map[peer.ID]bool),
		kickCh:  make(chan struct{}, 1),
	}
}

// record notes a completed two-way round with p that started at start.
func (b *roundBook) record(p peer.ID, start time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if start.After(b.done[p]) {
		b.done[p] = start
	}
}

// last is the start of the last completed round with p; false when none
// was completed since the daemon started.
func (b *roundBook) last(p peer.ID) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.done[p]
	return t, ok
}

// kick asks for a sync round with member p (a connection opened). It
// does not block (swarm notification path).
func (b *roundBook) kick(p peer.ID) {
	b.mu.Lock()
	b.want[p] = true
	b.mu.Unlock()
	b.wake()
}

// resync asks for a new round with member p that this device counts as
// caught up with p only once it completes: one that started before (a
// round running while a folder was joined, which did not carry it) no
// longer counts. It does not block.
func (b *roundBook) resync(p peer.ID) {
	b.mu.Lock()
	b.floor[p] = time.Now()
	b.want[p] = true
	b.mu.Unlock()
	b.wake()
}

func (b *roundBook) wake() {
	select {
	case b.kickCh <- struct{}{}:
	default:
	}
}

// loop runs the rounds kick asks for, one at a time per member, until ctx
// is done; it returns after the rounds it started have ended (Run's task
// "rounds").
func (b *roundBook) loop(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.kickCh:
		}
		for _, p := range b.claim() {
			wg.Go(func() {
				b.connect(ctx, p)
				if b.end(p) {
					b.wake()
				}
			})
		}
	}
}

// claim returns the members that want a round and have none running, and
// marks their rounds running.
func (b *roundBook) claim() []peer.ID {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []peer.ID
	for p := range b.want {
		if b.running[p] {
			continue // kicked again when it ends
		}
		delete(b.want, p)
		b.running[p] = true
		out = append(out, p)
	}
	return out
}

// end marks p's round ended and reports whether p was kicked meanwhile.
func (b *roundBook) end(p peer.ID) (again bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.running, p)
	return b.want[p]
}

// connect syncs with p both ways (three tries) and records the round.
func (b *roundBook) connect(ctx context.Context, p peer.ID) {
	for try := range 3 {
		if !b.isMember(p) || b.net.Connectedness(p) != network.Connected {
			return
		}
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, waitPeerTimeout)
		// Membership first: p's answer carries the address records it
		// forwards, so once the round is recorded this device knows the
		// addresses of every member p has reached, and counts the ones it
		// is not connected to as connecting, not offline (reaching).
		// A failed push (the log could not be saved here, say) does not
		// hold the round back: the sync is what the round is for.
		if perr := b.push(rctx, p); perr != nil && ctx.Err() == nil {
			b.log.Debug("connect round: membership exchange", "peer", p.String(), "err", perr)
		}
		err := b.sync(rctx, p)
		cancel()
		if err == nil {
			b.record(p, start)
			return
		}
		if ctx.Err() != nil {
			return
		}
		b.log.Debug("connect round", "peer", p.String(), "try", try+1, "err", err)
		t := time.NewTimer(time.Duration(try+1) * time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// caughtUp reports whether a round with p started after p's current
// connection opened (p continuously connected since) and after the last
// resync of p.
func (b *roundBook) caughtUp(p peer.ID) bool {
	b.mu.Lock()
	last, ok := b.done[p]
	floor := b.floor[p]
	b.mu.Unlock()
	if !ok || last.Before(floor) {
		return false
	}
	var since time.Time
	for _, c := range b.net.ConnsToPeer(p) {
		if o := c.Stat().Opened; since.IsZero() || o.Before(since) {
			since = o
		}
	}
	return !since.IsZero() && !last.Before(since)
}
