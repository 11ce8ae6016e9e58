package node

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

func delays(t *testing.T, ranked []network.AddrDelay) map[string]time.Duration {
	t.Helper()
	m := make(map[string]time.Duration, len(ranked))
	for _, ad := range ranked {
		if _, dup := m[ad.Addr.String()]; dup {
			t.Fatalf("%s ranked twice", ad.Addr)
		}
		m[ad.Addr.String()] = ad.Delay
	}
	return m
}

func addrs(t *testing.T, ss ...string) []ma.Multiaddr {
	t.Helper()
	var out []ma.Multiaddr
	for _, s := range ss {
		out = append(out, ma.StringCast(s))
	}
	return out
}

// TestDialRankerPrefersPrivateTCP: on loopback and LAN addresses TCP is
// dialled first and QUIC after it; public and relay addresses keep libp2p's
// ranking; every address is dialled once.
func TestDialRankerPrefersPrivateTCP(t *testing.T) {
	const step = swarm.PrivateTCPDelay
	for _, tc := range []struct {
		name  string
		addrs []string
		want  map[string]time.Duration // nil: exactly libp2p's default
	}{
		{"loopback", []string{"/ip4/127.0.0.1/udp/4001/quic-v1", "/ip4/127.0.0.1/tcp/4001"},
			map[string]time.Duration{"/ip4/127.0.0.1/tcp/4001": 0, "/ip4/127.0.0.1/udp/4001/quic-v1": step}},
		{"LAN, two TCP ports, IPv6 QUIC", []string{
			"/ip4/192.168.1.5/udp/4001/quic-v1", "/ip4/192.168.1.5/tcp/40123", "/ip4/192.168.1.5/tcp/4001",
			"/ip6/fd00::5/udp/4001/quic-v1"},
			map[string]time.Duration{
				"/ip4/192.168.1.5/tcp/4001": 0, "/ip4/192.168.1.5/tcp/40123": step,
				// then libp2p's own order for the QUIC ones (IPv6 first), after the TCP ones
				"/ip6/fd00::5/udp/4001/quic-v1": 2 * step, "/ip4/192.168.1.5/udp/4001/quic-v1": 3 * step}},
		{"public only", []string{"/ip4/1.2.3.4/udp/4001/quic-v1", "/ip4/1.2.3.4/tcp/4001"}, nil},
		{"private websocket is not plain TCP", []string{"/ip4/10.0.0.2/tcp/4001/ws", "/ip4/10.0.0.2/udp/4001/quic-v1"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := addrs(t, tc.addrs...)
			got := delays(t, dialRanker(in))
			want := tc.want
			if want == nil {
				want = delays(t, swarm.DefaultDialRanker(addrs(t, tc.addrs...)))
			}
			if len(got) != len(want) {
				t.Fatalf("ranked %d addresses, want %d: %v", len(got), len(want), got)
			}
			for a, d := range want {
				if g, ok := got[a]; !ok || g != d {
					t.Errorf("%s: delay %v (ranked %v), want %v", a, g, ok, d)
				}
			}
		})
	}
	// Mixed: private TCP first; public and relay addresses exactly as
	// libp2p ranks them on their own.
	pub := []string{"/ip4/1.2.3.4/udp/4001/quic-v1", "/ip4/1.2.3.4/tcp/4001",
		"/ip4/5.6.7.8/udp/4001/quic-v1/p2p/12D3KooWDsDncj4JXxwELUdcg7hgfv6ngpW3JSKqJkdiGiSAuC5m/p2p-circuit"}
	got := delays(t, dialRanker(addrs(t, append([]string{"/ip4/10.0.0.2/tcp/4001", "/ip4/10.0.0.2/udp/4001/quic-v1"}, pub...)...)))
	if got["/ip4/10.0.0.2/tcp/4001"] != 0 || got["/ip4/10.0.0.2/udp/4001/quic-v1"] != step {
		t.Errorf("private addresses: %v", got)
	}
	for a, d := range delays(t, swarm.DefaultDialRanker(addrs(t, pub...))) {
		if got[a] != d {
			t.Errorf("%s: delay %v, libp2p's %v", a, got[a], d)
		}
	}
}

// TestDialRankerFallsBackToQUIC: a peer whose advertised private TCP
// address does not answer is still reached, over QUIC, right after the TCP
// dial fails.
func TestDialRankerFallsBackToQUIC(t *testing.T) {
	b, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := libp2p.New(libp2p.NoListenAddrs, libp2p.SwarmOpts(swarm.WithDialRanker(dialRanker)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// A TCP port nothing listens on: bind one, note it, close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ln.Addr().(*net.TCPAddr).Port))
	ln.Close()
	if got := dialRanker(append([]ma.Multiaddr{dead}, b.Addrs()...)); !got[0].Addr.Equal(dead) || got[0].Delay != 0 {
		t.Fatalf("the dead TCP address is not dialled first: %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: append([]ma.Multiaddr{dead}, b.Addrs()...)}); err != nil {
		t.Fatalf("connect with a dead TCP address first: %v", err)
	}
	conns := a.Network().ConnsToPeer(b.ID())
	if len(conns) != 1 || !strings.Contains(conns[0].RemoteMultiaddr().String(), "/quic-v1") {
		t.Fatalf("connections %v, want one over QUIC", conns)
	}
	t.Logf("connected over QUIC %v after the dead TCP dial", time.Since(start).Round(time.Millisecond))
}
