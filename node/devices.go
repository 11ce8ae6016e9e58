package node

// What the local API (node/localapi) asks of the core about this device,
// its mesh and the mesh's devices: status, devices, invites and pings. The
// routes and their JSON are in node/localapi and node/API.md; the JSON types
// stay here, as the CLI and the e2e tests decode them as node.X.

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	"github.com/meshwork/meshwork/identity"
)

// Status is GET /v1/status.
type Status struct {
	DeviceID    string        `json:"device_id"`
	Name        *string       `json:"name"`
	MeshID      *string       `json:"mesh_id"`
	Role        *string       `json:"role"`
	ListenAddrs []string      `json:"listen_addrs"`
	Members     int           `json:"members"`
	HolePunch   bool          `json:"hole_punching"` // the DCUtR service is up (the host has seen a public address)
	Online      int           `json:"online"`
	Version     string        `json:"version"`
	Folders     []FolderInfo  `json:"folders"`
	FolderErrs  int           `json:"folder_errors"` // folders whose changes fail to be written here (FolderInfo.Error)
	Transfer    TransferStats `json:"transfer"`
	Sync        SyncStats     `json:"sync"`
	HTTP        *string       `json:"http"` // the HTTP API's address, null when off

	// StoreErr says why the device's database fails at run time (its
	// directory is gone, read-only or full, or badger failed to flush; see
	// storehealth.go), null while it works; StoreSince is when it began.
	StoreErr   *string    `json:"store_error"`
	StoreSince *time.Time `json:"store_error_since"`

	// HolePunchAttempts counts the hole punches meshd retried for members
	// connected only through a relay (punch.go; go-libp2p's own first
	// attempt on a new relayed connection is not counted), HolePunchDirect
	// those that ended with a direct connection.
	HolePunchAttempts int64 `json:"hole_punch_attempts"`
	HolePunchDirect   int64 `json:"hole_punch_direct"`
}

// TransferStats are this daemon's blob transfer counters since it started.
type TransferStats struct {
	ChunksServed   int64 `json:"chunks_served"`
	BytesServed    int64 `json:"bytes_served"`
	ChunksReceived int64 `json:"chunks_received"`
	BytesReceived  int64 `json:"bytes_received"`
	BadChunks      int64 `json:"bad_chunks"`
}

// SyncStats are this daemon's sync exchange counters since it started.
type SyncStats struct {
	ItemsReceived   int64 `json:"items_received"`
	ItemsRefused    int64 `json:"items_refused"`    // refused by roles, rules, size or update step (logged)
	ItemsUnsendable int64 `json:"items_unsendable"` // skipped when sending: too large for a frame (logged)
}

// Device is one entry of GET /v1/devices.
type Device struct {
	Name       string   `json:"name"`
	ID         string   `json:"id"`
	Role       string   `json:"role"`
	Online     bool     `json:"online"`
	Self       bool     `json:"self"`
	Connection *string  `json:"connection"` // "direct", "relayed" or null
	Transport  *string  `json:"transport"`  // "quic", "tcp" or null
	RemoteAddr *string  `json:"remote_addr"`
	RTTMillis  *float64 `json:"rtt_ms"`
	// LastSeen is when this daemon saw the device connect (when online)
	// or go away (when offline); null when not seen since it started.
	LastSeen *time.Time `json:"last_seen"`
}

// InviteResponse is POST /v1/invite.
type InviteResponse struct {
	Code    string    `json:"code"`
	MeshID  string    `json:"mesh_id"`
	Role    string    `json:"role"`
	Expires time.Time `json:"expires"`
	QR      string    `json:"qr_png,omitempty"` // HTTP API only: a data: URL of the code as a QR code
	// Redeemer is the name of the only device that redeems the code (this
	// device, or the storage peer it is connected to; see ProtoInvite).
	Redeemer string `json:"redeemer,omitempty"`
}

func strp(s string) *string { return &s }

