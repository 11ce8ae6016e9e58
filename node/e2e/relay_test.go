package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestRelayAndDHT: two members restart on new ports, behind a relay that
// only admits members of their mesh. Their saved addresses of each other
// are stale and hold no circuit address, so the only route left is the
// DHT served by the relay. Each also holds a reservation (after proving
// membership) and advertises its circuit address.
func TestRelayAndDHT(t *testing.T) {
	a, b := startDaemon(t, "a"), startDaemon(t, "b")
	idA, idB := joinPair(t, a, b)
	mesh := *a.status().MeshID
	a.stop()
	b.stop()

	r := startRelay(t, "--allow-mesh", mesh)
	a.start("--relay", r.addr)
	b.start("--relay", r.addr)
	for _, d := range []*daemon{a, b} {
		waitFor(t, 15*time.Second, d.name+"'s relay reservation", func() bool {
			for _, addr := range d.status().ListenAddrs {
				if strings.Contains(addr, "/p2p-circuit") {
					return true
				}
			}
			return false
		})
	}
	// (A DHT lookup dials the peer it finds, so the connection may come a
	// moment before the lookup returns and logs.)
	waitFor(t, 90*time.Second, "a and b to find each other through the DHT", func() bool {
		return a.online(idB) && b.online(idA) &&
			(a.logContains("found member through the DHT") || b.logContains("found member through the DHT"))
	})
	out := a.mesh("ping", "bravo", "--count", "2")
	if strings.Count(out, "pong from bravo") != 2 {
		t.Fatalf("mesh ping: %q", out)
	}
}

// TestRelayRefusesStranger: a daemon of another mesh is refused a
// reservation by a relay that allows only one mesh.
func TestRelayRefusesStranger(t *testing.T) {
	a := startDaemon(t, "a")
	a.mesh("init", "--name", "alpha")
	r := startRelay(t, "--allow-mesh", *a.status().MeshID)

	s := startDaemon(t, "stranger", "--relay", r.addr)
	s.mesh("init", "--name", "other")
	waitFor(t, 15*time.Second, "the stranger's refusal", func() bool {
		return s.logContains("relay reservation failed") && s.logContains("mesh_not_allowed")
	})
	for _, addr := range s.status().ListenAddrs {
		if strings.Contains(addr, "/p2p-circuit") {
			t.Fatalf("stranger advertises a circuit address: %s", addr)
		}
	}
}
