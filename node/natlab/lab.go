package natlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// T is the part of *testing.T a lab needs. natlab does not import testing so
// that it stays outside the "no shipped package imports testing" fence.
type T interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
	Skip(args ...any)
	Logf(format string, args ...any)
}

// SkipMessage is what New skips with when the lab cannot be built here.
const SkipMessage = "natlab: needs root (CAP_NET_ADMIN); run as root or in CI"

// Internet addressing. 1.2.0.0/24 passes manet.IsPublicAddr, which
// go-libp2p requires before it hole-punches.
var (
	internetPrefix = netip.MustParsePrefix("1.2.0.0/24")
	internetGW     = netip.MustParseAddr("1.2.0.254")
)

// setupTimeout bounds every ip/iptables command the lab runs.
const setupTimeout = 30 * time.Second

var labCounter atomic.Int64

// stalePrefix matches the namespaces of any lab: nl<pid>x<n>-<role>.
var stalePrefix = regexp.MustCompile(`^nl([0-9]+)x[0-9]+-`)

// Lab is one NAT lab: an internet namespace with a bridge, and the public
// hosts and routers attached to it. Create it with New.
type Lab struct {
	t      T
	prefix string
	inet   string // internet namespace

	mu         sync.Mutex
	namespaces []string // in creation order
	names      map[string]bool
	nextWAN    int // last octet of the next 1.2.0.x
	nextRouter int
	nextPort   int // index for veth names on the internet bridge
	closed     bool
}

// New builds an empty lab (just the internet bridge) and registers its Close
// with t.Cleanup. It skips the test unless it runs as root with ip and
// iptables installed.
func New(t T) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip(SkipMessage)
	}
	for _, tool := range []string{"ip", "iptables", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(SkipMessage + " (missing " + tool + ": apt-get install -y iptables iproute2)")
		}
	}
	removeStale(t)

	l := &Lab{
		t:       t,
		prefix:  fmt.Sprintf("nl%dx%d-", os.Getpid(), labCounter.Add(1)),
		names:   map[string]bool{},
		nextWAN: 1,
	}
	l.inet = l.prefix + "inet"
	if err := l.addNS(l.inet); err != nil {
		if strings.Contains(err.Error(), "Operation not permitted") || strings.Contains(err.Error(), "Permission denied") {
			t.Skip(SkipMessage + ": " + err.Error())
		}
		t.Fatalf("natlab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Logf("natlab: close: %v", err)
		}
	})
	if err := l.setupInternet(); err != nil {
		t.Fatalf("natlab: internet: %v", err)
	}
	return l
}

// Prefix is the prefix of every namespace name in this lab.
func (l *Lab) Prefix() string { return l.prefix }

// InternetNS is the name of the namespace that holds the internet bridge.
func (l *Lab) InternetNS() string { return l.inet }

func (l *Lab) setupInternet() error {
	if err := sysctls(l.inet, map[string]string{
		"net/ipv6/conf/all/disable_ipv6":     "1",
		"net/ipv6/conf/default/disable_ipv6": "1",
		"net/ipv4/ip_forward":                "0",
	}); err != nil {
		return err
	}
	// Bridged frames need not go through this namespace's (empty) iptables.
	_ = sysctls(l.inet, map[string]string{"net/bridge/bridge-nf-call-iptables": "0"})
	return ipBatch(l.inet,
		"link set lo up",
		"link add br0 type bridge",
		"addr add "+netip.PrefixFrom(internetGW, internetPrefix.Bits()).String()+" dev br0",
		"link set br0 up",
	)
}

