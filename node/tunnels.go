package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/node/internal/kv"
	"github.com/meshwork/meshwork/node/tunnel"
)

// Tunnels in the daemon. Exposed services are persisted in badger
// (node/exposed/NAME → JSON) and re-exposed at start; nothing is exposed by
// default. The tunnel server asks IsMember on every stream (revoked devices
// are not members), and a revocation also cuts the revoked device's open
// tunnel connections (DisconnectPeer in the push loop). Client-side
// forwards are owned by the daemon: "background" ones until closed, the
// CLI's foreground ones as long as its request stays open.
//
// The routes (POST /v1/expose, /v1/unexpose, GET /v1/exposed, /v1/tunnels
// and the HTTP API's /api/v1/services) are in node/localapi.

var prefixExposed = []byte("node/exposed/")

// ExposedService is one element of GET /v1/exposed.
type ExposedService struct {
	Name  string   `json:"name"`
	Addr  string   `json:"addr"`
	Allow []string `json:"allow"` // device IDs; empty means every member
}

// TunnelInfo describes a client-side tunnel.
type TunnelInfo struct {
	ID        int                 `json:"id"`
	Device    string              `json:"device"`
	Service   string              `json:"service"`
	LocalAddr string              `json:"local_addr"`
	Stats     tunnel.ForwardStats `json:"stats"`
}

// tunnelSet is the tunnels part: the tunnel server (the services this
// device exposes), the client and the open client-side forwards, by ID.
// It owns its state and lock; nothing outside its methods touches its
// fields. Node wires it (openTunnels: the server's auth and news) and
// keeps the exposed services' records in the store (Expose, Unexpose).
type tunnelSet struct {
	server *tunnel.Server
	client *tunnel.Client

	mu      sync.Mutex // a leaf: guards nextID and forward
	nextID  int
	forward map[int]*tunnel.Forward
}

func newTunnelSet(srv *tunnel.Server, cl *tunnel.Client) *tunnelSet {
	return &tunnelSet{server: srv, client: cl, forward: map[int]*tunnel.Forward{}}
}

// openTunnels builds the tunnels part, its server reporting to the news,
// and re-exposes the services kept in the store.
func (n *Node) openTunnels() error {
	srv := tunnel.NewServer(n.host, blobAuth{n}, n.log.With("component", "tunnel"),
		tunnel.WithOnOpen(func(ev tunnel.Event) {
			path := "direct"
			if ev.Relayed {
				path = "relayed"
			}
			n.objs.news("tunnel", ev.Peer, fmt.Sprintf("device %s opened a tunnel to service %q from %s (%s)", n.deviceName(ev.Peer), ev.Service, ev.Remote, path))
		}),
		tunnel.WithOnRefuse(func(ev tunnel.Event) {
			n.objs.news("tunnel-refused", ev.Peer, fmt.Sprintf("refused a tunnel to service %q for %s: %s", ev.Service, ev.Peer, ev.Reason))
		}))
	n.tun = newTunnelSet(srv, tunnel.NewClient(n.host, n.log.With("component", "tunnel")))
	return kv.Scan(n.db, prefixExposed, func(_, v []byte) error {
		var s ExposedService
		if err := json.Unmarshal(v, &s); err != nil {
			return nil
		}
		allow, err := parseIDs(s.Allow)
		if err != nil {
			return nil
		}
		if err := n.tun.expose(s.Name, s.Addr, allow); err != nil {
			n.log.Warn("could not re-expose service", "name", s.Name, "err", err)
		}
		return nil
	})
}

func (n *Node) closeTunnels() error { return n.tun.close() }

// close stops the server and closes every forward; a nil set (New failed
// before it was built) has nothing to close.
func (t *tunnelSet) close() error {
	if t == nil {
		return nil
	}
	return errors.Join(t.client.Close(), t.server.Close())
}

// disconnect cuts p's open tunnel connections to this device's services
// (p was revoked); a nil set has none.
func (t *tunnelSet) disconnect(p peer.ID) {
	if t != nil {
		t.server.DisconnectPeer(p)
	}
}

// expose offers the local service addr as name to the devices allow
// (none: every member).
func (t *tunnelSet) expose(name, addr string, allow []peer.ID) error {
	return t.server.Expose(name, addr, allow)
}

// unexpose stops offering name.
func (t *tunnelSet) unexpose(name string) error { return t.server.Unexpose(name) }

// services lists the exposed services.
func (t *tunnelSet) services() []ExposedService {
	out := []ExposedService{}
	for _, s := range t.server.Services() {
		e := ExposedService{Name: s.Name, Addr: s.Addr, Allow: []string{}}
		for _, p := range s.Allow {
			e.Allow = append(e.Allow, p.String())
		}
		out = append(out, e)
	}
	return out
}

