package natlab_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node/natlab"
)

// udpSocket opens a UDP socket on port inside h.
func udpSocket(t *testing.T, h *natlab.Host, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := h.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port})
		return err
	})
	if err != nil {
		t.Fatalf("listen udp :%d in %s: %v", port, h.NS(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sendTo(t *testing.T, c *net.UDPConn, ip netip.Addr, port int, msg string) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort([]byte(msg), netip.AddrPortFrom(ip, uint16(port))); err != nil {
		t.Fatalf("send %q to %v:%d: %v", msg, ip, port, err)
	}
}

// recv reads one datagram within d; ok is false on timeout.
func recv(t *testing.T, c *net.UDPConn, d time.Duration) (msg string, from netip.AddrPort, ok bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 1500)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "", netip.AddrPort{}, false
		}
		t.Fatalf("read udp: %v", err)
	}
	return string(buf[:n]), netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), true
}

func mustRecv(t *testing.T, c *net.UDPConn, want string) netip.AddrPort {
	t.Helper()
	msg, from, ok := recv(t, c, 5*time.Second)
	if !ok {
		t.Fatalf("no datagram %q within 5s", want)
	}
	if msg != want {
		t.Fatalf("got %q from %v, want %q", msg, from, want)
	}
	return from
}

func rootLinks(t *testing.T) string {
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatalf("ip link show: %v", err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			names = append(names, f[1])
		}
	}
	return strings.Join(names, " ")
}

