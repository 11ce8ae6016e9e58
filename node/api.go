package node

// The local control API: HTTP+JSON on the Unix socket SocketPath(home),
// mode 0600, so only the device's user can drive the daemon. Every answer
// is JSON; a failure has a 4xx/5xx status and the body {"error": "..."}.
//
//	GET  /v1/status            → Status
//	POST /v1/init    {"name"}  → {"mesh_id"}
//	POST /v1/invite  {"role", "ttl", "storage"}  (ttl as a Go duration, "24h";
//	                 storage: a code without the mesh content key, storage.go)
//	                           → {"code", "mesh_id", "role", "expires"}
//	POST /v1/join    {"code", "name"} → {"mesh_id"}
//	GET  /v1/devices           → [Device]  (see Device for the fields)
//	POST /v1/revoke  {"device"} (name or ID) → {"id", "name"}
//	GET  /v1/ping?device=NAME|ID&count=N → [PingResult] (N ≤ 100, default 3)
//	POST /v1/blobs/add, POST /v1/blobs/get — see blobs.go
//	expose, unexpose, exposed, tunnels — see tunnels.go
//	POST   /v1/folders {"path","name"}          share a directory as a new folder
//	POST   /v1/folders/join {"name","path"}     sync an existing folder here
//	POST   /v1/folders/share {"name","device","role"}  owner sets a device's role
//	GET    /v1/folders                          → [FolderInfo]
//	DELETE /v1/folders/{name}                   stop syncing it here (files stay)
//	GET    /v1/folders/{name}/wait?timeout=D    → WaitResult when this copy holds every change made on
//	                                            an online member before the call (insync.go)
//	GET    /v1/history?path=P → [HistoryEntry]; POST /v1/restore {"path","version"}
//	GET    /v1/storage → StorageStatus (storage_api.go); POST /v1/fetch, POST /v1/evict,
//	GET    /v1/folders/{name}/files (metadata mode and files, modes.go)
//	GET    /v1/news[?follow=1] → [NewsEntry] (follow: NDJSON, pushed as it happens)
//	GET  /debug/pprof/…        Go's profiler (net/http/pprof)
//
// The JSON field names are stable: new fields may be added, none renamed.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"rsc.io/qr"

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

type apiServer struct {
	n        *Node
	ln       net.Listener
	srv      *http.Server
	httpAddr string // the HTTP API's address, "" when off
	token    string // the HTTP API's token, "" when off
}

func (n *Node) listenAPI() (*apiServer, error) {
	path := SocketPath(n.cfg.Home)
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %q: another meshd is already running with this home", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket %q: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %q: %w", path, err)
	}
	a := &apiServer{n: n, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", a.status)
	mux.HandleFunc("POST /v1/init", a.init)
	mux.HandleFunc("POST /v1/invite", a.invite(false))
	mux.HandleFunc("POST /v1/join", a.join)
	mux.HandleFunc("GET /v1/devices", a.devices)
	mux.HandleFunc("POST /v1/revoke", a.revoke)
	mux.HandleFunc("GET /v1/ping", a.ping)
	mux.HandleFunc("POST /v1/blobs/add", a.blobAdd)
	mux.HandleFunc("POST /v1/blobs/get", a.blobGet)
	mux.HandleFunc("POST /v1/expose", a.expose)
	mux.HandleFunc("POST /v1/unexpose", a.unexpose)
	mux.HandleFunc("GET /v1/exposed", a.exposed)
	mux.HandleFunc("POST /v1/tunnels", a.openTunnel)
	mux.HandleFunc("GET /v1/tunnels", a.listTunnels)
	mux.HandleFunc("DELETE /v1/tunnels/{id}", a.closeTunnel)
	mux.HandleFunc("GET /v1/news", a.listNews)
	mux.HandleFunc("POST /v1/folders", a.folderAdd)
	mux.HandleFunc("POST /v1/folders/join", a.folderJoin)
	mux.HandleFunc("POST /v1/folders/share", a.folderShare)
	mux.HandleFunc("GET /v1/folders", a.folderList)
	mux.HandleFunc("DELETE /v1/folders/{name}", a.folderRemove)
	mux.HandleFunc("GET /v1/folders/{name}/wait", a.folderWait)
	mux.HandleFunc("GET /v1/history", a.history)
	mux.HandleFunc("POST /v1/restore", a.restore)
	mux.HandleFunc("GET /v1/web", a.webURL)
	a.registerAPIv1(mux)
	mux.HandleFunc("GET /v1/storage", a.storage) // storage_api.go
	a.registerModes(mux)                         // modes.go: fetch, evict, files
	// Profiling, for `make bench` and debugging; the socket is 0600.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No whole-request timeouts here: the local CLI's joins, pings, waits
	// and profiles may take long. Its own connection budget (connlimit.go).
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: headerTimeout, IdleTimeout: socketIdle}
	_, budget := connBudgets(fdLimit())
	ll := newLimitListener(ln, budget)
	ll.serve(a.srv)
	a.ln = ll
	return a, nil
}

// close releases the listener of a server that never served.
func (a *apiServer) close() {
	a.ln.Close()
	_ = os.Remove(SocketPath(a.n.cfg.Home))
}