// open listens on local and forwards each connection to service on
// device, under the next ID. The forward outlives the request that opened
// it (ctx's values are kept, its cancel is not): it gets the daemon's
// lifetime, the client closes every forward when the daemon stops.
func (t *tunnelSet) open(ctx context.Context, device peer.ID, service, local string) (TunnelInfo, <-chan struct{}, error) {
	f, err := t.client.Listen(context.WithoutCancel(ctx), device, service, local)
	if err != nil {
		return TunnelInfo{}, nil, err
	}
	t.mu.Lock()
	t.nextID++
	id := t.nextID
	t.forward[id] = f
	t.mu.Unlock()
	return forwardInfo(id, f), f.Done(), nil
}

// list returns the open forwards by ID.
func (t *tunnelSet) list() []TunnelInfo {
	t.mu.Lock()
	out := []TunnelInfo{}
	for id, f := range t.forward {
		out = append(out, forwardInfo(id, f))
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// closeForward closes the forward id; false when there is none.
func (t *tunnelSet) closeForward(id int) bool {
	t.mu.Lock()
	f, ok := t.forward[id]
	delete(t.forward, id)
	t.mu.Unlock()
	if ok {
		_ = f.Close()
	}
	return ok
}

func forwardInfo(id int, f *tunnel.Forward) TunnelInfo {
	return TunnelInfo{ID: id, Device: f.Device().String(), Service: f.Service(), LocalAddr: f.Addr().String(), Stats: f.Stats()}
}

func parseIDs(ss []string) ([]peer.ID, error) {
	var out []peer.ID
	for _, s := range ss {
		id, err := peer.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("device ID %q: %w", s, err)
		}
		out = append(out, id)
	}
	return out, nil
}

func (n *Node) deviceName(p peer.ID) string {
	if l := n.membership(); l != nil {
		if m, ok := l.Lookup(p); ok {
			return m.Name
		}
	}
	return p.ShortString()
}

// Expose offers the local service addr to the mesh as name, to the
// devices allow (names or IDs; none: every member), and keeps it across
// restarts. Its failures: ErrNoMesh; ErrInvalid (a device, the name or the
// address).
func (n *Node) Expose(name, addr string, allow []string) (ExposedService, error) {
	l, err := n.meshLog()
	if err != nil {
		return ExposedService{}, err
	}
	var ids []peer.ID
	var idStrs []string
	for _, who := range allow {
		m, err := findMember(l, who)
		if err != nil {
			return ExposedService{}, withKind(ErrInvalid, fmt.Errorf("expose %q: allow %q: %w", name, who, err))
		}
		ids = append(ids, m.ID)
		idStrs = append(idStrs, m.ID.String())
	}
	if err := n.tun.expose(name, addr, ids); err != nil {
		return ExposedService{}, withKind(ErrInvalid, err)
	}
	rec := ExposedService{Name: name, Addr: addr, Allow: idStrs}
	b, _ := json.Marshal(rec)
	if err := dbPut(n.db, append(append([]byte{}, prefixExposed...), name...), b); err != nil {
		return ExposedService{}, err
	}
	return rec, nil
}

// Unexpose stops offering the service name; ErrNotFound when it is not
// exposed.
func (n *Node) Unexpose(name string) error {
	if err := n.tun.unexpose(name); err != nil {
		return withKind(ErrNotFound, err)
	}
	return dbDelete(n.db, append(append([]byte{}, prefixExposed...), name...))
}

// Exposed lists the services this device exposes.
func (n *Node) Exposed() []ExposedService { return n.tun.services() }

// OpenTunnel listens on local (default 127.0.0.1:0) and forwards each
// connection to service on device (name or ID). The tunnel lives until
// CloseTunnel or the node stops; done is closed when it ends by itself.
// Its failures: ErrNoMesh; ErrNotFound (device); ErrUnreachable.
func (n *Node) OpenTunnel(ctx context.Context, device, service, local string) (_ TunnelInfo, done <-chan struct{}, _ error) {
	l, err := n.meshLog()
	if err != nil {
		return TunnelInfo{}, nil, err
	}
	m, err := findMember(l, device)
	if err != nil {
		return TunnelInfo{}, nil, withKind(ErrNotFound, fmt.Errorf("tunnel to %q: %w", device, err))
	}
	if local == "" {
		local = "127.0.0.1:0"
	}
	ti, done, err := n.tun.open(ctx, m.ID, service, local)
	if err != nil {
		return TunnelInfo{}, nil, withKind(ErrUnreachable, err)
	}
	n.log.Info("tunnel open", "id", ti.ID, "device", m.Name, "service", service, "local", ti.LocalAddr)
	return ti, done, nil
}

// Tunnels lists the open client-side tunnels by ID.
func (n *Node) Tunnels() []TunnelInfo { return n.tun.list() }

// CloseTunnel closes the tunnel id; ErrNotFound when there is none.
func (n *Node) CloseTunnel(id int) error {
	if !n.tun.closeForward(id) {
		return withKind(ErrNotFound, fmt.Errorf("no tunnel %d (see 'mesh tunnels')", id))
	}
	return nil
}