// TestNATBehaviour checks the lab itself with plain UDP sockets: mappings,
// filtering, the home LAN with multicast, and that the root namespace is
// left alone.
func TestNATBehaviour(t *testing.T) {
	before := ""
	if os.Geteuid() == 0 {
		before = rootLinks(t)
	}
	lab := natlab.New(t)
	srv := lab.PublicHost("srv")
	cone := lab.Router("cone", natlab.Cone)
	sym := lab.Router("sym", natlab.Symmetric)
	a, a2 := cone.Host("a"), cone.Host("a2")
	b := sym.Host("b")

	if got := rootLinks(t); got != before {
		t.Errorf("root namespace links changed:\nbefore %s\nafter  %s", before, got)
	}
	if srv.IP() != netip.MustParseAddr("1.2.0.1") || cone.WANIP() != netip.MustParseAddr("1.2.0.2") ||
		a.IP() != netip.MustParseAddr("192.168.1.10") || a2.IP() != netip.MustParseAddr("192.168.1.11") ||
		b.IP() != netip.MustParseAddr("192.168.2.10") || b.PublicIP() != sym.WANIP() {
		t.Errorf("addresses: srv %v cone %v a %v a2 %v b %v sym %v", srv.IP(), cone.WANIP(), a.IP(), a2.IP(), b.IP(), sym.WANIP())
	}

	s1, s2, s3 := udpSocket(t, srv, 9000), udpSocket(t, srv, 9001), udpSocket(t, srv, 9002)

	t.Run("cone keeps the port for every destination", func(t *testing.T) {
		ca := udpSocket(t, a, 5000)
		sendTo(t, ca, srv.IP(), 9000, "a1")
		sendTo(t, ca, srv.IP(), 9001, "a2")
		f1, f2 := mustRecv(t, s1, "a1"), mustRecv(t, s2, "a2")
		want := netip.AddrPortFrom(cone.WANIP(), 5000)
		if f1 != want || f2 != want {
			t.Fatalf("server saw %v and %v, want %v for both", f1, f2, want)
		}
		// Replies on the mapping come in; a stranger on the same address does not.
		sendTo(t, s3, cone.WANIP(), 5000, "unsolicited")
		sendTo(t, s1, cone.WANIP(), 5000, "reply")
		if got := mustRecv(t, ca, "reply"); got != netip.AddrPortFrom(srv.IP(), 9000) {
			t.Fatalf("reply from %v", got)
		}
		if msg, from, ok := recv(t, ca, 300*time.Millisecond); ok {
			t.Fatalf("unsolicited datagram %q from %v got through the cone NAT", msg, from)
		}
	})

	t.Run("symmetric maps each destination to another port", func(t *testing.T) {
		cb := udpSocket(t, b, 5000)
		sendTo(t, cb, srv.IP(), 9000, "b1")
		sendTo(t, cb, srv.IP(), 9001, "b2")
		f1, f2 := mustRecv(t, s1, "b1"), mustRecv(t, s2, "b2")
		if f1.Addr() != sym.WANIP() || f2.Addr() != sym.WANIP() || f1.Port() == f2.Port() {
			t.Fatalf("server saw %v and %v, want %v with two different ports", f1, f2, sym.WANIP())
		}
		sendTo(t, s1, f1.Addr(), int(f1.Port()), "reply")
		mustRecv(t, cb, "reply")
	})

	t.Run("nothing unsolicited reaches a home host", func(t *testing.T) {
		c := udpSocket(t, a, 6000)
		sendTo(t, s1, cone.WANIP(), 6000, "probe")
		if msg, from, ok := recv(t, c, 300*time.Millisecond); ok {
			t.Fatalf("unsolicited datagram %q from %v reached a", msg, from)
		}
	})

	t.Run("home LAN unicast and multicast", func(t *testing.T) {
		c1 := udpSocket(t, a, 7000)
		c2 := udpSocket(t, a2, 7000)
		sendTo(t, c2, a.IP(), 7000, "lan")
		if from := mustRecv(t, c1, "lan"); from != netip.AddrPortFrom(a2.IP(), 7000) {
			t.Fatalf("LAN datagram from %v, want a2 un-NATed", from)
		}
		group := &net.UDPAddr{IP: net.IPv4(239, 255, 77, 1), Port: 7001}
		var m *net.UDPConn
		err := a.Do(func() error {
			ifi, err := net.InterfaceByName("eth0")
			if err != nil {
				return err
			}
			m, err = net.ListenMulticastUDP("udp4", ifi, group)
			return err
		})
		if err != nil {
			t.Fatalf("join %v on a: %v", group, err)
		}
		defer m.Close()
		sendTo(t, c2, netip.MustParseAddr("239.255.77.1"), 7001, "mcast")
		mustRecv(t, m, "mcast")
	})

	t.Run("counters", func(t *testing.T) {
		rx, tx, err := srv.RxTxBytes()
		if err != nil || rx == 0 || tx == 0 {
			t.Fatalf("srv counters rx %d tx %d: %v", rx, tx, err)
		}
		if rx, tx, err := cone.WANRxTxBytes(); err != nil || rx == 0 || tx == 0 {
			t.Fatalf("cone wan counters rx %d tx %d: %v", rx, tx, err)
		}
	})

	t.Run("command runs inside the host", func(t *testing.T) {
		out, err := a.Command(t.Context(), "ip", "-4", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
		if err != nil || !strings.Contains(string(out), a.IP().String()+"/24") {
			t.Fatalf("ip addr in %s: %v: %s", a.NS(), err, out)
		}
	})

	if err := lab.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), lab.Prefix()) {
		t.Fatalf("namespaces left after Close:\n%s", out)
	}
	if got := rootLinks(t); got != before {
		t.Errorf("root namespace links changed after close:\nbefore %s\nafter  %s", before, got)
	}
	if err := lab.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestStaleCleanup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip(natlab.SkipMessage)
	}
	// A namespace named as if by a lab of a process that cannot exist.
	stale := fmt.Sprintf("nl%dx1-inet", 1<<30)
	if out, err := exec.Command("ip", "netns", "add", stale).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", stale, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", stale).Run() })
	natlab.New(t)
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), stale) {
		t.Fatalf("stale namespace %s survived New:\n%s", stale, out)
	}
}