// serve runs until ctx is done, then shuts the server down.
func (a *apiServer) serve(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.n.log.Error("control API stopped", "err", err)
		}
	}()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(sctx)
	wg.Wait()
	_ = os.Remove(SocketPath(a.n.cfg.Home))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("bad request body: %w", err))
		return false
	}
	return true
}

func strp(s string) *string { return &s }

func (a *apiServer) status(w http.ResponseWriter, _ *http.Request) {
	n := a.n
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
	if a.httpAddr != "" {
		st.HTTP = strp(a.httpAddr)
	}
	ts := n.blobSvc.Stats()
	st.Transfer = TransferStats{ChunksServed: ts.ChunksServed, BytesServed: ts.BytesServed,
		ChunksReceived: ts.ChunksReceived, BytesReceived: ts.BytesReceived, BadChunks: ts.BadChunks}
	if n.sync != nil {
		ss := n.sync.Stats()
		st.Sync = SyncStats{ItemsReceived: ss.ChangesReceived, ItemsRefused: ss.ItemsRefused, ItemsUnsendable: ss.ItemsUnsendable}
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *apiServer) init(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	id, err := a.n.Init(req.Name)
	if err != nil {
		writeErr(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"mesh_id": id.String()})
}

// invite is POST /v1/invite; withQR also gives the code as a QR code PNG
// (the HTTP API's /api/v1/invite, for the web desktop).
func (a *apiServer) invite(withQR bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { a.makeInvite(w, r, withQR) }
}

func (a *apiServer) makeInvite(w http.ResponseWriter, r *http.Request, withQR bool) {
	var req struct {
		Role    string `json:"role"`
		TTL     string `json:"ttl"`
		Storage bool   `json:"storage"` // for a storage peer: no mesh content key in the code
	}
	if !readJSON(w, r, &req) {
		return
	}
	if req.Role == "" {
		req.Role = string(identity.RoleMember)
	}
	role, err := identity.ParseRole(req.Role)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	ttl := 24 * time.Hour
	if req.TTL != "" {
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("ttl %q: want a positive duration such as 24h", req.TTL))
			return
		}
	}
	inv, err := a.n.NewInvite(role, ttl)
	if err != nil {
		writeErr(w, http.StatusConflict, err)
		return
	}
	out := InviteResponse{
		Code: a.n.inviteCode(inv.Code(), req.Storage), MeshID: inv.Grant.Mesh.String(), Role: string(inv.Grant.Role), Expires: inv.Grant.Expires.UTC(),
	}
	for _, r := range inv.Grant.Redeemers {
		out.Redeemer = a.n.deviceName(r)
	}
	if withQR {
		if c, err := qr.Encode(out.Code, qr.L); err == nil {
			c.Scale = 4
			out.QR = "data:image/png;base64," + base64.StdEncoding.EncodeToString(c.PNG())
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *apiServer) join(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code string `json:"code"`
		Name string `json:"name"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	id, err := a.n.Join(r.Context(), req.Code, req.Name)
	if err != nil {
		writeErr(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"mesh_id": id.String()})
}

func (a *apiServer) revoke(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Device string `json:"device"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	m, err := a.n.Revoke(req.Device)
	if err != nil {
		writeErr(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": m.ID.String(), "name": m.Name})
}

func (a *apiServer) devices(w http.ResponseWriter, r *http.Request) {
	if a.n.membership() == nil {
		writeErr(w, http.StatusConflict, errNoMesh)
		return
	}
	writeJSON(w, http.StatusOK, a.n.deviceList(r.Context(), true))
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
			out[i].LastSeen = &n.started
			continue
		}
		// Online: since it connected; offline: when it went away.
		if t, ok := n.seen(m.ID); ok {
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

func (a *apiServer) ping(w http.ResponseWriter, r *http.Request) {
	l := a.n.membership()
	if l == nil {
		writeErr(w, http.StatusConflict, errNoMesh)
		return
	}
	who := r.URL.Query().Get("device")
	m, err := findMember(l, who)
	if err != nil {
		writeErr(w, http.StatusNotFound, fmt.Errorf("ping %q: %w", who, err))
		return
	}
	if m.ID == a.n.id {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("ping %q: that is this device", who))
		return
	}
	count := 3
	if c := r.URL.Query().Get("count"); c != "" {
		if _, err := fmt.Sscan(c, &count); err != nil || count < 1 || count > 100 {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("count %q: want 1 to 100", c))
			return
		}
	}
	ctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(r.Context(), "ping"), time.Duration(count)*5*time.Second)
	defer cancel()
	if err := a.n.host.Connect(ctx, peer.AddrInfo{ID: m.ID}); err != nil {
		writeErr(w, http.StatusBadGateway, fmt.Errorf("ping %s: device unreachable: %w", m.Name, err))
		return
	}
	out := make([]PingResult, 0, count)
	results := ping.Ping(ctx, a.n.host, m.ID)
	for i := 1; i <= count; i++ {
		res := PingResult{Seq: i}
		var d Device
		a.n.describePath(&d, m.ID)
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
	writeJSON(w, http.StatusOK, out)
}
