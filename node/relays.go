package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshwork/meshwork/relay"
)

// Relays and the DHT.
//
// For every configured relay (--relay), the node keeps a reservation: it
// connects, proves its membership with the signed log
// (relay.Authenticate, /meshwork/relay-auth/1.0.0), reserves a slot, and
// advertises RELAYADDR/p2p/RELAY/p2p-circuit among its own addresses (the
// addrs factory below), so identify and the signed address records that
// members forward carry it. It renews before expiry and starts over when
// the relay connection drops (a restarted relay forgets reservations and
// authorisations).
//
// The relays are also the bootstrap servers of Meshwork's own Kademlia DHT
// (protocol prefix relay.DHTProtocolPrefix, never the public IPFS DHT). A
// member that cannot be dialled at its known addresses is looked up there
// by device ID.

const (
	reserveTimeout  = 20 * time.Second
	renewBefore     = 5 * time.Minute
	maxRelayBackoff = 30 * time.Second
	dhtLookupAfter  = 2 // failed dials before a member is looked up in the DHT
)

type relaySet struct {
	mu       sync.Mutex
	infos    []peer.AddrInfo
	circuits map[peer.ID][]ma.Multiaddr // relay → our circuit addresses through it
	reauth   chan struct{}              // membership changed: authenticate again
}

func newRelaySet(infos []peer.AddrInfo) *relaySet {
	return &relaySet{infos: infos, circuits: map[peer.ID][]ma.Multiaddr{}, reauth: make(chan struct{}, 1)}
}

// addrs is the host's address factory: listen addresses plus circuit
// addresses of live reservations.
func (rs *relaySet) addrs(in []ma.Multiaddr) []ma.Multiaddr {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := append([]ma.Multiaddr(nil), in...)
	for _, c := range rs.circuits {
		out = append(out, c...)
	}
	return out
}

func (rs *relaySet) setCircuits(relayID peer.ID, addrs []ma.Multiaddr) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if addrs == nil {
		delete(rs.circuits, relayID)
		return
	}
	rs.circuits[relayID] = addrs
}

func circuitAddrs(ai peer.AddrInfo) []ma.Multiaddr {
	suffix, err := ma.NewMultiaddr(fmt.Sprintf("/p2p/%s/p2p-circuit", ai.ID))
	if err != nil {
		return nil
	}
	var out []ma.Multiaddr
	for _, a := range ai.Addrs {
		out = append(out, a.Encapsulate(suffix))
	}
	return out
}

// relayLoop keeps one reservation per configured relay.
func (n *Node) relayLoop(ctx context.Context) {
	var wg sync.WaitGroup
	for _, ai := range n.relays.infos {
		wg.Add(1)
		go func(ai peer.AddrInfo) {
			defer wg.Done()
			n.keepReservation(ctx, ai)
		}(ai)
	}
	wg.Wait()
}

func (n *Node) keepReservation(ctx context.Context, ai peer.AddrInfo) {
	log := n.log.With("relay", ai.ID.String())
	sub, err := n.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		log.Error("subscribe to connection events", "err", err)
		return
	}
	defer sub.Close()
	backoff := time.Second
	for {
		res, err := n.reserve(ctx, ai)
		if err != nil {
			n.relays.setCircuits(ai.ID, nil)
			log.Warn("relay reservation failed", "retry_in", backoff, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			case <-n.relays.reauth:
			}
			backoff = min(2*backoff, maxRelayBackoff)
			continue
		}
		backoff = time.Second
		n.relays.setCircuits(ai.ID, circuitAddrs(ai))
		n.kickDial() // members we could not reach may be reachable through it now
		log.Info("relay reservation active", "expires", res.Expiration.Format(time.RFC3339), "limit_bytes", res.LimitData, "limit_duration", res.LimitDuration)
		renew := time.NewTimer(max(time.Until(res.Expiration)-renewBefore, 10*time.Second))
	wait:
		for {
			select {
			case <-ctx.Done():
				renew.Stop()
				return
			case <-renew.C:
				break wait
			case <-n.relays.reauth:
				renew.Stop()
				break wait
			case e := <-sub.Out():
				ev := e.(event.EvtPeerConnectednessChanged)
				if ev.Peer == ai.ID && ev.Connectedness != network.Connected {
					log.Info("lost relay connection, reserving again")
					renew.Stop()
					n.relays.setCircuits(ai.ID, nil)
					break wait
				}
			}
		}
	}
}

