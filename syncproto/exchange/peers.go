package exchange

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/syncproto"
)

// Retries of a failed push: the objects stay dirty and the push is tried
// again after retryBase, doubling, at most maxRetries times in a row; then
// the peer waits for the next change or reconnection. There is no other
// timer: nothing is polled.
const (
	retryBase  = 200 * time.Millisecond
	maxRetries = 5
)

// peerState is a connected member peer and its outbound goroutine. Changes
// mark objects dirty and signal the goroutine; it announces every dirty
// object in one session, so a burst of changes becomes one push, and a slow
// peer delays only its own goroutine.
//
// An object marked for catch-up (mesh membership or the object's member
// list changed, or the replica was just added here) makes the session ask
// for the peer's announcement too (reply wanted):
// whichever side's state changed last — the peer became a member, the
// object names it, the replica exists — that side starts a session both
// sides can use, so nothing waits for a later change on the other side.
type peerState struct {
	id     peer.ID
	log    *slog.Logger
	cancel context.CancelFunc
	signal chan struct{} // capacity 1: "something is dirty"

	mu    sync.Mutex
	dirty map[syncproto.ObjectID]bool // object → catch-up (reply wanted)
}

// mark schedules a push of ids; catchUp also asks the peer to announce
// its objects in return.
func (ps *peerState) mark(catchUp bool, ids ...syncproto.ObjectID) {
	ps.mu.Lock()
	for _, id := range ids {
		ps.dirty[id] = ps.dirty[id] || catchUp
	}
	ps.mu.Unlock()
	select {
	case ps.signal <- struct{}{}:
	default:
	}
}

// take returns the dirty objects and whether any of them is a catch-up.
func (ps *peerState) take() (ids []syncproto.ObjectID, catchUp bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ids = make([]syncproto.ObjectID, 0, len(ps.dirty))
	for id, c := range ps.dirty {
		ids = append(ids, id)
		catchUp = catchUp || c
	}
	clear(ps.dirty)
	return ids, catchUp
}

// peerUp starts the outbound goroutine of a member peer that connected,
// with every object shared with it dirty: the catch-up. The peer does the
// same on its side.
func (e *Engine) peerUp(ctx context.Context, wg *sync.WaitGroup, p peer.ID) {
	if p == e.host.ID() || !e.cfg.Members.IsMember(p) {
		return
	}
	e.mu.Lock()
	if _, ok := e.peers[p]; ok || ctx.Err() != nil {
		e.mu.Unlock()
		return
	}
	pctx, cancel := context.WithCancel(ctx)
	ps := &peerState{
		id:     p,
		log:    e.log.With("peer", p.ShortString()),
		cancel: cancel,
		signal: make(chan struct{}, 1),
		dirty:  make(map[syncproto.ObjectID]bool),
	}
	e.peers[p] = ps
	wg.Add(1)
	e.mu.Unlock()
	ps.log.Debug("member connected")
	// A push, not a catch-up: the peer pushes its own on its connection
	// event, and each side asks for what the other announces. (A peer taken
	// on by recheckPeers is marked for a catch-up there.)
	ps.mark(false, e.sharedWith(p)...)
	go func() {
		defer wg.Done()
		defer cancel()
		e.runPeer(pctx, ps)
	}()
}

// peerDown stops the outbound goroutine of a peer that disconnected.
func (e *Engine) peerDown(p peer.ID) {
	e.mu.Lock()
	ps, ok := e.peers[p]
	delete(e.peers, p)
	e.mu.Unlock()
	if ok {
		ps.log.Debug("member disconnected")
		ps.cancel()
	}
}

// markDirty schedules a push of obj to every connected peer that is a
// member of it, except skip; catchUp asks each for its announcement too.
func (e *Engine) markDirty(obj syncproto.ObjectID, skip peer.ID, catchUp bool) {
	r := e.replica(obj)
	if r == nil {
		return
	}
	e.mu.Lock()
	peers := make([]*peerState, 0, len(e.peers))
	for id, ps := range e.peers {
		if id != skip {
			peers = append(peers, ps)
		}
	}
	e.mu.Unlock()
	for _, ps := range peers {
		if r.obj.Role(syncproto.DeviceID(ps.id.String())) != syncproto.RoleNone {
			ps.mark(catchUp, obj)
		}
	}
}

// runPeer pushes the dirty objects to ps until ctx is done.
func (e *Engine) runPeer(ctx context.Context, ps *peerState) {
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-ps.signal:
		}
		ids, catchUp := ps.take()
		if len(ids) == 0 || !e.cfg.Members.IsMember(ps.id) {
			continue
		}
		err := e.initiate(ctx, ps.id, ids, catchUp)
		if err == nil {
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		ps.mark(catchUp, ids...)
		if failures > maxRetries {
			// Keep the objects dirty but stop trying: the next change
			// or reconnection pushes them along.
			ps.log.Warn("push failed; waiting for the next change", "err", err, "attempts", failures)
			failures = 0
			select {
			case <-ps.signal:
			default:
			}
			continue
		}
		delay := retryBase << (failures - 1)
		ps.log.Debug("push failed; retrying", "err", err, "in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
