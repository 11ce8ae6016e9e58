package node

import (
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// gater refuses connections to and from revoked devices. Non-members may
// connect (to ping, or to redeem an invite); stream-level checks in
// Node.handle keep them away from everything else.
type gater struct {
	isRevoked func(peer.ID) bool
}

func (g *gater) InterceptPeerDial(p peer.ID) bool                 { return !g.isRevoked(p) }
func (g *gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !g.isRevoked(p) }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.isRevoked(p)
}
func (g *gater) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	return !g.isRevoked(c.RemotePeer()), 0
}
