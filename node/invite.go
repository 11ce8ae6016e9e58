package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/node/internal/wire"
)

// ProtoInvite lets a device that is not yet a member redeem an invite at
// the one member its grant names as redeemer: the inviter, or, for a code
// made while the inviter is connected to a storage peer (whose addresses
// the code then carries so that it can be redeemed while the inviter is
// offline), that storage peer. Any other member refuses it ("not
// redeemable at this device"), so two members can never both welcome a
// device with one code. A code made before grants named redeemers
// (identity grant version 1) is redeemable at its inviter only. It is the
// only /meshwork/ protocol open to non-members.
//
// Version history: 1.0.0 — first version. The grant inside hello may be
// version 2 (names redeemers); the messages are unchanged.
//
// Messages (one wire frame each; J = joining device, R = redeemer):
//
//	J→R type 1 hello:     uvarint len, InviteGrant (identity binary form)
//	                      uvarint len, the joiner's device name (UTF-8)
//	R→J type 2 challenge: 32 random bytes
//	J→R type 3 proof:     ed25519 signature by the invite key over the mesh,
//	                      joiner, redeemer, name and challenge (identity.Invite.Prove)
//	R→J type 4 welcome:   the whole membership log, now with the joiner added
//	R→J type 5 refused:   a UTF-8 reason, sent instead of 2 or 4
//
// The invite secret (the invite key's seed) never crosses the wire; the
// proof binds both device IDs of this authenticated channel and a fresh
// challenge, so it cannot be replayed elsewhere, and the redemption entry
// in the log makes the invite single-use everywhere.
const ProtoInvite = "/meshwork/invite/1.0.0"

const (
	msgHello     = 1
	msgChallenge = 2
	msgProof     = 3
	msgWelcome   = 4
	msgRefused   = 5

	maxInviteFrame = 64 << 10
	inviteTimeout  = 20 * time.Second
	maxNameLen     = 64
	maxInviteAddrs = 6
)

