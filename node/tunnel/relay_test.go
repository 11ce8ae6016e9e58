package tunnel

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
)

// TestNewConnectionsPreferDirect: A reaches B only through a relay; the
// tunnel works there (encrypted end to end, the relay forwards a stream it
// cannot read). Once a direct connection appears (as after hole punching),
// new tunnel connections use it and the relayed one keeps working.
func TestNewConnectionsPreferDirect(t *testing.T) {
	r, a, b := newHost(t), newHost(t), newHost(t)
	if _, err := relayv2.New(r, relayv2.WithLimit(&relayv2.RelayLimit{Duration: time.Hour, Data: 1 << 30})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	connect(t, b, r)
	connect(t, a, r)
	if _, err := client.Reserve(ctx, b, peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}); err != nil {
		t.Fatal(err)
	}
	circuit := r.Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + r.ID().String() + "/p2p-circuit"))
	if err := a.Connect(network.WithAllowLimitedConn(ctx, "test"), peer.AddrInfo{ID: b.ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
		t.Fatal(err)
	}
	events := make(chan Event, 10)
	srv := NewServer(b, newMembers(a.ID()), testLogger(t), WithOnOpen(func(e Event) { events <- e }))
	t.Cleanup(func() { _ = srv.Close() })
	svc := newService(t, echo)
	if err := srv.Expose("echo", svc.addr(), nil); err != nil {
		t.Fatal(err)
	}
	roundTrip := func(c *Conn, msg string) {
		t.Helper()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %q: %q, %v", msg, buf, err)
		}
	}

	relayed, err := Dial(ctx, a, b.ID(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer relayed.Close()
	_ = relayed.SetDeadline(time.Now().Add(testDeadline))
	roundTrip(relayed, "via relay")
	if e := recv(t, events, "event"); !relayed.Relayed() || !e.Relayed {
		t.Fatalf("first connection: client relayed %v, server event %+v", relayed.Relayed(), e)
	}

	// The "hole punch": a direct connection alongside the relayed one.
	if err := a.Connect(network.WithForceDirectDial(ctx, "test"), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	direct, err := Dial(ctx, a, b.ID(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	_ = direct.SetDeadline(time.Now().Add(testDeadline))
	roundTrip(direct, "direct")
	if e := recv(t, events, "event"); direct.Relayed() || e.Relayed {
		t.Fatalf("second connection: client relayed %v, server event %+v", direct.Relayed(), e)
	}
	roundTrip(relayed, "relay still up")
}