// Status is GET /v1/status without its HTTP field (the API layer knows
// its own address).
func (n *Node) Status() Status {
	st := Status{DeviceID: n.id.String(), Version: Version, ListenAddrs: []string{}, HolePunch: n.holePunchReady()}
	st.HolePunchAttempts, st.HolePunchDirect = n.punch.stats()
	for _, addr := range n.host.Addrs() {
		st.ListenAddrs = append(st.ListenAddrs, addr.String())
	}
	if l := n.membership(); l != nil {
		st.MeshID = strp(l.MeshID().String())
		if m, ok := l.Lookup(n.id); ok {
			st.Name, st.Role = strp(m.Name), strp(string(m.Role))
		}
		for _, m := range l.Members() {
			st.Members++
			if m.ID != n.id && n.host.Network().Connectedness(m.ID) == network.Connected {
				st.Online++
			}
		}
	}
	n.health.check()
	if msg, since := n.health.state(); msg != "" {
		st.StoreErr, st.StoreSince = &msg, &since
	}
	st.Folders = n.folderInfos()
	for _, fi := range st.Folders {
		if fi.Error != nil {
			st.FolderErrs++
		}
	}
	ts := n.blobSvc.Stats()
	st.Transfer = TransferStats{ChunksServed: ts.ChunksServed, BytesServed: ts.BytesServed,
		ChunksReceived: ts.ChunksReceived, BytesReceived: ts.BytesReceived, BadChunks: ts.BadChunks}
	if n.sync != nil {
		ss := n.sync.Stats()
		st.Sync = SyncStats{ItemsReceived: ss.ChangesReceived, ItemsRefused: ss.ItemsRefused, ItemsUnsendable: ss.ItemsUnsendable}
	}
	return st
}

// Log is the node's logger (with the device's attribute).
func (n *Node) Log() *slog.Logger { return n.log }

// Invite makes an invite code for role valid for ttl (POST /v1/invite);
// forStorage leaves the mesh content key out of the code (for a storage
// peer, storage.go). Its failures are ErrConflict.
func (n *Node) Invite(role identity.Role, ttl time.Duration, forStorage bool) (InviteResponse, error) {
	inv, err := n.NewInvite(role, ttl)
	if err != nil {
		return InviteResponse{}, withKind(ErrConflict, err)
	}
	out := InviteResponse{
		Code: n.st.inviteCode(inv.Code(), forStorage), MeshID: inv.Grant.Mesh.String(), Role: string(inv.Grant.Role), Expires: inv.Grant.Expires.UTC(),
	}
	for _, r := range inv.Grant.Redeemers {
		out.Redeemer = n.deviceName(r)
	}
	return out, nil
}

// Devices lists the mesh's devices with their connections, pinging the
// online ones for their round-trip time (GET /v1/devices); ErrNoMesh
// before the device is in a mesh.
func (n *Node) Devices(ctx context.Context) ([]Device, error) {
	if _, err := n.meshLog(); err != nil {
		return nil, err
	}
	return n.deviceList(ctx, true), nil
}

// deviceList lists the mesh's devices with their connections; withRTT
// also pings the online ones for their round-trip time.
func (n *Node) deviceList(ctx context.Context, withRTT bool) []Device {
	l := n.membership()
	if l == nil {
		return []Device{}
	}
	members := l.Members()
	out := make([]Device, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		out[i] = Device{Name: m.Name, ID: m.ID.String(), Role: string(m.Role), Self: m.ID == n.id}
		if m.ID == n.id {
			out[i].Online = true
			started := n.live.startedAt()
			out[i].LastSeen = &started
			continue
		}
		// Online: since it connected; offline: when it went away.
		if t, ok := n.live.lastSeen(m.ID); ok {
			out[i].LastSeen = &t
		}
		if !withRTT {
			n.describePath(&out[i], m.ID)
			continue
		}
		wg.Add(1)
		go func(d *Device, p peer.ID) {
			defer wg.Done()
			n.describeConn(ctx, d, p)
		}(&out[i], m.ID)
	}
	wg.Wait()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Self && !out[j].Self })
	return out
}

