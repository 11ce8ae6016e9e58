package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"

	"github.com/dgraph-io/badger/v4"
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
// API:
//
//	POST   /v1/expose   {"name","addr","allow":[DEVICE...]} (names or IDs)
//	POST   /v1/unexpose {"name"}
//	GET    /v1/exposed  → [ExposedService]
//	POST   /v1/tunnels  {"device","service","local","follow"} → TunnelInfo;
//	       with follow, the answer is NDJSON: one TunnelInfo line, and the
//	       tunnel lives until the request ends
//	GET    /v1/tunnels  → [TunnelInfo]
//	DELETE /v1/tunnels/{id}

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

type tunnelSet struct {
	server  *tunnel.Server
	client  *tunnel.Client
	mu      sync.Mutex
	nextID  int
	forward map[int]*tunnel.Forward
}

func (n *Node) openTunnels() error {
	n.tun = &tunnelSet{forward: map[int]*tunnel.Forward{}}
	n.tun.server = tunnel.NewServer(n.host, blobAuth{n}, n.log.With("component", "tunnel"),
		tunnel.WithOnOpen(func(ev tunnel.Event) {
			path := "direct"
			if ev.Relayed {
				path = "relayed"
			}
			n.news("tunnel", ev.Peer, fmt.Sprintf("device %s opened a tunnel to service %q from %s (%s)", n.deviceName(ev.Peer), ev.Service, ev.Remote, path))
		}),
		tunnel.WithOnRefuse(func(ev tunnel.Event) {
			n.news("tunnel-refused", ev.Peer, fmt.Sprintf("refused a tunnel to service %q for %s: %s", ev.Service, ev.Peer, ev.Reason))
		}))
	n.tun.client = tunnel.NewClient(n.host, n.log.With("component", "tunnel"))
	return kv.Scan(n.db, prefixExposed, func(_, v []byte) error {
		var s ExposedService
		if err := json.Unmarshal(v, &s); err != nil {
			return nil
		}
		allow, err := parseIDs(s.Allow)
		if err != nil {
			return nil
		}
		if err := n.tun.server.Expose(s.Name, s.Addr, allow); err != nil {
			n.log.Warn("could not re-expose service", "name", s.Name, "err", err)
		}
		return nil
	})
}

func (n *Node) closeTunnels() error {
	if n.tun == nil {
		return nil
	}
	return errors.Join(n.tun.client.Close(), n.tun.server.Close())
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

func (a *apiServer) expose(w http.ResponseWriter, r *http.Request) {
	var req ExposedService
	if !readJSON(w, r, &req) {
		return
	}
	l := a.n.membership()
	if l == nil {
		writeErr(w, http.StatusConflict, errNoMesh)
		return
	}
	var allow []peer.ID
	var ids []string
	for _, who := range req.Allow {
		m, err := findMember(l, who)
		if err != nil {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("expose %q: allow %q: %w", req.Name, who, err))
			return
		}
		allow = append(allow, m.ID)
		ids = append(ids, m.ID.String())
	}
	if err := a.n.tun.server.Expose(req.Name, req.Addr, allow); err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	rec := ExposedService{Name: req.Name, Addr: req.Addr, Allow: ids}
	b, _ := json.Marshal(rec)
	if err := dbPut(a.n.db, append(append([]byte{}, prefixExposed...), req.Name...), b); err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (a *apiServer) unexpose(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if err := a.n.tun.server.Unexpose(req.Name); err != nil {
		writeErr(w, http.StatusNotFound, err)
		return
	}
	key := append(append([]byte{}, prefixExposed...), req.Name...)
	if err := a.n.db.Update(func(txn *badger.Txn) error { return txn.Delete(key) }); err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"name": req.Name})
}

func (a *apiServer) exposed(w http.ResponseWriter, _ *http.Request) {
	out := []ExposedService{}
	for _, s := range a.n.tun.server.Services() {
		e := ExposedService{Name: s.Name, Addr: s.Addr, Allow: []string{}}
		for _, p := range s.Allow {
			e.Allow = append(e.Allow, p.String())
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, out)
}

func (t *tunnelSet) info(id int, f *tunnel.Forward) TunnelInfo {
	return TunnelInfo{ID: id, Device: f.Device().String(), Service: f.Service(), LocalAddr: f.Addr().String(), Stats: f.Stats()}
}

func (a *apiServer) openTunnel(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Device  string `json:"device"`
		Service string `json:"service"`
		Local   string `json:"local"`
		Follow  bool   `json:"follow"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	l := a.n.membership()
	if l == nil {
		writeErr(w, http.StatusConflict, errNoMesh)
		return
	}
	m, err := findMember(l, req.Device)
	if err != nil {
		writeErr(w, http.StatusNotFound, fmt.Errorf("tunnel to %q: %w", req.Device, err))
		return
	}
	if req.Local == "" {
		req.Local = "127.0.0.1:0"
	}
	// A background tunnel outlives this request: it gets the daemon's
	// lifetime (the client closes every forward when the daemon stops).
	ctx := context.WithoutCancel(r.Context())
	f, err := a.n.tun.client.Listen(ctx, m.ID, req.Service, req.Local)
	if err != nil {
		writeErr(w, http.StatusBadGateway, err)
		return
	}
	t := a.n.tun
	t.mu.Lock()
	t.nextID++
	id := t.nextID
	t.forward[id] = f
	t.mu.Unlock()
	a.n.log.Info("tunnel open", "id", id, "device", m.Name, "service", req.Service, "local", f.Addr().String())
	if !req.Follow {
		writeJSON(w, http.StatusOK, t.info(id, f))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(t.info(id, f))
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	select {
	case <-r.Context().Done():
	case <-f.Done():
	}
	t.mu.Lock()
	delete(t.forward, id)
	t.mu.Unlock()
	_ = f.Close()
	a.n.log.Info("tunnel closed", "id", id)
}

func (a *apiServer) listTunnels(w http.ResponseWriter, _ *http.Request) {
	t := a.n.tun
	t.mu.Lock()
	out := []TunnelInfo{}
	for id, f := range t.forward {
		out = append(out, t.info(id, f))
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, out)
}

func (a *apiServer) closeTunnel(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("tunnel id %q: not a number", r.PathValue("id")))
		return
	}
	t := a.n.tun
	t.mu.Lock()
	f, ok := t.forward[id]
	delete(t.forward, id)
	t.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusNotFound, fmt.Errorf("no tunnel %d (see 'mesh tunnels')", id))
		return
	}
	_ = f.Close()
	writeJSON(w, http.StatusOK, map[string]int{"id": id})
}
