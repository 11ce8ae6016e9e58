package meshtest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshwork/meshwork/node"
)

// Device is one node of a Mesh, with its home and its log. Its methods
// fail the test on error and must be called from the test's goroutine.
type Device struct {
	Name string
	Home string
	m    *Mesh
	cfg  node.Config

	logf   *os.File
	logger *slog.Logger

	n      *node.Node // nil while stopped
	id     peer.ID
	cancel context.CancelFunc
	done   chan error // Run's result
}

// newDevice prepares a device (role "" or node.RoleStorage); the mesh's
// cleanup stops it.
func (m *Mesh) newDevice(name, role string) *Device {
	t := m.t
	t.Helper()
	home := filepath.Join(m.root, name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatalf("meshtest: home of %s: %v", name, err)
	}
	logf, err := os.Create(filepath.Join(home, "meshd.log"))
	if err != nil {
		t.Fatalf("meshtest: log of %s: %v", name, err)
	}
	d := &Device{
		Name: name,
		Home: home,
		m:    m,
		cfg: node.Config{
			Home:        home,
			ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
			NoMDNS:      true,
			HTTPAddr:    "off",
			Role:        role,
		},
		logf:   logf,
		logger: slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: m.opts.level})),
	}
	if m.relayAt != "" {
		d.cfg.Relays = []string{m.relayAt}
	}
	m.all = append(m.all, d)
	return d
}

// logTail is the tail of d's log, for a failed test.
func (d *Device) logTail() string {
	b, _ := os.ReadFile(d.logf.Name())
	return tail(string(b), 150)
}

// Start opens the device's node (node.New) and runs it until Stop or the
// end of the test, returning once it serves (node.Node.Ready). A device
// restarted after Stop listens on the ports it had, as a meshd restarted
// with fixed --listen addresses does.
func (d *Device) Start() {
	t := d.m.t
	t.Helper()
	if d.n != nil {
		t.Fatalf("meshtest: start %s: already running", d.Name)
	}
	n, err := node.New(d.cfg, d.logger)
	if err != nil {
		t.Fatalf("meshtest: start %s: %v", d.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }() // owned by d: Stop waits for it
	bound := time.NewTimer(d.m.opts.wait)
	defer bound.Stop()
	select {
	case <-n.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("meshtest: start %s: Run returned before serving: %v", d.Name, err)
	case <-bound.C:
		cancel()
		<-done // bounded by node.ShutdownBudget
		t.Fatalf("meshtest: start %s: not serving after %s", d.Name, d.m.opts.wait)
	}
	d.n, d.id, d.cancel, d.done = n, n.ID(), cancel, done
	d.cfg.ListenAddrs = listenAddrs(n)
}

// listenAddrs are the addresses n listens on, for a restart on the same
// ports.
func listenAddrs(n *node.Node) []string {
	var out []string
	for _, a := range n.Host().Network().ListenAddresses() {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			continue
		}
		out = append(out, a.String())
	}
	return out
}

// Stop cancels the device's Run and waits for it to return: Run itself
// gives up after node.ShutdownBudget, and an overrun fails the test. It
// does nothing when the device is not running.
func (d *Device) Stop() {
	d.m.t.Helper()
	if d.n != nil {
		d.cancel()
		d.wait()
	}
}

// wait waits for Run to return after d.cancel.
func (d *Device) wait() {
	t := d.m.t
	t.Helper()
	bound := node.ShutdownBudget + 5*time.Second
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("meshtest: stop %s: %v", d.Name, err)
		}
	case <-time.After(bound):
		t.Errorf("meshtest: stop %s: Run did not return within %s of its cancellation", d.Name, bound)
	}
	d.n, d.cancel, d.done = nil, nil, nil
}

// Running reports whether the device has been started and not stopped.
func (d *Device) Running() bool { return d.n != nil }

// Node is the device's running node; the test fails if it is stopped.
func (d *Device) Node() *node.Node {
	d.m.t.Helper()
	if d.n == nil {
		d.m.t.Fatalf("meshtest: %s is not running", d.Name)
	}
	return d.n
}

// ID is the device's ID (kept while it is stopped).
func (d *Device) ID() peer.ID { return d.id }

// ConnectedTo reports whether d holds a connection to o, direct or
// through a relay (what the device list counts as online).
func (d *Device) ConnectedTo(o *Device) bool {
	return d.n != nil && len(d.n.Host().Network().ConnsToPeer(o.id)) > 0
}

// Devices is d's device list (as 'mesh devices' shows it).
func (d *Device) Devices() []node.Device {
	d.m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d.m.opts.wait)
	defer cancel()
	devs, err := d.Node().Devices(ctx)
	if err != nil {
		d.m.t.Fatalf("meshtest: devices of %s: %v", d.Name, err)
	}
	return devs
}

// Online reports whether d lists o online in its device list.
func (d *Device) Online(o *Device) bool {
	d.m.t.Helper()
	for _, dev := range d.Devices() {
		if dev.ID == o.id.String() {
			return dev.Online
		}
	}
	return false
}