// allocName reserves a host or router name; names are unique per lab.
func (l *Lab) allocName(kind, name string) (string, error) {
	if !validName.MatchString(name) {
		return "", fmt.Errorf("%s name %q: want 1-20 of [a-z0-9-]", kind, name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", errors.New("lab is closed")
	}
	if l.names[name] {
		return "", fmt.Errorf("%s name %q already used in this lab", kind, name)
	}
	l.names[name] = true
	return name, nil
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,19}$`)

// allocWAN hands out the next internet address and bridge port name.
func (l *Lab) allocWAN() (netip.Addr, string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nextWAN >= 254 {
		return netip.Addr{}, "", errors.New("internet 1.2.0.0/24 is full")
	}
	a := internetPrefix.Addr().As4()
	a[3] = byte(l.nextWAN)
	l.nextWAN++
	l.nextPort++
	return netip.AddrFrom4(a), fmt.Sprintf("p%d", l.nextPort), nil
}

// attachInternet creates a veth from the internet bridge into ns, named
// ifname there, with addr/24 and a default route via the bridge.
func (l *Lab) attachInternet(ns, ifname string) (netip.Addr, error) {
	addr, port, err := l.allocWAN()
	if err != nil {
		return netip.Addr{}, err
	}
	// The veth is born inside the internet namespace with its peer placed
	// straight into ns: nothing ever appears in the root namespace.
	if err := ipBatch(l.inet,
		"link add "+port+" type veth peer name "+ifname+" netns "+ns,
		"link set "+port+" master br0",
		"link set "+port+" up",
	); err != nil {
		return netip.Addr{}, err
	}
	if err := ipBatch(ns,
		"addr add "+netip.PrefixFrom(addr, internetPrefix.Bits()).String()+" dev "+ifname,
		"link set "+ifname+" up",
		"route add default via "+internetGW.String(),
	); err != nil {
		return netip.Addr{}, err
	}
	return addr, nil
}

// PublicHost adds a host directly on the internet (a relay, a server, a
// device with a public address). Its interface is eth0.
func (l *Lab) PublicHost(name string) *Host {
	l.t.Helper()
	h, err := l.publicHost(name)
	if err != nil {
		l.t.Fatalf("natlab: public host %q: %v", name, err)
	}
	return h
}

func (l *Lab) publicHost(name string) (*Host, error) {
	name, err := l.allocName("host", name)
	if err != nil {
		return nil, err
	}
	ns := l.prefix + "h-" + name
	if err := l.newNS(ns); err != nil {
		return nil, err
	}
	addr, err := l.attachInternet(ns, "eth0")
	if err != nil {
		return nil, err
	}
	return &Host{lab: l, name: name, ns: ns, ip: addr, ifname: "eth0"}, nil
}

// newNS creates a namespace with lo up and IPv6 off.
func (l *Lab) newNS(ns string) error {
	if err := l.addNS(ns); err != nil {
		return err
	}
	if err := sysctls(ns, map[string]string{
		"net/ipv6/conf/all/disable_ipv6":     "1",
		"net/ipv6/conf/default/disable_ipv6": "1",
	}); err != nil {
		return err
	}
	return ipBatch(ns, "link set lo up")
}

func (l *Lab) addNS(ns string) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errors.New("lab is closed")
	}
	l.mu.Unlock()
	if err := run(nil, "ip", "netns", "add", ns); err != nil {
		return err
	}
	l.mu.Lock()
	l.namespaces = append(l.namespaces, ns)
	l.mu.Unlock()
	return nil
}

// Close stops any process still running in the lab's namespaces and deletes
// the namespaces (and with them every link the lab created). It is safe to
// call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	nss := l.namespaces
	l.namespaces = nil
	l.mu.Unlock()
	var errs []error
	for i := len(nss) - 1; i >= 0; i-- {
		if err := deleteNS(nss[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteNS kills what still runs inside ns (a process keeps a namespace
// alive after its name is gone) and deletes it.
func deleteNS(ns string) error {
	out, _ := output("ip", "netns", "pids", ns)
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return run(nil, "ip", "netns", "delete", ns)
}

// removeStale deletes lab namespaces whose owning test process is gone.
func removeStale(t T) {
	out, err := output("ip", "netns", "list")
	if err != nil {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := stalePrefix.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		if err := deleteNS(f[0]); err != nil {
			t.Logf("natlab: remove stale namespace: %v", err)
		} else {
			t.Logf("natlab: removed stale namespace %s (process %d is gone)", f[0], pid)
		}
	}
}

// run runs a setup command and returns an error naming the command and
// carrying its stderr. A nil stdin means none.
func run(stdin []byte, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func output(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// ipBatch runs ip commands inside ns in one ip process.
func ipBatch(ns string, cmds ...string) error {
	script := strings.Join(cmds, "\n") + "\n"
	if err := run([]byte(script), "ip", "-n", ns, "-batch", "-"); err != nil {
		return fmt.Errorf("in namespace %s: %w (batch: %q)", ns, err, script)
	}
	return nil
}

// sysctls writes /proc/sys entries from a thread inside ns.
func sysctls(ns string, kv map[string]string) error {
	return doInNS(ns, func() error {
		for k, v := range kv {
			if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
				return fmt.Errorf("sysctl %s=%s in namespace %s: %w", strings.ReplaceAll(k, "/", "."), v, ns, err)
			}
		}
		return nil
	})
}
