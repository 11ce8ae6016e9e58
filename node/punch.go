package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
)

// Hole-punch retries.
//
// go-libp2p's hole-punch service (DCUtR) tries once, when a relayed
// connection arrives: the side that received the relayed connection
// coordinates the punch over it. When that one try fails — the other
// side's service was not up yet (it registers /libp2p/dcutr only after the
// host has seen a public address of its own), the relay came up after the
// devices, a NAT mapping was not there yet — the pair used to stay relayed
// for as long as the connection lasted.
//
// The puncher tries again, through the same service
// (holepunch.Service.DirectConnect), for every member that is connected
// only through relayed connections and whose relayed connection this
// device received (the other side runs the same loop for the connections
// it received):
//   - when a relayed connection to the member appears or is identified, or
//     the member's protocols change (its service came up);
//   - when this host's addresses, reachability or NAT type change, or its
//     own hole-punch service comes up;
//   - and otherwise with backoff while it stays relayed (punchBackoff: 2 s,
//     4 s, 8 s, 16 s, then every 25 s), counted from the end of the last
//     attempt. A trigger resets the backoff, but never starts an attempt
//     sooner than punchMinGap after the last one ended.
//
// At most one attempt per member runs at a time (and go-libp2p refuses a
// second one with ErrHolePunchActive); each is bounded by the service's
// own timeouts (a direct dial and three punches of at most 10 s each).
// Non-members are never tracked; the gater refuses them anyway.
//
// The puncher also tracks every member's path ("direct", "relayed" or
// offline) and announces a change as a "path" live event, and a change
// between direct and relayed in the log and the news (at most one news
// item per member per punchNewsEvery).

const (
	punchFirstRetry = 2 * time.Second  // after a new relayed connection, and the first backoff step
	punchMaxRetry   = 25 * time.Second // the backoff's cap: at least one attempt every ~30 s while relayed
	punchMinGap     = 2 * time.Second  // between the end of one attempt and the start of the next
	punchNewsEvery  = time.Minute      // per member, for path news
	punchCloseWait  = 5 * time.Second  // for attempts in flight at shutdown, after the service is closed
)

// punchBackoff is the wait after the given number of failed attempts in a
// row: 2 s before the first retry, then 4 s, 8 s, 16 s and 25 s from then on.
func punchBackoff(failures int) time.Duration {
	d := punchFirstRetry
	for i := 0; i < failures && d < punchMaxRetry; i++ {
		d *= 2
	}
	return min(d, punchMaxRetry)
}

// Paths of a member, as in Device.Connection.
const (
	pathNone    = ""
	pathDirect  = "direct"
	pathRelayed = "relayed"
)

// punchPeer is the retry state of one member.
type punchPeer struct {
	path      string
	initiator bool // we hold an inbound relayed connection: the punch is ours to coordinate
	failures  int  // attempts in a row that did not end direct
	next      time.Time
	lastEnd   time.Time // when the last attempt ended
	busy      bool
	capLogged bool // the INFO line for reaching the backoff cap was written
}

// punchSched is the retry schedule of all members. It does no I/O and
// takes the time from its caller; the puncher's goroutine owns it.
type punchSched struct {
	peers map[peer.ID]*punchPeer
}

func newPunchSched() *punchSched { return &punchSched{peers: map[peer.ID]*punchPeer{}} }

// observe records p's current path and whether we coordinate its punch;
// it returns the previous path and whether the path changed. A member that
// becomes relayed, or relayed with a connection we received, gets its
// first retry punchFirstRetry later, leaving the first attempt to
// go-libp2p (which starts it once the connection is identified; the
// identification also triggers a retry, and the later of the two finds
// the other running: holepunch.ErrHolePunchActive).
func (s *punchSched) observe(p peer.ID, path string, initiator bool, now time.Time) (old string, changed bool) {
	st := s.peers[p]
	if st == nil {
		if path == pathNone {
			return pathNone, false
		}
		st = &punchPeer{}
		s.peers[p] = st
	}
	old = st.path
	fresh := path == pathRelayed && initiator && (old != pathRelayed || !st.initiator)
	st.path, st.initiator = path, initiator
	if fresh {
		st.failures, st.capLogged = 0, false
		st.next = later(now.Add(punchFirstRetry), st.lastEnd.Add(punchMinGap))
	}
	if path == pathNone && !st.busy {
		delete(s.peers, p)
	}
	return old, old != path
}

