package node

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshwork/meshwork/node/internal/kv"
	"github.com/meshwork/meshwork/node/internal/wire"
)

// How members find each other, in the order they are tried:
//   - addresses persisted from earlier connections (badger, node/addrs/…),
//     loaded at start and redialled with backoff;
//   - mDNS on the LAN (service name mdnsService);
//   - signed address records forwarded by other members (membership.go);
//   - the invite code, which carries the inviter's addresses.

const (
	mdnsService    = "meshwork"
	savedAddrTTL   = 7 * 24 * time.Hour
	dialTimeout    = 10 * time.Second
	minDialBackoff = time.Second
	maxDialBackoff = time.Minute
	redialInterval = time.Second
	maxSavedAddrs  = 16
	maxRecords     = 1024
)

// onConnected runs on the swarm's notification path: it must not block.
func (n *Node) onConnected(_ context.Context, c network.Conn) {
	if n.IsMember(c.RemotePeer()) {
		n.members.forgetDial(c.RemotePeer())
		n.stale.connected(c) // its older connections may be dead (staleconn.go)
		n.schedulePush()     // the push loop also re-drives folders (memberOnline)
		n.rounds.kick(c.RemotePeer())
	}
}

// watchIdentify saves a member's addresses once identify has learned them.
func (n *Node) watchIdentify(ctx context.Context) {
	sub, err := n.host.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		n.log.Error("subscribe to identify events", "err", err)
		return
	}
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			ev := e.(event.EvtPeerIdentificationCompleted)
			// Keep its signed address record to forward to members (go-libp2p's
			// identify hands it over but does not store it). Kept for
			// non-members too: a device redeeming an invite is identified
			// before it becomes a member.
			if ev.SignedPeerRecord != nil {
				b, err := ev.SignedPeerRecord.Marshal()
				rec, rerr := ev.SignedPeerRecord.Record()
				if pr, ok := rec.(*peer.PeerRecord); err == nil && rerr == nil && ok {
					n.members.keepRecord(ev.Peer, b, pr.Seq)
				}
			}
			if !n.IsMember(ev.Peer) {
				continue
			}
			n.saveAddrs(ev.Peer)
			n.schedulePush()
			if n.st.isStoragePeer(ev.Peer) {
				n.st.kick() // push to and merge from it now (storage.go)
			}
		}
	}
}

// saveAddrs persists the peerstore's addresses of p.
func (n *Node) saveAddrs(p peer.ID) {
	addrs := n.host.Peerstore().Addrs(p)
	var b []byte
	count := 0
	for _, a := range addrs {
		if isRelayed(a) && count > 0 {
			continue
		}
		b = wire.AppendBytes(b, a.Bytes())
		if count++; count >= maxSavedAddrs {
			break
		}
	}
	if len(b) == 0 {
		return
	}
	if err := dbPut(n.db, append(append([]byte{}, prefixAddrs...), []byte(p)...), b); err != nil {
		n.log.Warn("save addresses", "peer", p.String(), "err", err)
	}
}

// loadAddrs puts persisted addresses of members into the peerstore.
func (n *Node) loadAddrs() {
	err := kv.Scan(n.db, prefixAddrs, func(k, v []byte) error {
		p, err := peer.IDFromBytes(k)
		if err != nil {
			return nil
		}
		var addrs []ma.Multiaddr
		for len(v) > 0 {
			var f []byte
			if f, v, err = wire.ReadBytes(v); err != nil {
				break
			}
			if a, err := ma.NewMultiaddrBytes(f); err == nil {
				addrs = append(addrs, a)
			}
		}
		n.host.Peerstore().AddAddrs(p, addrs, savedAddrTTL)
		return nil
	})
	if err != nil {
		n.log.Warn("load saved addresses", "err", err)
	}
}

