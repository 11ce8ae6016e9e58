package relay

import (
	"log/slog"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// The relay's DHT answers only peers its ACL allows (issue 14, row 10):
// kad-dht answers FIND_NODE for a peer ID with that peer's addresses from
// the peerstore, so a stranger with a fresh key could otherwise look up any
// member connected to the relay. The DHT is given aclHost, a host whose
// stream handlers reset the streams of peers outside the ACL before the DHT
// reads a byte, and a routing-table and query filter with the same test, so
// a stranger's addresses are never handed out either, nor strangers asked.
//
// "Allowed" is dhtAllowed: what the relay's ACL allows (open relay, listed
// device, or a current member that proved it over AuthProtocolID), and the
// relay's own DHT peers (DHTBootstrapPeers, usually other relays). The check
// is made when a stream opens; kad-dht keeps a stream for many requests, so
// a peer revoked meanwhile keeps the streams it has until they close (its
// next stream is refused).

// aclHost is a host.Host whose stream handlers admit only allowed peers.
type aclHost struct {
	host.Host
	allow  func(peer.ID) bool
	logger *slog.Logger
}

func (h aclHost) guard(handler network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		if p := s.Conn().RemotePeer(); !h.allow(p) {
			h.logger.Debug("DHT stream refused: peer outside the ACL", "peer", p, "protocol", s.Protocol())
			_ = s.Reset()
			return
		}
		handler(s)
	}
}

// SetStreamHandler implements host.Host, wrapping handler in the ACL check.
func (h aclHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, h.guard(handler))
}

// SetStreamHandlerMatch implements host.Host, wrapping handler in the ACL check.
func (h aclHost) SetStreamHandlerMatch(pid protocol.ID, m func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, m, h.guard(handler))
}

// dhtAllowed reports whether p may use the relay's DHT.
func (s *Server) dhtAllowed(p peer.ID) bool {
	if _, ok := s.dhtPeers[p]; ok {
		return true
	}
	ok, _ := s.access.allowed(p)
	return ok
}
