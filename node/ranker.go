package node

import (
	"slices"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// dialRanker orders outgoing dials: libp2p's default ranking, except that
// a peer's plain TCP addresses on private networks (loopback, RFC 1918,
// CGNAT, link-local: a LAN, or the same machine) are dialled first and its
// other private addresses (QUIC) only after them, at libp2p's private-
// address step of 30 ms each. Public and relay addresses are ranked
// exactly as libp2p ranks them, in parallel with the private ones as
// before; hole punching does not use the ranker at all (its simultaneous
// dials go to every address at once).
//
// Why: libp2p's default prefers QUIC everywhere, and on this 2-core machine
// quic-go costs about three times TCP+TLS+yamux per byte: a 1 GiB blob
// fetch between two meshd took 5.8–7.4 ns of CPU per byte over QUIC
// (225–280 MB/s) against 2.1–2.7 ns over TCP (683–847 MB/s)
// (BenchmarkTransfer1GiB, node/e2e). On a LAN, where bandwidth is high and
// loss low, a bulk sync is bound by that CPU; over the internet QUIC's
// faster handshake and loss recovery are worth more, and its throughput
// here is still above 2 Gbit/s. Syncthing makes the same choice (TCP
// first, QUIC as a fallback). QUIC is dialled as soon as the TCP dial
// fails (a refused port: within a few ms, TestDialRankerFallsBackToQUIC),
// or 30 ms after it if it hangs.
func dialRanker(addrs []ma.Multiaddr) []network.AddrDelay {
	var tcp, pvt, rest []ma.Multiaddr
	for _, a := range addrs {
		switch {
		case isCircuit(a) || !manet.IsPrivateAddr(a):
			rest = append(rest, a)
		case isPlainTCP(a):
			tcp = append(tcp, a)
		default:
			pvt = append(pvt, a)
		}
	}
	if len(tcp) == 0 {
		return swarm.DefaultDialRanker(addrs)
	}
	res := swarm.DefaultDialRanker(rest)
	// Lowest port first, as libp2p does: more likely the listen port.
	slices.SortStableFunc(tcp, func(a, b ma.Multiaddr) int { return tcpPort(a) - tcpPort(b) })
	for i, a := range tcp {
		res = append(res, network.AddrDelay{Addr: a, Delay: time.Duration(i) * swarm.PrivateTCPDelay})
	}
	after := time.Duration(len(tcp)) * swarm.PrivateTCPDelay
	for _, ad := range swarm.DefaultDialRanker(pvt) {
		res = append(res, network.AddrDelay{Addr: ad.Addr, Delay: after + ad.Delay})
	}
	return res
}

// isPlainTCP reports whether a is /ip4|ip6/…/tcp/… with nothing after the
// port but a /p2p peer ID (not websocket, not a circuit).
func isPlainTCP(a ma.Multiaddr) bool {
	if len(a) < 2 || (a[0].Code() != ma.P_IP4 && a[0].Code() != ma.P_IP6) || a[1].Code() != ma.P_TCP {
		return false
	}
	for _, c := range a[2:] {
		if c.Code() != ma.P_P2P {
			return false
		}
	}
	return true
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// tcpPort is a's TCP port, or 0.
func tcpPort(a ma.Multiaddr) int {
	v, err := a.ValueForProtocol(ma.P_TCP)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(v)
	return p
}
