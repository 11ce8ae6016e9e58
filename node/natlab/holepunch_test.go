package natlab_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node/natlab"
)

// These tests run labpeer (internal/labpeer, real go-libp2p hosts) inside
// the lab: a circuit v2 relay on the internet and peers behind routers.

var labpeerBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if labpeerBuild.dir != "" {
		os.RemoveAll(labpeerBuild.dir)
	}
	os.Exit(code)
}

// labpeer builds the labpeer binary once per test process.
func labpeer(t *testing.T) string {
	t.Helper()
	b := &labpeerBuild
	b.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			b.err = fmt.Errorf("natlab: the go tool is not on PATH: %w", err)
			return
		}
		if b.dir, b.err = os.MkdirTemp("", "natlab-labpeer-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "labpeer")
		out, err := exec.Command(goTool, "build", "-o", b.path, "github.com/meshwork/meshwork/node/natlab/internal/labpeer").CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build labpeer: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// peerEvent is one JSON line from labpeer (see internal/labpeer/doc.go).
type peerEvent struct {
	Event     string   `json:"event"`
	T         int64    `json:"t_ms"`
	ID        string   `json:"id"`
	Addrs     []string `json:"addrs"`
	Holepunch *bool    `json:"holepunch"`
	Peer      string   `json:"peer"`
	Addr      string   `json:"addr"`
	Relayed   *bool    `json:"relayed"`
	Dir       string   `json:"dir"`
	AfterMS   *float64 `json:"after_ms"`
	Type      string   `json:"type"`
	Success   *bool    `json:"success"`
	MS        *float64 `json:"ms"`
	Bytes     int      `json:"bytes"`
	Err       string   `json:"err"`
}

// waitEvent reads p's events until match accepts one; it fails the test at
// ctx's deadline or when p exits.
func waitEvent(ctx context.Context, t *testing.T, p *natlab.Proc, what string, match func(e peerEvent) bool) peerEvent {
	t.Helper()
	var got peerEvent
	_, err := p.WaitLine(ctx, func(line string) bool {
		var e peerEvent
		if json.Unmarshal([]byte(line), &e) != nil {
			return false
		}
		if match(e) {
			got = e
			return true
		}
		return false
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return got
}

type labPeer struct {
	*natlab.Proc
	host *natlab.Host
	id   string
}

// startRelay runs a labpeer relay on h and returns its QUIC multiaddr.
func startRelay(ctx context.Context, t *testing.T, h *natlab.Host, args ...string) (*labPeer, string) {
	t.Helper()
	p := h.Start(t, labpeer(t), append([]string{"-mode", "relay"}, args...)...)
	e := waitEvent(ctx, t, p, "relay ready on "+h.Name(), func(e peerEvent) bool { return e.Event == "ready" })
	return &labPeer{Proc: p, host: h, id: e.ID}, fmt.Sprintf("/ip4/%s/udp/4001/quic-v1/p2p/%s", h.IP(), e.ID)
}

// startPeer runs a labpeer peer on h and waits until it is ready; with
// wantHP it also requires DCUtR to be registered.
func startPeer(ctx context.Context, t *testing.T, h *natlab.Host, wantHP bool, args ...string) *labPeer {
	t.Helper()
	p := h.Start(t, labpeer(t), append([]string{"-mode", "peer"}, args...)...)
	e := waitEvent(ctx, t, p, "peer ready on "+h.Name(), func(e peerEvent) bool { return e.Event == "ready" })
	if wantHP && (e.Holepunch == nil || !*e.Holepunch) {
		t.Fatalf("%s: DCUtR did not register (no public observed address) within -holepunch-wait", h.Name())
	}
	return &labPeer{Proc: p, host: h, id: e.ID}
}

func isConn(peerID string, relayed bool) func(peerEvent) bool {
	return func(e peerEvent) bool {
		return e.Event == "conn" && e.Peer == peerID && e.Relayed != nil && *e.Relayed == relayed
	}
}

// echo sends n bytes from p to its -connect target and returns the event.
func echo(ctx context.Context, t *testing.T, p *labPeer, n int) peerEvent {
	t.Helper()
	if _, err := fmt.Fprintf(p.Stdin(), "echo %d\n", n); err != nil {
		t.Fatalf("send echo command to %s: %v", p.host.Name(), err)
	}
	e := waitEvent(ctx, t, p.Proc, "echo result", func(e peerEvent) bool { return e.Event == "echo" })
	if e.Err != "" {
		t.Fatalf("echo %d bytes from %s: %s", n, p.host.Name(), e.Err)
	}
	return e
}

func relayBytes(t *testing.T, relay *natlab.Host) uint64 {
	t.Helper()
	rx, _, err := relay.RxTxBytes()
	if err != nil {
		t.Fatal(err)
	}
	return rx
}

// scenarioCtx builds labpeer first (minutes when the build cache is cold)
// and then starts the scenario's clock.
func scenarioCtx(t *testing.T, d time.Duration) context.Context {
	labpeer(t)
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

const echoBytes = 1 << 20

// TestConeToConeHolePunch: two devices behind different cone routers first
// connect through the relay, then DCUtR punches a direct connection, and
// traffic goes direct. The punch is offered on the transport that reached
// the relay, so QUIC and TCP are tried separately.
func TestConeToConeHolePunch(t *testing.T) {
	for _, tr := range []string{"quic", "tcp"} {
		t.Run(tr, func(t *testing.T) { testConeToCone(t, tr) })
	}
}

func testConeToCone(t *testing.T, transport string) {
	lab := natlab.New(t)
	lab.RaiseUDPBuffers(t)
	ctx := scenarioCtx(t, 90*time.Second)
	relayHost := lab.PublicHost("relay")
	a := lab.Router("home1", natlab.Cone).Host("a")
	b := lab.Router("home2", natlab.Cone).Host("b")

	relay, relayAddr := startRelay(ctx, t, relayHost)
	if transport == "tcp" {
		relayAddr = fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", relayHost.IP(), relay.id)
	}
	pb := startPeer(ctx, t, b, true, "-relay", relayAddr, "-transports", transport)
	pa := startPeer(ctx, t, a, true, "-relay", relayAddr, "-transports", transport, "-connect", pb.id)

	waitEvent(ctx, t, pa.Proc, "relayed connection a->b", isConn(pb.id, true))
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d := waitEvent(dctx, t, pa.Proc, "direct connection a->b", func(e peerEvent) bool { return e.Event == "direct" && e.Peer == pb.id })
	if !strings.Contains(d.Addr, "/ip4/"+b.PublicIP().String()+"/") {
		t.Errorf("direct connection to %s, want b's public address %s", d.Addr, b.PublicIP())
	}
	t.Logf("cone<->cone %s: relayed -> direct in %.1f ms (a's view), over %s", transport, *d.AfterMS, d.Addr)

	before := relayBytes(t, relayHost)
	e := echo(ctx, t, pa, echoBytes)
	crossed := relayBytes(t, relayHost) - before
	if *e.Relayed {
		t.Fatalf("echo went over %s, want the direct connection", e.Addr)
	}
	if crossed > echoBytes/8 {
		t.Errorf("%d bytes crossed the relay during a direct %d-byte echo", crossed, echoBytes)
	}
	t.Logf("cone<->cone %s: 1 MiB echo over %s in %.1f ms; relay received %d bytes meanwhile", transport, e.Addr, *e.MS, crossed)
}

// TestSymmetricStaysRelayed: hole punching between two symmetric NATs fails
// and traffic flows through the relay; then the relay restarts and the
// peers re-reserve and reconnect.
func TestSymmetricStaysRelayed(t *testing.T) {
	lab := natlab.New(t)
	lab.RaiseUDPBuffers(t)
	ctx := scenarioCtx(t, 120*time.Second)
	relayHost := lab.PublicHost("relay")
	a := lab.Router("home1", natlab.Symmetric).Host("a")
	b := lab.Router("home2", natlab.Symmetric).Host("b")

	key := filepath.Join(t.TempDir(), "relay.key")
	relay, relayAddr := startRelay(ctx, t, relayHost, "-key", key)
	// A short direct-dial timeout keeps the three failing DCUtR attempts short.
	pb := startPeer(ctx, t, b, true, "-relay", relayAddr, "-dial-timeout", "3s")
	pa := startPeer(ctx, t, a, true, "-relay", relayAddr, "-connect", pb.id, "-dial-timeout", "3s")

	waitEvent(ctx, t, pa.Proc, "relayed connection a->b", isConn(pb.id, true))
	// b got an inbound relayed connection, so b starts DCUtR; wait for it to give up.
	failures := 0
	waitEvent(ctx, t, pb.Proc, "DCUtR to give up", func(e peerEvent) bool {
		if e.Event == "direct" || (e.Event == "conn" && e.Relayed != nil && !*e.Relayed) {
			t.Fatalf("unexpected direct connection through symmetric NATs: %s", e.Addr)
		}
		if e.Event != "hp" || e.Peer != pa.id {
			return false
		}
		if e.Type == "ProtocolError" {
			t.Logf("DCUtR protocol error: %s", e.Err)
			return true
		}
		if e.Type == "EndHolePunch" && e.Success != nil && !*e.Success {
			failures++
		}
		return failures == 3
	})
	if lines := strings.Join(pa.Lines(), "\n"); strings.Contains(lines, `"event":"direct"`) {
		t.Fatalf("a reports a direct connection:\n%s", lines)
	}

	before := relayBytes(t, relayHost)
	e := echo(ctx, t, pa, echoBytes)
	crossed := relayBytes(t, relayHost) - before
	if !*e.Relayed {
		t.Fatalf("echo went over %s, want the relay", e.Addr)
	}
	if crossed < 2*echoBytes {
		t.Errorf("only %d bytes crossed the relay during a relayed %d-byte echo", crossed, echoBytes)
	}
	t.Logf("symmetric<->symmetric: 1 MiB echo through the relay in %.1f ms; relay received %d bytes", *e.MS, crossed)

	// The relay restarts (same identity and port): both peers re-reserve,
	// a redials b through the new relay and traffic flows again.
	if err := relay.Stop(); err != nil {
		t.Fatalf("stop relay: %v", err)
	}
	waitEvent(ctx, t, pa.Proc, "a to lose b", func(e peerEvent) bool { return e.Event == "disconn" && e.Peer == pb.id })
	restarted := time.Now()
	startRelay(ctx, t, relayHost, "-key", key)
	waitEvent(ctx, t, pb.Proc, "b to re-reserve", func(e peerEvent) bool { return e.Event == "reserved" })
	waitEvent(ctx, t, pa.Proc, "a to reconnect to b", isConn(pb.id, true))
	t.Logf("relay restart: b re-reserved and a reconnected %.1f s after the relay came back", time.Since(restarted).Seconds())
	if e := echo(ctx, t, pa, 64<<10); !*e.Relayed {
		t.Fatalf("echo after relay restart went over %s, want the relay", e.Addr)
	}
}

// TestSameLANmDNS: two devices behind one router find each other with mDNS
// and connect directly on the LAN, with no relay at all.
func TestSameLANmDNS(t *testing.T) {
	lab := natlab.New(t)
	lab.RaiseUDPBuffers(t)
	ctx := scenarioCtx(t, 60*time.Second)
	home := lab.Router("home", natlab.Cone)
	x, y := home.Host("x"), home.Host("y")

	px := startPeer(ctx, t, x, false, "-mdns", "-holepunch-wait", "0")
	py := startPeer(ctx, t, y, false, "-mdns", "-holepunch-wait", "0")
	e := waitEvent(ctx, t, px.Proc, "x connected to y", isConn(py.id, false))
	if !strings.Contains(e.Addr, "/ip4/"+y.IP().String()+"/") {
		t.Fatalf("x reached y at %s, want y's LAN address %s", e.Addr, y.IP())
	}
	t.Logf("same LAN: x <-> y over %s (%s)", e.Addr, e.Dir)
}

// TestConeToPublicDialBack: a public device dials a device behind a cone
// router through the relay; the NATed device dials back directly.
func TestConeToPublicDialBack(t *testing.T) {
	lab := natlab.New(t)
	lab.RaiseUDPBuffers(t)
	ctx := scenarioCtx(t, 60*time.Second)
	relayHost := lab.PublicHost("relay")
	server := lab.PublicHost("server")
	a := lab.Router("home", natlab.Cone).Host("a")

	_, relayAddr := startRelay(ctx, t, relayHost)
	pa := startPeer(ctx, t, a, true, "-relay", relayAddr)
	ps := startPeer(ctx, t, server, true, "-relay", relayAddr, "-connect", pa.id)

	waitEvent(ctx, t, ps.Proc, "relayed connection server->a", isConn(pa.id, true))
	dd := waitEvent(ctx, t, pa.Proc, "a's dial-back", func(e peerEvent) bool {
		return e.Event == "hp" && e.Type == "DirectDial" && e.Peer == ps.id
	})
	if !*dd.Success {
		t.Fatalf("a's direct dial back to the server failed: %s", dd.Err)
	}
	d := waitEvent(ctx, t, ps.Proc, "direct connection at the server", func(e peerEvent) bool { return e.Event == "direct" && e.Peer == pa.id })
	if !strings.Contains(d.Addr, "/ip4/"+a.PublicIP().String()+"/") {
		t.Errorf("server's direct connection is from %s, want a's router %s", d.Addr, a.PublicIP())
	}
	t.Logf("cone<->public: dial-back took %.1f ms; direct %.1f ms after the relayed connection, over %s", *dd.MS, *d.AfterMS, d.Addr)
	if e := echo(ctx, t, ps, echoBytes); *e.Relayed {
		t.Fatalf("echo went over %s, want the direct connection", e.Addr)
	}
}