// addRelayCircuits gives member p a circuit address through each
// configured relay: members of one mesh usually reserve slots on the same
// relays, so a member known by no other working address (both devices
// started while the relay was down, say) is tried there. The relay
// connects the circuit only when p holds a reservation; the address
// expires unless renewed by the next dial. It reports whether there was a
// relay to add.
func (n *Node) addRelayCircuits(p peer.ID) bool {
	added := false
	for _, ai := range n.relays.infos {
		if ai.ID == p || ai.ID == n.id {
			continue
		}
		n.host.Peerstore().AddAddrs(p, circuitAddrs(ai), relayGuessTTL)
		added = true
	}
	return added
}

// relayGuessTTL is how long a guessed circuit address of a member stays
// in the peerstore.
const relayGuessTTL = 10 * time.Minute

// reserve connects, proves membership when this device is in a mesh, and
// reserves a slot.
func (n *Node) reserve(ctx context.Context, ai peer.AddrInfo) (*client.Reservation, error) {
	ctx, cancel := context.WithTimeout(ctx, reserveTimeout)
	defer cancel()
	if err := n.host.Connect(ctx, ai); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if l := n.membership(); l != nil {
		if err := relay.Authenticate(ctx, n.host, ai.ID, l.Encode()); err != nil {
			if !errors.Is(err, relay.ErrRefused) {
				return nil, err
			}
			// An open relay, or one that admits this device by ID, lists no
			// mesh and refuses the proof: ask for the slot anyway and let the
			// relay decide.
			n.log.Info("relay refused the membership proof; reserving anyway", "relay", ai.ID.String(), "err", err)
		}
	}
	res, err := client.Reserve(ctx, n.host, ai)
	if err != nil {
		return nil, fmt.Errorf("reserve: %w", err)
	}
	return res, nil
}

// holePunchReady reports whether the hole-punching service is listening:
// go-libp2p registers it only once the host has seen a public address.
func (n *Node) holePunchReady() bool {
	return slices.Contains(n.host.Mux().Protocols(), holepunch.Protocol)
}

// awaitHolePunch waits (briefly) for the hole-punching service when relays
// are configured, so that a first relayed connection can be upgraded: the
// other side's first punch attempt fails if our service is not up yet (it
// is retried, punch.go, but seconds later).
func (n *Node) awaitHolePunch(ctx context.Context) {
	if len(n.relays.infos) == 0 {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for !n.holePunchReady() && time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startDHT runs a client of Meshwork's own DHT bootstrapped from the relays.
func (n *Node) startDHT(ctx context.Context) error {
	if len(n.relays.infos) == 0 {
		return nil
	}
	d, err := dht.New(n.host,
		dht.Mode(dht.ModeAuto),
		dht.ProtocolPrefix(relay.DHTProtocolPrefix),
		dht.BootstrapPeers(n.relays.infos...),
	)
	if err != nil {
		return fmt.Errorf("start DHT: %w", err)
	}
	n.dht = d
	return d.Bootstrap(ctx)
}

// lookupMember asks the DHT for a member's current addresses.
func (n *Node) lookupMember(ctx context.Context, p peer.ID) bool {
	if n.dht == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if !n.awaitRoutingTable(ctx) {
		n.log.Debug("DHT lookup: no DHT server reachable yet", "peer", p.String())
		return false
	}
	ai, err := n.dht.FindPeer(ctx, p)
	if err != nil || len(ai.Addrs) == 0 {
		n.log.Debug("DHT lookup found nothing", "peer", p.String(), "err", err)
		return false
	}
	n.log.Info("found member through the DHT", "peer", p.String(), "addrs", ai.Addrs)
	n.host.Peerstore().AddAddrs(p, ai.Addrs, savedAddrTTL)
	return true
}

// awaitRoutingTable waits, bounded by ctx, until the DHT's routing table
// holds a peer, connecting to the relays (its bootstrap peers) first. The
// DHT adds a connected server to its table only after a check query of
// its own, so right after start, or on a busy machine, a lookup would find
// an empty table and fail at once; the member would then be reached, if
// at all, through a guessed circuit (addRelayCircuits), never through the
// addresses the DHT holds (TestRelayAndDHT failed so under load).
func (n *Node) awaitRoutingTable(ctx context.Context) bool {
	rt := n.dht.RoutingTable()
	if rt.Size() > 0 {
		return true
	}
	for _, ai := range n.relays.infos {
		if ai.ID != n.id {
			_ = n.host.Connect(ctx, ai) // failures show as an empty table below
		}
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for rt.Size() == 0 {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}