// redialLoop connects to members we are not connected to, each with its
// own exponential backoff, and at once when kicked (new member, new
// addresses).
func (n *Node) redialLoop(ctx context.Context) {
	n.loadAddrs()
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(redialInterval)
	defer t.Stop()
	for {
		l := n.membership()
		now := n.now()
		if l != nil {
			for _, m := range l.Members() {
				p := m.ID
				if p == n.id || n.host.Network().Connectedness(p) == network.Connected {
					continue
				}
				if len(n.host.Peerstore().Addrs(p)) == 0 && n.dht == nil {
					continue
				}
				st, due := n.members.claimDial(p, now)
				if !due {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					n.dialMember(ctx, p, st)
				}()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.kick:
			n.members.kickDials()
		}
	}
}

func (n *Node) dialMember(ctx context.Context, p peer.ID, st *dialState) {
	failures := n.members.failures(st)
	// Known addresses first; after a few failures (or with no address at
	// all), ask the DHT and dial what it found; when that fails too, try
	// circuits through our own relays (relays.go), which stay in the
	// peerstore for the next dials.
	// The swarm's own dial backoff would refuse an address that failed a
	// moment ago (a circuit through a relay that had just restarted, say);
	// this loop backs off by itself, and is kicked when something changed.
	if sw, ok := n.host.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(p)
	}
	connect := func() error {
		if len(n.host.Peerstore().Addrs(p)) == 0 {
			return errNoAddrs
		}
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		defer cancel()
		return n.host.Connect(dctx, peer.AddrInfo{ID: p})
	}
	err := connect()
	if err != nil && (failures >= dhtLookupAfter || errors.Is(err, errNoAddrs)) {
		if n.lookupMember(ctx, p) {
			err = connect()
		}
		if err != nil && n.addRelayCircuits(p) {
			err = connect()
		}
	}
	retryIn, kicked := n.members.endDial(st, err == nil, n.now())
	if err != nil {
		n.log.Debug("dial member failed", "peer", p.String(), "retry_in", retryIn, "kicked", kicked, "err", err)
	}
}

var errNoAddrs = errors.New("no known addresses")

// reaching reports whether member p, not connected, may yet be reached
// with what this device knows: no dial to it has failed since the daemon
// started (the first may be under way), or its addresses changed since
// the last one failed (memberState.reaching). The in-sync rule counts such
// a member as connecting, not offline: two members restarted together on
// new ports learn each other's addresses from a third, and until the dial
// ends neither may say it is in sync (chaos soak seed 577: both said
// in_sync 1 while each lacked the other's changes). A member with no
// address and no DHT to look it up is not reaching: nothing dials it.
func (n *Node) reaching(p peer.ID) bool {
	if r, known := n.members.reaching(p); known && !r {
		return false
	}
	// The redial loop skips a member with no address and no DHT to look
	// it up: nothing will dial it (its addresses may have expired).
	return n.dht != nil || len(n.host.Peerstore().Addrs(p)) > 0
}

// learntAddrs marks member p's addresses as changed and wakes the redial
// loop. It marks p before it returns, so a status read right after a
// membership exchange already counts p as connecting (reaching).
func (n *Node) learntAddrs(p peer.ID) {
	n.members.learnt(p)
	n.kickDial()
}

type mdnsNotifee struct{ n *Node }

func (m mdnsNotifee) HandlePeerFound(pi peer.AddrInfo) {
	if pi.ID == m.n.id {
		return
	}
	known := m.n.host.Peerstore().Addrs(pi.ID)
	news := false
	for _, a := range pi.Addrs {
		news = news || !slices.ContainsFunc(known, a.Equal)
	}
	m.n.host.Peerstore().AddAddrs(pi.ID, pi.Addrs, 10*time.Minute)
	if m.n.IsMember(pi.ID) {
		m.n.log.Debug("found member on the LAN", "peer", pi.ID.String())
		if news { // a repeated answer with the same addresses says nothing new
			m.n.learntAddrs(pi.ID)
		} else {
			m.n.kickDial()
		}
	}
}

// runMDNS advertises this node and listens for others on the LAN.
func (n *Node) runMDNS(ctx context.Context) {
	svc := mdns.NewMdnsService(n.host, mdnsService, mdnsNotifee{n})
	if err := svc.Start(); err != nil {
		n.log.Warn("mDNS discovery off", "err", err)
		return
	}
	<-ctx.Done()
	_ = svc.Close()
}