// trigger resets the backoff of p (or of every member when p is ""): a
// new address, a changed reachability or a service that came up is worth
// an attempt now, not after the backoff.
func (s *punchSched) trigger(p peer.ID, now time.Time) {
	for id, st := range s.peers {
		if p != "" && id != p {
			continue
		}
		if st.path == pathRelayed && !st.busy {
			st.failures, st.capLogged = 0, false
			st.next = later(now, st.lastEnd.Add(punchMinGap))
		}
	}
}

// due returns the members whose attempt should start now and marks them
// busy.
func (s *punchSched) due(now time.Time) []peer.ID {
	var out []peer.ID
	for id, st := range s.peers {
		if st.path == pathRelayed && st.initiator && !st.busy && !now.Before(st.next) {
			st.busy = true
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// done records the end of an attempt to p: direct or not. It returns the
// wait before the next attempt (0 when none is scheduled) and whether the
// backoff has just reached its cap.
func (s *punchSched) done(p peer.ID, direct bool, now time.Time) (wait time.Duration, capped bool) {
	st := s.peers[p]
	if st == nil {
		return 0, false
	}
	st.busy, st.lastEnd = false, now
	if direct {
		st.failures = 0
		if st.path == pathNone {
			delete(s.peers, p)
		}
		return 0, false
	}
	st.failures++
	wait = punchBackoff(st.failures)
	st.next = now.Add(wait)
	if wait == punchMaxRetry && !st.capLogged {
		st.capLogged, capped = true, true
	}
	if st.path == pathNone {
		delete(s.peers, p)
	}
	return wait, capped
}

// wake returns how long until the next attempt is due, and false when
// none is scheduled.
func (s *punchSched) wake(now time.Time) (time.Duration, bool) {
	var best time.Time
	for _, st := range s.peers {
		if st.path != pathRelayed || !st.initiator || st.busy {
			continue
		}
		if best.IsZero() || st.next.Before(best) {
			best = st.next
		}
	}
	if best.IsZero() {
		return 0, false
	}
	return max(best.Sub(now), 0), true
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// puncher runs the retries of one node; its run goroutine is one of the
// node's tasks and stops with the node's run context.
type puncher struct {
	host  host.Host
	self  peer.ID
	hooks punchHooks
	svc   *holepunch.Service // nil: no hole punching (then run only tracks paths)
	log   *slog.Logger
	now   func() time.Time // the node's clock (Config.Now), for backoff and news
	kick  chan struct{}

	results  chan punchResult
	inflight sync.WaitGroup

	attempts atomic.Int64 // retries started by the puncher
	direct   atomic.Int64 // of them, those that ended with a direct connection

	newsMu   sync.Mutex
	lastNews map[peer.ID]time.Time
}

type punchResult struct {
	p      peer.ID
	err    error
	direct bool
	took   time.Duration
}

// punchHooks is what the puncher asks of the rest of the node, given by
// New: it holds no *Node (a part calls downward; doc.go).
type punchHooks struct {
	isMember   func(peer.ID) bool
	ready      func() bool // the hole-punch service is up (holePunchReady)
	deviceName func(peer.ID) string
	event      func(typ, object string, data any)        // a live event (eventHub.publish)
	news       func(kind string, p peer.ID, text string) // a news entry (objectSet.news)
}

func newPuncher(h host.Host, self peer.ID, hooks punchHooks, svc *holepunch.Service, log *slog.Logger, now func() time.Time) *puncher {
	return &puncher{
		host: h, self: self, hooks: hooks, svc: svc, log: log.With("task", "punch"), now: now,
		kick:     make(chan struct{}, 1),
		results:  make(chan punchResult, 16),
		lastNews: map[peer.ID]time.Time{},
	}
}

func (pu *puncher) wakeUp() {
	select {
	case pu.kick <- struct{}{}:
	default:
	}
}

// run is the puncher's loop; it returns when ctx ends, after closing the
// hole-punch service so that attempts in flight end too.
func (pu *puncher) run(ctx context.Context) {
	bus := pu.host.EventBus()
	sub, err := bus.Subscribe([]any{
		new(event.EvtLocalAddressesUpdated),
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtNATDeviceTypeChanged),
		new(event.EvtLocalProtocolsUpdated),
		new(event.EvtPeerIdentificationCompleted),
		new(event.EvtPeerProtocolsUpdated),
	})
	if err != nil {
		pu.log.Error("subscribe to address and identify events; hole punching is not retried", "err", err)
		return
	}
	defer sub.Close()
	notify := &network.NotifyBundle{
		ConnectedF:    func(network.Network, network.Conn) { pu.wakeUp() },
		DisconnectedF: func(network.Network, network.Conn) { pu.wakeUp() },
	}
	pu.host.Network().Notify(notify)
	defer pu.host.Network().StopNotify(notify)
	defer pu.stop()

	s := newPunchSched()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := pu.now()
		pu.refresh(s, now)
		if pu.svc != nil && pu.hooks.ready() {
			for _, p := range s.due(now) {
				pu.start(ctx, p)
			}
		}
		timer.Stop()
		if d, ok := s.wake(now); ok {
			if pu.svc != nil && !pu.hooks.ready() {
				// Not up yet: EvtLocalProtocolsUpdated says when it is.
				d = max(d, punchMaxRetry)
			}
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return
		case <-pu.kick:
		case <-timer.C:
		case r := <-pu.results:
			pu.finished(s, r)
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			pu.onEvent(s, e)
		}
	}
}

// onEvent turns an event into triggers.
func (pu *puncher) onEvent(s *punchSched, e any) {
	now := pu.now()
	switch ev := e.(type) {
	case event.EvtLocalAddressesUpdated:
		pu.log.Debug("local addresses changed: punching relayed members again")
		s.trigger("", now)
	case event.EvtLocalReachabilityChanged:
		pu.log.Debug("reachability changed: punching relayed members again", "reachability", ev.Reachability.String())
		s.trigger("", now)
	case event.EvtNATDeviceTypeChanged:
		s.trigger("", now)
	case event.EvtLocalProtocolsUpdated:
		if slices.Contains(ev.Added, holepunch.Protocol) {
			pu.log.Debug("hole-punch service is up: punching relayed members")
			s.trigger("", now)
		}
	case event.EvtPeerIdentificationCompleted:
		pu.refresh(s, now)
		s.trigger(ev.Peer, now)
	case event.EvtPeerProtocolsUpdated:
		if slices.Contains(ev.Added, holepunch.Protocol) {
			s.trigger(ev.Peer, now)
		}
	}
}

// refresh observes the path of every connected or tracked member.
func (pu *puncher) refresh(s *punchSched, now time.Time) {
	seen := map[peer.ID]bool{}
	check := func(p peer.ID) {
		if seen[p] || p == pu.self {
			return
		}
		seen[p] = true
		path, initiator := pathNone, false
		if pu.hooks.isMember(p) {
			path, initiator = pathTo(pu.host.Network().ConnsToPeer(p))
		}
		if old, changed := s.observe(p, path, initiator, now); changed {
			pu.announce(p, old, path)
		}
	}
	for _, p := range pu.host.Network().Peers() {
		check(p)
	}
	for p := range s.peers {
		check(p)
	}
}

// pathTo tells the path to a peer from its connections: direct when any
// connection is direct, relayed when all go through a relay; initiator
// when one of the relayed connections is inbound (DCUtR is coordinated by
// the side that received the relayed connection).
func pathTo(conns []network.Conn) (path string, initiator bool) {
	for _, c := range conns {
		if c.IsClosed() {
			continue
		}
		if !isRelayed(c.RemoteMultiaddr()) {
			return pathDirect, false
		}
		path = pathRelayed
		if c.Stat().Direction == network.DirInbound {
			initiator = true
		}
	}
	return path, initiator
}

// start runs one attempt to p in a goroutine that the puncher owns.
func (pu *puncher) start(ctx context.Context, p peer.ID) {
	pu.attempts.Add(1)
	pu.log.Debug("hole punch retry", "peer", p.String())
	pu.inflight.Add(1)
	go func() {
		defer pu.inflight.Done()
		begin := time.Now()
		err := pu.svc.DirectConnect(p)
		r := punchResult{p: p, err: err, took: time.Since(begin)}
		if path, _ := pathTo(pu.host.Network().ConnsToPeer(p)); err == nil && path == pathDirect {
			r.direct = true
		}
		select {
		case pu.results <- r:
		case <-ctx.Done():
		}
	}()
}

// finished records an attempt's outcome.
func (pu *puncher) finished(s *punchSched, r punchResult) {
	now := pu.now()
	name := pu.hooks.deviceName(r.p)
	if r.direct {
		pu.direct.Add(1)
		pu.log.Info("hole punch retry connected directly", "peer", r.p.String(), "name", name, "took", r.took.Round(time.Millisecond))
		s.done(r.p, true, now)
		pu.refresh(s, now)
		return
	}
	err := r.err
	if err == nil {
		err = errors.New("no direct connection after the punch")
	}
	wait, capped := s.done(r.p, false, now)
	if errors.Is(err, holepunch.ErrHolePunchActive) {
		pu.attempts.Add(-1) // go-libp2p's own attempt is running: not ours
	}
	pu.log.Debug("hole punch retry failed", "peer", r.p.String(), "name", name, "retry_in", wait, "took", r.took.Round(time.Millisecond), "err", err)
	if capped {
		pu.log.Info("hole punching keeps failing; retrying while relayed", "peer", r.p.String(), "name", name, "every", wait, "err", err)
	}
}

// announce publishes a change of p's path.
func (pu *puncher) announce(p peer.ID, from, to string) {
	name := pu.hooks.deviceName(p)
	pu.hooks.event("path", "path", PathEvent{ID: p.String(), Name: name, From: nullable(from), To: nullable(to)})
	if from == pathNone || to == pathNone {
		return
	}
	me := pu.hooks.deviceName(pu.self)
	var text string
	if to == pathDirect {
		text = fmt.Sprintf("device %s is now connected directly to %s", me, name)
	} else {
		text = fmt.Sprintf("device %s reaches %s only through a relay again", me, name)
	}
	pu.log.Info("path changed", "peer", p.String(), "name", name, "from", from, "to", to)
	pu.newsMu.Lock()
	last, seen := pu.lastNews[p]
	now := pu.now()
	quiet := seen && now.Sub(last) < punchNewsEvery
	if !quiet {
		pu.lastNews[p] = now
	}
	pu.newsMu.Unlock()
	if !quiet {
		pu.hooks.news("path", p, text)
	}
}

// PathEvent is the data of a "path" live event (node/API.md): the path to
// a member changed. From and To are "direct", "relayed" or null (offline).
type PathEvent struct {
	ID   string  `json:"id"`
	Name string  `json:"name"`
	From *string `json:"from"`
	To   *string `json:"to"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// stop closes the hole-punch service (the host would close it later;
// closing it here ends the attempts in flight) and waits for them.
func (pu *puncher) stop() {
	if pu.svc == nil {
		return
	}
	_ = pu.svc.Close()
	done := make(chan struct{})
	go func() { pu.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(punchCloseWait):
		pu.log.Warn("hole punch attempts still running at shutdown", "waited", punchCloseWait)
	}
}

// PunchStats are the puncher's counters for Status.
func (pu *puncher) stats() (attempts, direct int64) {
	if pu == nil {
		return 0, 0
	}
	return pu.attempts.Load(), pu.direct.Load()
}
