package natlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// StopGrace is how long a process gets between SIGTERM and SIGKILL.
const StopGrace = 10 * time.Second

// Host is a machine in the lab: a namespace with lo and eth0, either on the
// internet (Lab.PublicHost) or behind a router (Router.Host).
type Host struct {
	lab    *Lab
	name   string
	ns     string
	ip     netip.Addr
	ifname string
	router *Router // nil for public hosts
}

// Name is the host's name in the lab.
func (h *Host) Name() string { return h.name }

// NS is the host's network namespace (for ip netns exec / ip -n).
func (h *Host) NS() string { return h.ns }

// IP is the host's address on eth0: public for public hosts, 192.168.N.x
// behind a router.
func (h *Host) IP() netip.Addr { return h.ip }

// Router is the router the host sits behind, or nil for a public host.
func (h *Host) Router() *Router { return h.router }

// PublicIP is the address the internet sees for this host: its own for a
// public host, its router's WAN address otherwise.
func (h *Host) PublicIP() netip.Addr {
	if h.router != nil {
		return h.router.wanIP
	}
	return h.ip
}

// Command returns a command that runs name inside the host's namespace (via
// "ip netns exec", which also gives it a /sys of the namespace). When ctx
// ends the process gets SIGTERM and, StopGrace later, SIGKILL; it is also
// killed if the test process dies. The caller owns the command: Start it
// and Wait for it.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = StopGrace
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Do runs fn on an OS thread that has entered the host's network namespace.
// Sockets that fn itself creates (net.Dial, net.Listen, net.ListenPacket
// with IP literals) live in the namespace and stay there when used later
// from any goroutine; goroutines fn starts do not run in the namespace.
func (h *Host) Do(fn func() error) error { return doInNS(h.ns, fn) }

// Do runs fn inside the router's namespace; see Host.Do.
func (r *Router) Do(fn func() error) error { return doInNS(r.ns, fn) }

func doInNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		defer orig.Close()
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: setns: %w", ns, err)
			return
		}
		ferr := fn()
		// Go back and give the thread back to the runtime. Letting a locked
		// goroutine exit would kill the thread instead, and with it every
		// child that thread forked with Pdeathsig (Command's processes).
		// Only if we cannot go back is the thread thrown away.
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// RxTxBytes reads the byte counters of the host's eth0. On a relay this is
// all traffic through the relay, so a test can tell relayed from direct.
func (h *Host) RxTxBytes() (rx, tx uint64, err error) {
	return linkBytes(h.ns, h.ifname)
}

func linkBytes(ns, ifname string) (rx, tx uint64, err error) {
	out, err := output("ip", "-n", ns, "-s", "-j", "link", "show", "dev", ifname)
	if err != nil {
		return 0, 0, fmt.Errorf("byte counters of %s in namespace %s: %w", ifname, ns, err)
	}
	var links []struct {
		Stats64 struct {
			RX struct {
				Bytes uint64 `json:"bytes"`
			} `json:"rx"`
			TX struct {
				Bytes uint64 `json:"bytes"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		return 0, 0, fmt.Errorf("byte counters of %s in namespace %s: cannot parse %q: %v", ifname, ns, out, err)
	}
	return links[0].Stats64.RX.Bytes, links[0].Stats64.TX.Bytes, nil
}
