package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/node/natlab"
)

// Helpers for the NAT-lab tests: meshd and meshrelay processes started
// inside lab namespaces (natlab.Host.Command), driven from the test process
// through the daemon's Unix control socket, which lives in its home on the
// shared filesystem. The test process never opens a socket to a lab
// address itself; what must happen on the lab network runs in Host.Do.

// labPort is the fixed port every lab daemon and the relay listen on (TCP
// and QUIC): MASQUERADE keeps it, which makes observed addresses punchable.
const labPort = 4001

// labListen is the --listen flags for TCP and QUIC on port.
func labListen(port int) []string {
	return []string{
		"--listen", fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", port),
		"--listen", fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", port),
	}
}

// labProc is one process started inside a lab host, with its output in a
// log file.
type labProc struct {
	t      *testing.T
	what   string
	log    string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan struct{}
}

// startLabProc runs bin inside h with its stdout and stderr going to
// logPath, and stops it (SIGTERM, SIGKILL after natlab.StopGrace) at
// cleanup at the latest.
func startLabProc(t *testing.T, h *natlab.Host, what, logPath, bin string, args ...string) *labProc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &labProc{t: t, what: what, log: logPath, cancel: cancel, done: make(chan struct{})}
	p.cmd = h.Command(ctx, bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// go-libp2p's own logs: the hole-punch service's debug lines tell
	// when it is ready (waitHolePunchReady). NATLAB_GOLOG_LOG_LEVEL
	// replaces the setting for debugging a scenario, e.g.
	// "error,p2p-holepunch=debug,p2p-circuit=debug".
	lvl := "error,p2p-holepunch=debug"
	if v := os.Getenv("NATLAB_GOLOG_LOG_LEVEL"); v != "" {
		lvl = v
	}
	p.cmd.Env = append(os.Environ(), "GOLOG_LOG_LEVEL="+lvl)
	if err := p.cmd.Start(); err != nil {
		cancel()
		logf.Close()
		t.Fatalf("start %s: %v", what, err)
	}
	go func() { _ = p.cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

// stop sends SIGTERM and waits; it is safe to call more than once. When
// the test failed, it logs the tail of the process's log.
func (p *labProc) stop() {
	p.cancel()
	select {
	case <-p.done:
	case <-time.After(natlab.StopGrace + 5*time.Second):
		p.t.Errorf("%s did not exit", p.what)
		return
	}
	if p.t.Failed() && p.cmd != nil {
		b, _ := os.ReadFile(p.log)
		p.t.Logf("---- %s log (tail) ----\n%s", p.what, tail(string(b), 80))
		p.cmd = nil // log once
	}
}

// exited reports whether the process has ended.
func (p *labProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// labDaemon is meshd running inside a lab host. The embedded daemon gives
// the CLI helpers (mesh, status, devices, invite), which only use its home.
type labDaemon struct {
	*daemon
	host    *natlab.Host
	port    int      // TCP and QUIC listen port
	extra   []string // more meshd flags
	proc    *labProc
	logFrom int64 // size of meshd.log when the current process started
}

// startLabDaemon runs meshd inside h on the fixed lab ports with debug
// logging into HOME/meshd.log, and waits for its control API. extra holds
// more flags (--relay, --no-mdns).
func startLabDaemon(t *testing.T, h *natlab.Host, name string, extra ...string) *labDaemon {
	t.Helper()
	home, err := os.MkdirTemp("", "mwl-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	d := &labDaemon{daemon: &daemon{t: t, name: name, home: home}, host: h, port: labPort, extra: extra}
	d.restart()
	return d
}

// restart starts meshd (again) with the same home, d.port and d.extra.
func (d *labDaemon) restart() {
	t := d.t.(*testing.T)
	t.Helper()
	if d.proc != nil && !d.proc.exited() {
		t.Fatalf("meshd %s is still running", d.name)
	}
	args := append([]string{"--home", d.home, "--log-level", "debug"}, labListen(d.port)...)
	d.logFrom = 0
	if fi, err := os.Stat(filepath.Join(d.home, "meshd.log")); err == nil {
		d.logFrom = fi.Size()
	}
	d.proc = startLabProc(t, d.host, "meshd "+d.name, filepath.Join(d.home, "meshd.log"),
		filepath.Join(binDir, "meshd"), append(args, d.extra...)...)
	waitFor(t, 20*time.Second, "meshd "+d.name+" control API", func() bool {
		if d.proc.exited() {
			t.Fatalf("meshd %s exited at start", d.name)
		}
		_, _, err := d.run("status", "--json")
		return err == nil
	})
}

// currentLog is what the current meshd process has logged so far.
func (d *labDaemon) currentLog() string {
	b, _ := os.ReadFile(filepath.Join(d.home, "meshd.log"))
	if int64(len(b)) < d.logFrom {
		return ""
	}
	return string(b[d.logFrom:])
}

// holePunchReadyLine is what go-libp2p's hole-punch service logs (at debug
// level, logger p2p-holepunch) when it registers /libp2p/dcutr, which it
// does only once the host knows a public address of its own.
const holePunchReadyLine = `msg="Host now has a public address" logger=p2p-holepunch`

// waitHolePunchReady waits until d's hole-punch service has registered
// /libp2p/dcutr. A relayed connection that arrives earlier is not punched
// at once: the other side's first DCUtR attempt gets "protocols not
// supported: [/libp2p/dcutr]" (meshd retries it, node/punch.go, seconds
// later).
func (d *labDaemon) waitHolePunchReady(within time.Duration) {
	d.t.Helper()
	waitFor(d.t, within, d.name+"'s hole-punch service (/libp2p/dcutr registered)", func() bool {
		return strings.Contains(d.currentLog(), holePunchReadyLine)
	})
}

var logTS = regexp.MustCompile(`\bts=(\S+)`)

// punchTiming reads d's go-libp2p hole-punch log: when d got a relayed
// connection from peer (identified; DCUtR starts there) and when the punch
// succeeded. ok is false unless both lines are there.
func (d *labDaemon) punchTiming(peer string) (relayed, direct time.Time, ok bool) {
	for _, line := range strings.Split(d.currentLog(), "\n") {
		if !strings.Contains(line, "logger=p2p-holepunch") || !strings.Contains(line, peer) {
			continue
		}
		m := logTS.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(line, `msg="got inbound proxy conn"`) && relayed.IsZero():
			relayed = ts
		case strings.Contains(line, `msg="hole punching with successful"`) && direct.IsZero():
			direct = ts
		}
	}
	return relayed, direct, !relayed.IsZero() && !direct.IsZero()
}

// holePunchFailed reports whether d's go-libp2p log says that the hole
// punch to peer (after a relayed connection from it) failed for good.
func (d *labDaemon) holePunchFailed(peer string) bool {
	return d.logHas(`msg="attempt to perform DirectConnect failed"`, peer)
}

// logHas reports whether a line of the current process's log has both
// strings.
func (d *labDaemon) logHas(s, peer string) bool {
	for _, line := range strings.Split(d.currentLog(), "\n") {
		if strings.Contains(line, s) && strings.Contains(line, peer) {
			return true
		}
	}
	return false
}

// stopLab stops meshd gracefully (SIGTERM).
func (d *labDaemon) stopLab() { d.proc.stop() }

func (d *labDaemon) id() string { return d.status().DeviceID }

// circuitAddrs lists the /p2p-circuit addresses among the listen addresses.
func (d *labDaemon) circuitAddrs() []string {
	var out []string
	for _, a := range d.status().ListenAddrs {
		if strings.Contains(a, "/p2p-circuit") {
			out = append(out, a)
		}
	}
	return out
}

func (d *labDaemon) waitCircuit(within time.Duration) {
	d.t.Helper()
	waitFor(d.t, within, d.name+"'s relay reservation (a /p2p-circuit listen address)", func() bool {
		return len(d.circuitAddrs()) > 0
	})
}

// device returns what d's `mesh devices --json` says about the device id.
func (d *labDaemon) device(id string) node.Device {
	d.t.Helper()
	for _, dev := range d.devices() {
		if dev.ID == id {
			return dev
		}
	}
	d.t.Fatalf("%s does not list device %s", d.name, id)
	return node.Device{}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func describe(dev node.Device) string {
	rtt := "-"
	if dev.RTTMillis != nil {
		rtt = fmt.Sprintf("%.2f ms", *dev.RTTMillis)
	}
	return fmt.Sprintf("%s online=%v connection=%s transport=%s remote=%s rtt=%s",
		dev.Name, dev.Online, deref(dev.Connection), deref(dev.Transport), deref(dev.RemoteAddr), rtt)
}

// labRelay is meshrelay inside a lab host, restartable with the same state.
type labRelay struct {
	t     *testing.T
	host  *natlab.Host
	state string
	id    string
	addr  string // the QUIC multiaddr with /p2p/ID that devices get
	args  []string
	proc  *labProc
}

// startLabRelay runs meshrelay on h (TCP and QUIC, port 4001) with extra
// flags (--allow-mesh ID or --open) and waits until it listens.
func startLabRelay(t *testing.T, h *natlab.Host, extra ...string) *labRelay {
	t.Helper()
	r := newLabRelay(t, h)
	r.args = append(r.args, extra...)
	r.restart()
	return r
}

// newLabRelay creates the relay's state (key) and knows its address, but
// does not start it.
func newLabRelay(t *testing.T, h *natlab.Host) *labRelay {
	t.Helper()
	state := t.TempDir()
	out, err := exec.Command(filepath.Join(binDir, "meshrelay"), "id", "--state", state).Output()
	if err != nil {
		t.Fatalf("meshrelay id: %v", err)
	}
	r := &labRelay{t: t, host: h, state: state, id: strings.TrimSpace(string(out))}
	r.addr = fmt.Sprintf("/ip4/%s/udp/%d/quic-v1/p2p/%s", h.IP(), labPort, r.id)
	r.args = append([]string{"--state", state, "--log-level", "debug"}, labListen(labPort)...)
	return r
}

// restart starts the relay (again) with the same state directory.
func (r *labRelay) restart() {
	t := r.t
	t.Helper()
	if r.proc != nil && !r.proc.exited() {
		t.Fatal("meshrelay is still running")
	}
	r.proc = startLabProc(t, r.host, "meshrelay", filepath.Join(r.state, "relay.log"),
		filepath.Join(binDir, "meshrelay"), r.args...)
	waitFor(t, 15*time.Second, "meshrelay listening", func() bool {
		if r.proc.exited() {
			t.Fatal("meshrelay exited at start")
		}
		err := r.host.Do(func() error {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", labPort), time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		return err == nil
	})
}

// bytes is the relay host's eth0 byte counters, rx + tx.
func (r *labRelay) bytes() (rx, tx uint64) {
	r.t.Helper()
	rx, tx, err := r.host.RxTxBytes()
	if err != nil {
		r.t.Fatal(err)
	}
	return rx, tx
}

// meshPair builds a mesh of two devices in a lab: a relay on the internet
// that admits the mesh, "alpha" on ha (inviter) and "bravo" on hb, both
// reserving on the relay. The invite code carries alpha's circuit address,
// so bravo joins through the relay when nothing else reaches alpha. join
// is how long bravo's `mesh join` took, joined the moment it returned.
type meshPair struct {
	relay  *labRelay
	a, b   *labDaemon
	idA    string
	idB    string
	joined time.Time
	join   time.Duration
}

func newMeshPair(t *testing.T, relayHost, ha, hb *natlab.Host, allow ...string) *meshPair {
	t.Helper()
	p := &meshPair{relay: newLabRelay(t, relayHost)}
	// The relay admits the members of alpha's mesh, which exists only after
	// init, so it starts after alpha's init; alpha retries its reservation
	// meanwhile. It also admits bravo's device ID (and those in allow): a
	// relay with --allow-mesh refuses a circuit from a device that is not a
	// member yet ("source not authorised"), so without that bravo could not
	// redeem the invite through alpha's circuit address. (A NATed device
	// cannot join through an --allow-mesh relay unless the operator allows
	// the device itself, or runs the relay --open.)
	p.a = startLabDaemon(t, ha, "alpha", "--relay", p.relay.addr)
	p.a.mesh("init", "--name", "alpha")
	p.b = startLabDaemon(t, hb, "bravo", "--relay", p.relay.addr)
	p.idA, p.idB = p.a.id(), p.b.id()
	p.relay.args = append(p.relay.args, "--allow-mesh", *p.a.status().MeshID, "--allow-device", p.idB)
	for _, id := range allow {
		p.relay.args = append(p.relay.args, "--allow-device", id)
	}
	p.relay.restart()
	p.a.waitCircuit(30 * time.Second)
	p.b.waitCircuit(30 * time.Second)
	p.a.waitHolePunchReady(20 * time.Second)
	p.b.waitHolePunchReady(20 * time.Second)
	p.addMember(p.b, p.a.invite())
	return p
}

// addMember joins d with code and records how long that took.
func (p *meshPair) addMember(d *labDaemon, code string) {
	d.t.Helper()
	start := time.Now()
	d.mesh("join", code, "--name", d.name)
	p.joined = time.Now()
	p.join = p.joined.Sub(start)
}

// waitOnline waits until both see each other online and returns what each
// says about the other.
func (p *meshPair) waitOnline(within time.Duration) (onA, onB node.Device) {
	p.a.t.Helper()
	waitFor(p.a.t, within, "alpha and bravo online to each other", func() bool {
		onA, onB = p.a.device(p.idB), p.b.device(p.idA)
		return onA.Online && onB.Online
	})
	return onA, onB
}

// writeRandomFile writes size bytes of incompressible data and returns
// their SHA-256.
func writeRandomFile(t *testing.T, path string, size int64, seed uint64) [32]byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var seedBytes [32]byte
	seedBytes[0] = byte(seed)
	rng := rand.NewChaCha8(seedBytes)
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	if _, err := io.CopyN(w, rng, size); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

func fileSHA256(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// blobTransfer is the outcome of moving one blob from src to dst.
type blobTransfer struct {
	size     int64
	elapsed  time.Duration
	relayRx  uint64 // relay eth0 bytes received during the fetch
	relayTx  uint64
	reported string // the CLI's summary line
}

func (x blobTransfer) mbps() float64 { return float64(x.size) / x.elapsed.Seconds() / 1e6 }

// transferBlob (named for its first version, which moved a blob) syncs a folder of random files totalling size bytes from
// src to dst: src shares it, dst joins it and waits until it is in sync;
// the content is checked and the relay's byte counters are measured around
// the sync.
func transferBlob(t *testing.T, relay *labRelay, src, dst *labDaemon, size int64) blobTransfer {
	t.Helper()
	const files = 10
	srcDir := filepath.Join(src.home, "folder")
	if err := os.MkdirAll(srcDir, 0o755); err != nil {
		t.Fatal(err)
	}
	want := map[string][32]byte{}
	for i := range files {
		name := fmt.Sprintf("photo%02d.raw", i)
		want[name] = writeRandomFile(t, filepath.Join(srcDir, name), size/files, uint64(size)+uint64(i))
	}
	src.mesh("folder", "add", srcDir, "--name", "photos")
	waitFor(t, 20*time.Second, dst.name+" sees the folder", func() bool {
		return strings.Contains(dst.mesh("folder", "list"), "photos")
	})
	dstDir := filepath.Join(dst.home, "folder")
	rx0, tx0 := relay.bytes()
	start := time.Now()
	dst.mesh("folder", "join", "photos", dstDir)
	dst.mesh("wait", "photos", "--timeout", "120s")
	x := blobTransfer{size: size / files * files, elapsed: time.Since(start), reported: "folder photos in sync"}
	rx1, tx1 := relay.bytes()
	x.relayRx, x.relayTx = rx1-rx0, tx1-tx0
	for name, sum := range want {
		if got := fileSHA256(t, filepath.Join(dstDir, name)); got != sum {
			t.Fatalf("synced %s differs from the original", name)
		}
	}
	return x
}

// tunnelInfo returns the tunnel with that id from `mesh tunnels --json`.
func tunnelInfo(t *testing.T, d *labDaemon, id int) node.TunnelInfo {
	t.Helper()
	var list []node.TunnelInfo
	out := d.mesh("tunnels", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("mesh tunnels --json: %v\n%s", err, out)
	}
	for _, ti := range list {
		if ti.ID == id {
			return ti
		}
	}
	t.Fatalf("tunnel %d not listed by %s: %s", id, d.name, out)
	return node.TunnelInfo{}
}

// serveHTTPIn runs an HTTP server listening on 127.0.0.1 inside h that
// answers every request with body; it returns the address (valid inside
// h only).
func serveHTTPIn(t *testing.T, h *natlab.Host, body string) string {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// httpGetIn makes one HTTP/1.0 GET to addr from inside h and returns the
// body.
func httpGetIn(h *natlab.Host, addr string) (string, error) {
	var body string
	err := h.Do(func() error {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: lab\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %s", resp.Status)
		}
		body = string(b)
		return nil
	})
	return body, err
}

// openLabTunnel opens a background tunnel on d to service on device and
// returns its id and local address (inside d's namespace).
func openLabTunnel(t *testing.T, d *labDaemon, device, service string) (int, string) {
	t.Helper()
	out := d.mesh("tunnel", device, service, "--background")
	// "tunnel ID: ADDR → SERVICE on DEVICE (close with: ...)"
	var id int
	var local string
	if _, err := fmt.Sscanf(out, "tunnel %d: %s", &id, &local); err != nil {
		t.Fatalf("mesh tunnel output %q: %v", out, err)
	}
	return id, local
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

const mib = 1 << 20