// NewInvite creates an invite code for a new device with the given role.
func (n *Node) NewInvite(role identity.Role, ttl time.Duration) (*identity.Invite, error) {
	var inv *identity.Invite
	err := n.members.update(func(cur *identity.Log) (*identity.Log, error) {
		if cur == nil {
			return nil, errNoMesh
		}
		redeemer, addrs := n.inviteRedeemerLocked(cur)
		var err error
		if inv, err = cur.NewInvite(n.key, role, ttl, addrs, n.now(), redeemer); err != nil {
			return nil, fmt.Errorf("create invite: %w", err)
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	return inv, nil
}

// inviteRedeemerLocked picks the one member of l that may redeem a new
// code (see ProtoInvite) and the addresses to put into it. It runs inside
// members.update, with the members' lock held.
func (n *Node) inviteRedeemerLocked(l *identity.Log) (peer.ID, []ma.Multiaddr) {
	sp := n.st.storagePeerAddrsLocked(l)
	if len(sp) == 0 {
		return n.id, n.inviteAddrs(nil)
	}
	ai, err := peer.AddrInfoFromP2pAddr(sp[0])
	if err != nil {
		return n.id, n.inviteAddrs(nil)
	}
	var mine []ma.Multiaddr
	for _, a := range sp {
		if id, err := peer.IDFromP2PAddr(a); err == nil && id == ai.ID {
			mine = append(mine, a)
		}
	}
	return ai.ID, n.inviteAddrs(mine)
}

// inviteAddrs are the dialable addresses put into a code: the storage
// peer's that redeems it (sp, with /p2p/ID, up to 2 slots), then this
// device's public ones, then LAN, then loopback (so a demo on one machine
// works), plus relay circuit addresses, at most maxInviteAddrs.
func (n *Node) inviteAddrs(sp []ma.Multiaddr) []ma.Multiaddr {
	var public, private, loop []ma.Multiaddr
	for _, a := range n.host.Addrs() {
		switch {
		case isRelayed(a):
			public = append(public, a)
		case isLoopback(a):
			loop = append(loop, a)
		case isPrivate(a):
			private = append(private, a)
		default:
			public = append(public, a)
		}
	}
	all := append(append(public, private...), loop...)
	keep := maxInviteAddrs - min(len(sp), 2)
	if len(all) > keep {
		all = all[:keep]
	}
	return append(all, sp[:min(len(sp), maxInviteAddrs-len(all))]...)
}

// handleInvite serves one redemption (open to non-members by design). A
// panic is recovered, logged at ERROR with the peer, protocol and stack,
// and the stream reset.
func (n *Node) handleInvite(s network.Stream) {
	joiner := s.Conn().RemotePeer()
	log := n.log.With("joiner", joiner.String())
	defer func() {
		if v := recover(); v != nil {
			log.Error("invite handler panicked", "peer", joiner.String(), "protocol", ProtoInvite, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			s.Reset()
		}
	}()
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(inviteTimeout))
	if err := serveInvite(s, joiner, nodeInviteHost{n}, log); err != nil {
		s.Reset()
	}
}

// inviteHost is what serving a redemption needs of a node, so that the
// handler can run (and be fuzzed) without a daemon.
type inviteHost interface {
	// inviteSelf returns the mesh this device belongs to and its ID (ok
	// false when it belongs to none).
	inviteSelf() (mesh identity.MeshID, self peer.ID, ok bool)
	// redeemInvite redeems and commits, returning the encoded log.
	redeemInvite(g *identity.InviteGrant, joiner peer.ID, name string, challenge, proof []byte) ([]byte, error)
	// joined reports a device that joined.
	joined(joiner peer.ID, name string, role identity.Role)
	// now is the host's clock, for the grant's expiry (Config.Now).
	now() time.Time
}

type nodeInviteHost struct{ n *Node }

func (h nodeInviteHost) inviteSelf() (identity.MeshID, peer.ID, bool) {
	l := h.n.membership()
	if l == nil {
		return identity.MeshID{}, h.n.id, false
	}
	return l.MeshID(), h.n.id, true
}

func (h nodeInviteHost) redeemInvite(g *identity.InviteGrant, joiner peer.ID, name string, challenge, proof []byte) ([]byte, error) {
	n := h.n
	var enc []byte
	err := n.members.update(func(cur *identity.Log) (*identity.Log, error) {
		if cur == nil {
			return nil, errNoMesh
		}
		if err := cur.Redeem(n.key, g, joiner, name, challenge, proof, n.now()); err != nil {
			return nil, err
		}
		if err := n.commitLocked(cur); err != nil {
			return nil, err
		}
		enc = cur.Encode()
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	return enc, nil
}

func (h nodeInviteHost) now() time.Time { return h.n.now() }

func (h nodeInviteHost) joined(joiner peer.ID, name string, role identity.Role) {
	h.n.objs.news("joined", joiner, fmt.Sprintf("device %s joined as %s", name, role))
}

// serveInvite runs the redeemer's side of ProtoInvite on rw for joiner.
// Every frame is bounded (maxInviteFrame) before it is read, and so is
// every field inside it. A non-nil error means the stream must be reset
// (nothing, or not a whole answer, was sent).
func serveInvite(rw io.ReadWriter, joiner peer.ID, h inviteHost, log *slog.Logger) error {
	r := wire.NewReader(rw) // reserves each frame in the stream's resource scope
	defer r.Release()
	refuse := func(reason string) error {
		log.Info("refused invite", "reason", reason)
		return wire.WriteFrame(rw, msgRefused, []byte(reason))
	}
	typ, payload, err := r.ReadFrame(maxInviteFrame)
	if err != nil {
		return fmt.Errorf("read hello: %w", err)
	}
	if typ != msgHello {
		return fmt.Errorf("read hello: message type %d", typ)
	}
	grantBytes, rest, err := wire.ReadBytes(payload)
	if err != nil {
		return refuse("malformed hello")
	}
	nameBytes, _, err := wire.ReadBytes(rest)
	if err != nil || len(nameBytes) == 0 || len(nameBytes) > maxNameLen {
		return refuse(fmt.Sprintf("device name must be 1 to %d bytes", maxNameLen))
	}
	var grant identity.InviteGrant
	if err := grant.UnmarshalBinary(grantBytes); err != nil {
		return refuse("malformed invite: " + err.Error())
	}
	mesh, self, ok := h.inviteSelf()
	if !ok || mesh != grant.Mesh {
		return refuse("this device is not a member of the invite's mesh")
	}
	if !grant.MayRedeem(self) {
		return refuse(fmt.Sprintf("%s: invite %s can only be redeemed at %s (so that it is redeemed exactly once), not at %s",
			identity.ErrNotRedeemer, grant.ID(), redeemersOf(&grant), self))
	}
	if grant.Expired(h.now()) {
		return refuse(fmt.Sprintf("invite expired at %s", grant.Expires.UTC().Format(time.RFC3339)))
	}
	challenge := make([]byte, 32)
	if _, err := rand.Read(challenge); err != nil {
		return err
	}
	if err := wire.WriteFrame(rw, msgChallenge, challenge); err != nil {
		return err
	}
	typ, proof, err := r.ReadFrame(maxInviteFrame)
	if err != nil {
		return fmt.Errorf("read proof: %w", err)
	}
	if typ != msgProof {
		return fmt.Errorf("read proof: message type %d", typ)
	}
	logBytes, err := h.redeemInvite(&grant, joiner, string(nameBytes), challenge, proof)
	if err != nil {
		return refuse(err.Error())
	}
	log.Info("device joined with an invite", "name", string(nameBytes), "role", grant.Role)
	h.joined(joiner, string(nameBytes), grant.Role)
	if err := wire.WriteFrame(rw, msgWelcome, logBytes); err != nil {
		return err
	}
	if cw, ok := rw.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	return nil
}

// redeemersOf names the devices that may redeem g (its inviter for a
// version 1 grant).
func redeemersOf(g *identity.InviteGrant) string {
	ids := g.Redeemers
	if len(ids) == 0 {
		ids = []peer.ID{g.Inviter}
	}
	var out []string
	for _, id := range ids {
		out = append(out, id.String())
	}
	return strings.Join(out, ", ")
}

// Join redeems an invite code and makes this device a member of its mesh.
func (n *Node) Join(ctx context.Context, code, name string) (identity.MeshID, error) {
	if name == "" || len(name) > maxNameLen {
		return identity.MeshID{}, fmt.Errorf("join mesh: a device name of 1 to %d bytes is required (--name)", maxNameLen)
	}
	code, meshKey, err := n.st.takeMeshKey(code)
	if err != nil {
		return identity.MeshID{}, err
	}
	inv, err := identity.ParseInviteCode(code)
	if err != nil {
		return identity.MeshID{}, fmt.Errorf("join mesh: %w", err)
	}
	g := inv.Grant
	if g.Expired(n.now()) {
		return identity.MeshID{}, fmt.Errorf("join mesh: %w at %s: ask for a new code ('mesh invite' on a member)", identity.ErrInviteExpired, g.Expires.UTC().Format(time.RFC3339))
	}
	if n.membership() != nil {
		return identity.MeshID{}, errors.New("join mesh: this device already belongs to a mesh")
	}
	// Try every redeemer the code names: addresses with a /p2p/ part name
	// their own device, the others belong to the inviter.
	targets := map[peer.ID][]ma.Multiaddr{}
	order := []peer.ID{}
	for _, a := range g.Addrs {
		id, rest := g.Inviter, a
		if ai, err := peer.AddrInfoFromP2pAddr(a); err == nil && !isRelayed(a) {
			id, rest = ai.ID, ai.Addrs[0]
		}
		if !g.MayRedeem(id) {
			continue // only the redeemers the invite names can redeem it
		}
		if _, seen := targets[id]; !seen {
			order = append(order, id)
		}
		targets[id] = append(targets[id], rest)
	}
	if len(order) == 0 {
		order = append(order, g.Redeemers...)
		if len(order) == 0 {
			order = []peer.ID{g.Inviter}
		}
	}
	n.awaitHolePunch(ctx)
	// Reach every redeemer at once and redeem at the first reached: an
	// offline inviter (whose QUIC dial only ends at a timeout) must not
	// delay redeeming at an online storage peer.
	dctx, cancel := context.WithTimeout(ctx, inviteTimeout)
	reached := make(chan peer.ID, len(order))
	dialErrs := make([]error, len(order))
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i, id := range order {
		ai := peer.AddrInfo{ID: id, Addrs: targets[id]}
		n.host.Peerstore().AddAddrs(id, ai.Addrs, time.Hour)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.host.Connect(dctx, ai); err != nil {
				dialErrs[i] = fmt.Errorf("reach %s: %w", id.ShortString(), err)
				id = ""
			}
			reached <- id
		}()
	}
	var errs []error
	for range order {
		var id peer.ID
		select {
		case id = <-reached:
		case <-ctx.Done():
			return identity.MeshID{}, fmt.Errorf("join mesh: %w", ctx.Err())
		}
		if id == "" {
			continue
		}
		mid, err := n.redeemAt(ctx, inv, peer.AddrInfo{ID: id, Addrs: targets[id]}, name)
		if err == nil {
			err = n.st.keepMeshKey(meshKey)
			n.st.kick() // merge what a storage peer holds now
			return mid, err
		}
		errs = append(errs, err)
		var refused refusedError
		if errors.As(err, &refused) {
			return identity.MeshID{}, fmt.Errorf("join mesh: %w", err) // a member answered: its reason is final
		}
	}
	wg.Wait()
	return identity.MeshID{}, fmt.Errorf("join mesh: no device that may redeem this code (%s) answered; bring it online or ask for a new code ('mesh invite' on a member that is online): %w",
		redeemersOf(&g), errors.Join(append(errs, dialErrs...)...))
}

type refusedError string

// clipReason bounds a refusal reason from the network for display: at most
// 1 KiB, printable.
func clipReason(b []byte) string {
	s := strings.ToValidUTF8(string(b[:min(len(b), 1024)]), "?")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func (e refusedError) Error() string { return "refused: " + string(e) }

func (n *Node) redeemAt(ctx context.Context, inv *identity.Invite, at peer.AddrInfo, name string) (identity.MeshID, error) {
	ctx, cancel := context.WithTimeout(ctx, inviteTimeout)
	defer cancel()
	n.host.Peerstore().AddAddrs(at.ID, at.Addrs, time.Hour)
	if err := n.host.Connect(ctx, at); err != nil {
		return identity.MeshID{}, fmt.Errorf("reach %s: %w", at.ID.ShortString(), err)
	}
	s, err := n.host.NewStream(network.WithAllowLimitedConn(ctx, "invite"), at.ID, ProtoInvite)
	if err != nil {
		return identity.MeshID{}, fmt.Errorf("open invite stream to %s: %w", at.ID.ShortString(), err)
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(inviteTimeout))
	grant, err := inv.Grant.MarshalBinary()
	if err != nil {
		return identity.MeshID{}, err
	}
	hello := wire.AppendBytes(wire.AppendBytes(nil, grant), []byte(name))
	if err := wire.WriteFrame(s, msgHello, hello); err != nil {
		return identity.MeshID{}, err
	}
	r := wire.NewReader(s) // reserves each frame in the stream's resource scope
	defer r.Release()
	typ, payload, err := r.ReadFrame(maxInviteFrame)
	if err != nil {
		return identity.MeshID{}, fmt.Errorf("read challenge: %w", err)
	}
	if typ == msgRefused {
		return identity.MeshID{}, refusedError(clipReason(payload))
	}
	if typ != msgChallenge || len(payload) != 32 {
		return identity.MeshID{}, fmt.Errorf("unexpected message type %d", typ)
	}
	proof, err := inv.Prove(n.id, at.ID, name, payload)
	if err != nil {
		return identity.MeshID{}, err
	}
	if err := wire.WriteFrame(s, msgProof, proof); err != nil {
		return identity.MeshID{}, err
	}
	typ, payload, err = r.ReadFrame(maxStateSize)
	if err != nil {
		return identity.MeshID{}, fmt.Errorf("read welcome: %w", err)
	}
	if typ == msgRefused {
		return identity.MeshID{}, refusedError(clipReason(payload))
	}
	if typ != msgWelcome {
		return identity.MeshID{}, fmt.Errorf("unexpected message type %d", typ)
	}
	l, err := identity.DecodeLog(payload)
	if err != nil {
		return identity.MeshID{}, fmt.Errorf("verify membership log from %s: %w", at.ID.ShortString(), err)
	}
	if l.MeshID() != inv.Grant.Mesh || !l.IsMember(n.id) {
		return identity.MeshID{}, fmt.Errorf("membership log from %s does not list this device in mesh %s", at.ID.ShortString(), inv.Grant.Mesh)
	}
	err = n.members.update(func(cur *identity.Log) (*identity.Log, error) {
		if cur != nil {
			return nil, errors.New("this device joined another mesh meanwhile")
		}
		if err := n.commitLocked(l); err != nil {
			return l, err // joined, as before, though not saved
		}
		n.log.Info("joined mesh", "mesh", l.MeshID().String(), "name", name, "via", at.ID.String())
		return l, nil
	})
	if err != nil {
		return identity.MeshID{}, err
	}
	return l.MeshID(), nil
}
