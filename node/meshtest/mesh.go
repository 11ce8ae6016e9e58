package meshtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/relay"
)

// DefaultWait bounds WaitFor and the helpers that wait for the mesh
// (joins, folder waits). It is a bound against hangs, not an expected
// duration: on a quiet machine a three-device mesh forms in well under a
// second.
const DefaultWait = 45 * time.Second

// Mesh is an in-process mesh of devices, built by New.
type Mesh struct {
	t         testing.TB
	opts      options
	root      string // every home and folder directory lives under it
	devices   []*Device
	storage   *Device
	all       []*Device // devices and storage peer, in the order made
	relay     *relay.Server
	relayAt   string // the relay's multiaddr with /p2p/ID, "" without one
	relayLog  *os.File
	stopRelay func()
	meshID    identity.MeshID
}

// Option changes what New builds.
type Option func(*options)

type options struct {
	relay   bool
	storage bool
	level   slog.Level
	wait    time.Duration
}

// WithRelay adds an in-process relay that admits only this mesh's members
// (relay.Config.AllowMeshes): every node is started with it as its relay,
// so each holds a reservation and the relay serves the mesh's DHT.
func WithRelay() Option { return func(o *options) { o.relay = true } }

// WithStorage adds a storage peer (node.RoleStorage) named "storage",
// joined last with an invite code without the mesh content key, as 'mesh
// invite --storage' makes. Mesh.Storage returns it.
func WithStorage() Option { return func(o *options) { o.storage = true } }

// WithLogLevel sets the level of the nodes' logs (default debug). The logs
// are written to each home's meshd.log and printed when the test fails.
func WithLogLevel(l slog.Level) Option { return func(o *options) { o.level = l } }

// WithWait sets the bound of WaitFor and of the helpers that wait (default
// DefaultWait).
func WithWait(d time.Duration) Option { return func(o *options) { o.wait = d } }

// New starts n devices (n ≥ 1) named d0, d1, ...: d0 creates the mesh and
// every other device joins it with an invite code from d0. New returns once
// every device, and the storage peer if asked for, is connected to every
// other member. It fails the test if any step fails.
func New(t testing.TB, n int, opts ...Option) *Mesh {
	t.Helper()
	if n < 1 {
		t.Fatalf("meshtest.New: %d devices: want at least 1", n)
	}
	m := &Mesh{t: t, opts: options{level: slog.LevelDebug, wait: DefaultWait}}
	for _, o := range opts {
		o(&m.opts)
	}
	// A short root, not t.TempDir's long names: a home may hold a control
	// socket, whose path must fit in a sockaddr_un (108 bytes).
	root, err := os.MkdirTemp("", "meshtest-")
	if err != nil {
		t.Fatalf("meshtest.New: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(root) }) // runs after m.close
	m.root = root
	t.Cleanup(m.close)
	for i := range n {
		m.devices = append(m.devices, m.newDevice(fmt.Sprintf("d%d", i), ""))
	}
	if m.opts.relay {
		m.meshID = m.initOffline(m.devices[0])
		m.startRelay()
	}
	for _, d := range m.devices {
		d.Start()
	}
	if !m.opts.relay {
		if m.meshID, err = m.devices[0].Node().Init(m.devices[0].Name); err != nil {
			t.Fatalf("meshtest.New: init on d0: %v", err)
		}
	}
	for _, d := range m.devices[1:] {
		m.join(d, false)
	}
	if m.opts.storage {
		m.storage = m.newDevice("storage", node.RoleStorage)
		m.storage.Start()
		m.join(m.storage, true)
	}
	m.WaitFor("every member connected to every other", m.Connected)
	return m
}

// initOffline creates the mesh on d before it runs (so that its ID is known
// to start the relay with), as 'mesh init' would on a running node.
func (m *Mesh) initOffline(d *Device) identity.MeshID {
	m.t.Helper()
	n, err := node.New(d.cfg, d.logger)
	if err != nil {
		m.t.Fatalf("meshtest.New: open %s: %v", d.Name, err)
	}
	id, err := n.Init(d.Name)
	if cerr := n.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		m.t.Fatalf("meshtest.New: init on %s: %v", d.Name, err)
	}
	return id
}

// startRelay starts an in-process relay on loopback TCP admitting this
// mesh, and gives every device its address.
func (m *Mesh) startRelay() {
	t := m.t
	t.Helper()
	dir := filepath.Join(m.root, "relay")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("meshtest: relay state: %v", err)
	}
	key, _, err := identity.LoadOrCreateKey(filepath.Join(dir, "relay.key"))
	if err != nil {
		t.Fatalf("meshtest: relay key: %v", err)
	}
	if m.relayLog, err = os.Create(filepath.Join(dir, "relay.log")); err != nil {
		t.Fatalf("meshtest: relay log: %v", err)
	}
	srv, err := relay.New(relay.Config{
		Key:            key,
		ListenAddrs:    []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
		AllowMeshes:    []identity.MeshID{m.meshID},
		ResourceMemory: 1 << 30,
		ResourceFDs:    1024,
	}, slog.New(slog.NewTextHandler(m.relayLog, &slog.HandlerOptions{Level: m.opts.level})))
	if err != nil {
		t.Fatalf("meshtest: start relay: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }() // owned by m: close waits for it
	m.stopRelay = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("meshtest: relay stopped: %v", err)
			}
		case <-time.After(node.ShutdownBudget):
			t.Errorf("meshtest: the relay did not stop within %s", node.ShutdownBudget)
		}
	}
	m.relay = srv
	m.relayAt = srv.Addrs()[0].String() + "/p2p/" + srv.ID().String()
	for _, d := range m.devices {
		d.cfg.Relays = []string{m.relayAt}
	}
}

