package relay

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshwork/meshwork/identity"
)

// access is the relay's ACL. A peer is allowed when the relay is open, when
// its device ID is listed, or when it proved (over AuthProtocolID, on a
// connection that is still open) that it is a current member of a listed
// mesh. It implements relayv2.ACLFilter.
type access struct {
	open    bool
	devices map[peer.ID]struct{}
	net     network.Network // for Connectedness; nil in unit tests
	logger  *slog.Logger
	metrics *metrics
	maxAuth int // bound on remembered authorisations

	mu         sync.Mutex
	meshes     map[identity.MeshID]*identity.Log // allowed meshes → merged log (nil until first proof)
	authorised map[peer.ID]identity.MeshID       // peers that proved membership, while connected
}

func newAccess(cfg *Config, logger *slog.Logger, m *metrics) *access {
	a := &access{
		open:       cfg.Open,
		devices:    make(map[peer.ID]struct{}, len(cfg.AllowDevices)),
		logger:     logger,
		metrics:    m,
		maxAuth:    cfg.Limits.MaxAuthorised,
		meshes:     make(map[identity.MeshID]*identity.Log, len(cfg.AllowMeshes)),
		authorised: make(map[peer.ID]identity.MeshID),
	}
	for _, d := range cfg.AllowDevices {
		a.devices[d] = struct{}{}
	}
	for _, m := range cfg.AllowMeshes {
		a.meshes[m] = nil
	}
	return a
}

// allowed reports whether p may use the relay, and why (for logs).
func (a *access) allowed(p peer.ID) (bool, string) {
	if a.open {
		return true, "open"
	}
	if _, ok := a.devices[p]; ok {
		return true, "device"
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	id, ok := a.authorised[p]
	if !ok {
		return false, "not authorised"
	}
	// Re-check against the newest log the relay knows: a revocation
	// learnt since the proof takes effect at once.
	if l := a.meshes[id]; l == nil || !l.IsMember(p) {
		delete(a.authorised, p)
		a.metrics.authorised.Set(float64(len(a.authorised)))
		return false, "no longer a member"
	}
	return true, "mesh"
}

// AllowReserve implements relayv2.ACLFilter.
func (a *access) AllowReserve(p peer.ID, addr ma.Multiaddr) bool {
	ok, why := a.allowed(p)
	if !ok {
		a.logger.Info("reservation refused", "peer", p, "addr", addr, "reason", why)
	}
	return ok
}

// AllowConnect implements relayv2.ACLFilter: the destination must be
// allowed (it holds a reservation, so it was allowed once; checking it again
// applies revocations to new circuits). The source need not be: a device
// redeeming an invite is not a member yet, and the invite code carries the
// inviter's circuit address for exactly this case. Nothing is lost by it:
// the destination serves a non-member no /meshwork/ protocol but the
// invite one, and the relay's per-connection limits apply to the circuit.
func (a *access) AllowConnect(src peer.ID, srcAddr ma.Multiaddr, dest peer.ID) bool {
	if ok, why := a.allowed(dest); !ok {
		a.logger.Info("circuit refused", "src", src, "dest", dest, "reason", "destination "+why)
		return false
	}
	if ok, _ := a.allowed(src); !ok {
		a.logger.Info("circuit from a peer outside the ACL to an allowed device", "src", src, "src_addr", srcAddr, "dest", dest)
	}
	return true
}

// authorise checks a membership proof from p and remembers the outcome. It
// returns the status to send and a short message for the peer.
func (a *access) authorise(p peer.ID, encoded []byte) (Status, string) {
	log, err := identity.DecodeLog(encoded) // verifies every signature; outside the lock
	if err != nil {
		return StatusInvalidLog, err.Error()
	}
	id := log.MeshID()

	a.mu.Lock()
	known, allowed := a.meshes[id]
	if !allowed {
		a.mu.Unlock()
		return StatusMeshNotAllowed, fmt.Sprintf("mesh %s is not allowed on this relay", id)
	}
	merged := log
	if known != nil {
		merged = known.Clone()
		if _, err := merged.Merge(log); err != nil {
			a.mu.Unlock()
			return StatusConflict, fmt.Sprintf("merge with the relay's log of mesh %s: %v", id, err)
		}
	}
	// Keep what was learnt (new members, revocations) whoever sent it.
	a.meshes[id] = merged
	if !merged.IsMember(p) {
		if prev, ok := a.authorised[p]; ok && prev == id {
			delete(a.authorised, p)
		}
		a.metrics.authorised.Set(float64(len(a.authorised)))
		a.mu.Unlock()
		return StatusNotMember, fmt.Sprintf("device %s is not a current member of mesh %s", p, id)
	}
	if _, ok := a.authorised[p]; !ok && len(a.authorised) >= a.maxAuth {
		a.mu.Unlock()
		return StatusBusy, "too many authorised peers"
	}
	a.authorised[p] = id
	a.metrics.authorised.Set(float64(len(a.authorised)))
	a.mu.Unlock()

	// The disconnect notification may have run before we stored p.
	if a.net != nil && a.net.Connectedness(p) != network.Connected {
		a.forget(p)
	}
	return StatusOK, "authorised for mesh " + id.String()
}

// forget drops p's authorisation if it has no open connection left.
func (a *access) forget(p peer.ID) {
	if a.net != nil && a.net.Connectedness(p) == network.Connected {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.authorised[p]; ok {
		delete(a.authorised, p)
		a.metrics.authorised.Set(float64(len(a.authorised)))
	}
}

// notifiee returns the network notifications that forget disconnected peers.
func (a *access) notifiee() network.Notifiee {
	return &network.NotifyBundle{
		DisconnectedF: func(_ network.Network, c network.Conn) { a.forget(c.RemotePeer()) },
	}
}
