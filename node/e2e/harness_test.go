package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node"
)

// binDir holds meshd and mesh built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meshwork-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir+"/", "github.com/meshwork/meshwork/cmd/meshd", "github.com/meshwork/meshwork/cmd/mesh", "github.com/meshwork/meshwork/cmd/meshrelay")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build binaries:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is one meshd process with its own home.
type daemon struct {
	t      testing.TB
	name   string
	home   string
	listen []string
	cmd    *exec.Cmd
	logf   *os.File
	done   chan struct{}
}

// startDaemon runs meshd on loopback (TCP and QUIC, OS-chosen ports, no
// mDNS so that discovery has to work through invites and address records)
// and waits until its control API answers.
func startDaemon(t testing.TB, name string, extra ...string) *daemon {
	return startDaemonOn(t, name, []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}, extra...)
}

// startDaemonOn is startDaemon with explicit listen addresses.
func startDaemonOn(t testing.TB, name string, listen []string, extra ...string) *daemon {
	t.Helper()
	home, err := os.MkdirTemp("", "mw-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	d := &daemon{t: t, name: name, home: home, listen: listen}
	d.start(extra...)
	return d
}

func (d *daemon) start(extra ...string) {
	t := d.t
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(d.home, "meshd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// Tests log at debug level (their logs are printed when they fail);
	// benchmarks run daemons as users do, at the default level: per-chunk
	// debug lines cost a third of the transfer rate.
	level := "debug"
	if _, bench := d.t.(*testing.B); bench {
		level = "info"
	}
	args := []string{"--home", d.home, "--no-mdns", "--log-level", level}
	for _, l := range d.listen {
		args = append(args, "--listen", l)
	}
	if !slices.Contains(extra, "--http") {
		args = append(args, "--http", "127.0.0.1:0") // never a user's port 8385
	}
	args = append(args, extra...)
	cmd := exec.Command(filepath.Join(binDir, "meshd"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start meshd %s: %v", d.name, err)
	}
	d.cmd, d.logf, d.done = cmd, logf, make(chan struct{})
	go func() { _ = cmd.Wait(); close(d.done) }()
	t.Cleanup(d.stop)
	waitFor(t, 15*time.Second, "meshd "+d.name+" control API", func() bool {
		_, _, err := d.run("status", "--json")
		return err == nil
	})
}

// cpu is the CPU time (user + system) the daemon has used so far.
func (d *daemon) cpu() time.Duration { return procCPU(d.cmd.Process.Pid) }

// procCPU is the CPU time (user + system) process pid has used so far, from
// /proc (clock ticks: 10 ms resolution); 0 where /proc is missing.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which is in parentheses and may
	// contain spaces): state is field 3, utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		d.t.Errorf("meshd %s did not stop within 10s of SIGTERM", d.name)
	}
	d.logf.Close()
	d.cmd = nil
	if d.t.Failed() {
		b, _ := os.ReadFile(filepath.Join(d.home, "meshd.log"))
		d.t.Logf("---- meshd %s log ----\n%s", d.name, tail(string(b), 400))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// run runs the mesh CLI against this daemon.
func (d *daemon) run(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "mesh"), append([]string{"--home", d.home}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// mesh runs the CLI and fails the test if it fails.
func (d *daemon) mesh(args ...string) string {
	d.t.Helper()
	out, errOut, err := d.run(args...)
	if err != nil {
		d.t.Fatalf("mesh %s on %s: %v\n%s", strings.Join(args, " "), d.name, err, errOut)
	}
	return out
}

func (d *daemon) status() node.Status {
	d.t.Helper()
	var st node.Status
	if err := json.Unmarshal([]byte(d.mesh("status", "--json")), &st); err != nil {
		d.t.Fatalf("status of %s: %v", d.name, err)
	}
	return st
}

func (d *daemon) devices() []node.Device {
	d.t.Helper()
	var devs []node.Device
	out := d.mesh("devices", "--json")
	if err := json.Unmarshal([]byte(out), &devs); err != nil {
		d.t.Fatalf("devices of %s: %v\n%s", d.name, err, out)
	}
	return devs
}

// online reports whether d sees the device with that ID online.
func (d *daemon) online(id string) bool {
	for _, dev := range d.devices() {
		if dev.ID == id {
			return dev.Online
		}
	}
	return false
}

// joinPair makes a the owner of a new mesh ("alpha"), joins b to it
// ("bravo") and waits until each sees the other online. It returns their
// device IDs.
func joinPair(tb testing.TB, a, b *daemon) (idA, idB string) {
	tb.Helper()
	a.mesh("init", "--name", "alpha")
	b.mesh("join", a.invite(), "--name", "bravo")
	idA, idB = a.status().DeviceID, b.status().DeviceID
	waitFor(tb, 20*time.Second, "a and b online", func() bool { return a.online(idB) && b.online(idA) })
	return idA, idB
}

// invite returns a fresh code (the last line of `mesh invite`).
func (d *daemon) invite(args ...string) string {
	out := strings.TrimSpace(d.mesh(append([]string{"invite"}, args...)...))
	lines := strings.Split(out, "\n")
	return lines[len(lines)-1]
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// relayProc is a meshrelay process on loopback.
type relayProc struct {
	addr string // multiaddr with /p2p/ID
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// startRelay runs meshrelay on a free loopback TCP port with extra flags.
func startRelay(t testing.TB, extra ...string) *relayProc {
	t.Helper()
	state := t.TempDir()
	idOut, err := exec.Command(filepath.Join(binDir, "meshrelay"), "id", "--state", state).Output()
	if err != nil {
		t.Fatalf("meshrelay id: %v", err)
	}
	port := freePort(t)
	r := &relayProc{
		addr: fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", port, strings.TrimSpace(string(idOut))),
		log:  filepath.Join(state, "relay.log"),
		done: make(chan struct{}),
	}
	logf, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--state", state, "--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)}, extra...)
	r.cmd = exec.Command(filepath.Join(binDir, "meshrelay"), args...)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); logf.Close(); close(r.done) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		<-r.done
		if t.Failed() {
			b, _ := os.ReadFile(r.log)
			t.Logf("---- meshrelay log ----\n%s", tail(string(b), 40))
		}
	})
	waitFor(t, 10*time.Second, "meshrelay listening", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return r
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// logContains reports whether the daemon's log has s.
func (d *daemon) logContains(s string) bool {
	b, _ := os.ReadFile(filepath.Join(d.home, "meshd.log"))
	return strings.Contains(string(b), s)
}