// describeConn fills in the connection a device is reached by, preferring a
// direct connection, and measures its round-trip time.
func (n *Node) describeConn(ctx context.Context, d *Device, p peer.ID) {
	if !n.describePath(d, p) {
		return
	}
	pctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(ctx, "ping"), 2*time.Second)
	defer cancel()
	if res, ok := <-ping.Ping(pctx, n.host, p); ok && res.Error == nil {
		ms := float64(res.RTT.Microseconds()) / 1000
		d.RTTMillis = &ms
	}
}

// describePath fills in the connection in use to p, preferring a direct
// one; it reports whether there is any.
func (n *Node) describePath(d *Device, p peer.ID) bool {
	conns := n.host.Network().ConnsToPeer(p)
	if len(conns) == 0 {
		return false
	}
	best := conns[0]
	for _, c := range conns {
		if !isRelayed(c.RemoteMultiaddr()) {
			best = c
			break
		}
	}
	d.Online = true
	kind := "direct"
	if isRelayed(best.RemoteMultiaddr()) {
		kind = "relayed"
	}
	d.Connection = strp(kind)
	d.Transport = strp(transportOf(best.RemoteMultiaddr()))
	d.RemoteAddr = strp(best.RemoteMultiaddr().String())
	return true
}

// PingResult is one element of GET /v1/ping.
type PingResult struct {
	Seq        int      `json:"seq"`
	RTTMillis  *float64 `json:"rtt_ms"`
	Connection *string  `json:"connection"`
	Transport  *string  `json:"transport"`
	RemoteAddr *string  `json:"remote_addr"`
	Error      *string  `json:"error"`
}

// Ping pings the device named who (name or ID) count times over its
// current connection (GET /v1/ping). Its failures: ErrNoMesh; ErrNotFound
// (no such device); ErrInvalid (this device); ErrUnreachable (no
// connection could be made). A ping that fails ends the list with its
// error.
func (n *Node) Ping(ctx context.Context, who string, count int) ([]PingResult, error) {
	m, err := n.pingTarget(who)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(ctx, "ping"), time.Duration(count)*5*time.Second)
	defer cancel()
	if err := n.host.Connect(ctx, peer.AddrInfo{ID: m.ID}); err != nil {
		return nil, withKind(ErrUnreachable, fmt.Errorf("ping %s: device unreachable: %w", m.Name, err))
	}
	out := make([]PingResult, 0, count)
	results := ping.Ping(ctx, n.host, m.ID)
	for i := 1; i <= count; i++ {
		res := PingResult{Seq: i}
		var d Device
		n.describePath(&d, m.ID)
		res.Connection, res.Transport, res.RemoteAddr = d.Connection, d.Transport, d.RemoteAddr
		select {
		case pr, ok := <-results:
			switch {
			case !ok:
				res.Error = strp("ping stream closed")
			case pr.Error != nil:
				res.Error = strp(pr.Error.Error())
			default:
				ms := float64(pr.RTT.Microseconds()) / 1000
				res.RTTMillis = &ms
			}
		case <-ctx.Done():
			res.Error = strp("timed out")
		}
		out = append(out, res)
		if res.Error != nil {
			break
		}
	}
	return out, nil
}

// CheckPing reports the failures Ping would find in who without pinging:
// ErrNoMesh, ErrNotFound, ErrInvalid (this device).
func (n *Node) CheckPing(who string) error {
	_, err := n.pingTarget(who)
	return err
}

func (n *Node) pingTarget(who string) (identity.Member, error) {
	l, err := n.meshLog()
	if err != nil {
		return identity.Member{}, err
	}
	m, err := findMember(l, who)
	if err != nil {
		return identity.Member{}, withKind(ErrNotFound, fmt.Errorf("ping %q: %w", who, err))
	}
	if m.ID == n.id {
		return identity.Member{}, withKind(ErrInvalid, fmt.Errorf("ping %q: that is this device", who))
	}
	return m, nil
}