// close stops every node (all at once) and then the relay, and prints the
// tail of each log if the test failed.
func (m *Mesh) close() {
	t := m.t
	for _, d := range m.all {
		if d.n != nil {
			d.cancel()
		}
	}
	for _, d := range m.all {
		if d.n != nil {
			d.wait()
		}
	}
	if m.stopRelay != nil {
		m.stopRelay()
	}
	for _, d := range m.all {
		d.logf.Close()
		if t.Failed() {
			t.Logf("---- meshtest: log of %s (%s) ----\n%s", d.Name, d.id, d.logTail())
		}
	}
	if m.relayLog != nil {
		m.relayLog.Close()
		if t.Failed() {
			b, _ := os.ReadFile(m.relayLog.Name())
			t.Logf("---- meshtest: log of the relay ----\n%s", tail(string(b), 60))
		}
	}
}

// join makes d a member with an invite code from d0 (a storage code
// without the mesh content key when storage is set).
func (m *Mesh) join(d *Device, storage bool) {
	m.t.Helper()
	inv, err := m.devices[0].Node().Invite(identity.RoleMember, time.Hour, storage)
	if err != nil {
		m.t.Fatalf("meshtest: invite for %s on d0: %v", d.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.wait)
	defer cancel()
	if _, err := d.Node().Join(ctx, inv.Code, d.Name); err != nil {
		m.t.Fatalf("meshtest: %s joins with a code from d0: %v", d.Name, err)
	}
}

// Devices returns the devices d0, d1, ... (not the storage peer).
func (m *Mesh) Devices() []*Device { return m.devices }

// Device returns device i.
func (m *Mesh) Device(i int) *Device { return m.devices[i] }

// IDs returns the devices' IDs, in the order of Devices.
func (m *Mesh) IDs() []peer.ID {
	out := make([]peer.ID, len(m.devices))
	for i, d := range m.devices {
		out[i] = d.ID()
	}
	return out
}

// Storage returns the storage peer, or nil without WithStorage.
func (m *Mesh) Storage() *Device { return m.storage }

// Relay returns the relay, or nil without WithRelay.
func (m *Mesh) Relay() *relay.Server { return m.relay }

// RelayAddr is the relay's multiaddr with /p2p/ID, "" without WithRelay.
func (m *Mesh) RelayAddr() string { return m.relayAt }

// MeshID is the mesh's ID.
func (m *Mesh) MeshID() identity.MeshID { return m.meshID }

// Members returns the devices and the storage peer, if any.
func (m *Mesh) Members() []*Device {
	out := append([]*Device{}, m.devices...)
	if m.storage != nil {
		out = append(out, m.storage)
	}
	return out
}

// Connected reports whether every running member counts every other
// running one as a member and holds a connection to it. Devices stopped
// with Stop are left out, and so are those the first running device does
// not count as members (revoked ones).
func (m *Mesh) Connected() bool {
	var up []*Device
	for _, d := range m.Members() {
		if d.Running() && (len(up) == 0 || up[0].Node().IsMember(d.ID())) {
			up = append(up, d)
		}
	}
	for _, a := range up {
		for _, b := range up {
			if a != b && (!a.Node().IsMember(b.ID()) || !a.ConnectedTo(b)) {
				return false
			}
		}
	}
	return true
}

// WaitFor polls cond until it holds, failing the test (naming what) if it
// does not within the mesh's bound (DefaultWait, or WithWait). It must be
// called from the test's goroutine.
func (m *Mesh) WaitFor(what string, cond func() bool) {
	m.t.Helper()
	WaitFor(m.t, m.opts.wait, what, cond)
}

// WaitFor polls cond every 20 ms until it holds, failing t (naming what)
// if it does not within bound.
func WaitFor(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("meshtest: timed out after %s waiting for %s", bound, what)
		}
		<-tick.C
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
