package node

import (
	"net/netip"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestPunchBackoff(t *testing.T) {
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 25 * time.Second, 25 * time.Second}
	for i, w := range want {
		if got := punchBackoff(i); got != w {
			t.Errorf("punchBackoff(%d) = %v, want %v", i, got, w)
		}
	}
	if got := punchBackoff(1000); got != punchMaxRetry {
		t.Errorf("punchBackoff(1000) = %v, want the cap %v", got, punchMaxRetry)
	}
}

// TestPunchSchedule drives the schedule with a fake clock: a relayed
// member whose relayed connection we received is retried 2 s after it
// appears, then with backoff up to the cap (never more often than every
// punchMinGap, at least every punchMaxRetry after an attempt ends), one at
// a time; a trigger resets the backoff; a member whose connection we
// dialled is left to the other side; a direct member is not retried.
func TestPunchSchedule(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newPunchSched()
	a, b, c := peer.ID("a"), peer.ID("b"), peer.ID("c")

	if old, changed := s.observe(a, pathRelayed, true, t0); !changed || old != pathNone {
		t.Fatalf("observe a relayed: old %q changed %v", old, changed)
	}
	s.observe(b, pathRelayed, false, t0) // we dialled: b coordinates
	s.observe(c, pathDirect, false, t0)
	if d, ok := s.wake(t0); !ok || d != punchFirstRetry {
		t.Fatalf("wake = %v %v, want %v", d, ok, punchFirstRetry)
	}
	if due := s.due(t0.Add(time.Second)); len(due) != 0 {
		t.Fatalf("due after 1 s: %v, want none (go-libp2p's own attempt goes first)", due)
	}
	now := t0.Add(punchFirstRetry)
	if due := s.due(now); len(due) != 1 || due[0] != a {
		t.Fatalf("due at 2 s: %v, want [a] only", due)
	}
	if due := s.due(now.Add(time.Hour)); len(due) != 0 {
		t.Fatalf("due while a's attempt runs: %v, want none", due)
	}
	if _, ok := s.wake(now); ok {
		t.Fatal("wake while the only retried member is busy")
	}
	// Failures: the waits double up to the cap and stay there.
	var waits []time.Duration
	for range 7 {
		now = now.Add(40 * time.Second) // a long failing attempt
		w, _ := s.done(a, false, now)
		waits = append(waits, w)
		if d, ok := s.wake(now); !ok || d != w {
			t.Fatalf("wake after a failure = %v %v, want %v", d, ok, w)
		}
		if due := s.due(now.Add(w - time.Millisecond)); len(due) != 0 {
			t.Fatalf("due before the backoff ended: %v", due)
		}
		now = now.Add(w)
		if due := s.due(now); len(due) != 1 {
			t.Fatalf("not due after the backoff %v", w)
		}
	}
	want := []time.Duration{4 * time.Second, 8 * time.Second, 16 * time.Second, 25 * time.Second, 25 * time.Second, 25 * time.Second, 25 * time.Second}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	// The cap is reported once per relayed episode.
	now = now.Add(time.Second)
	if _, capped := s.done(a, false, now); capped {
		t.Error("cap reported twice")
	}

	// A trigger (new local address) resets the backoff, but not sooner
	// than punchMinGap after the last attempt ended.
	s.trigger("", now.Add(time.Second))
	if due := s.due(now.Add(time.Second)); len(due) != 0 {
		t.Fatalf("due 1 s after the last attempt: %v", due)
	}
	if due := s.due(now.Add(punchMinGap)); len(due) != 1 {
		t.Fatal("not due punchMinGap after a trigger")
	}
	now = now.Add(punchMinGap + time.Second)
	if w, _ := s.done(a, false, now); w != 4*time.Second {
		t.Fatalf("wait after the trigger's failed attempt = %v, want the backoff restarted (4 s)", w)
	}
	// A per-peer trigger touches only that peer.
	s.trigger(b, now.Add(time.Second))
	if due := s.due(now.Add(time.Second)); len(due) != 0 {
		t.Fatalf("trigger(b) made %v due", due)
	}

	// The attempt ends direct: nothing more for a.
	now = now.Add(4 * time.Second)
	s.due(now)
	s.done(a, true, now)
	if old, changed := s.observe(a, pathDirect, false, now); !changed || old != pathRelayed {
		t.Fatalf("observe a direct: old %q changed %v", old, changed)
	}
	if _, ok := s.wake(now); ok {
		t.Fatal("an attempt is scheduled with no member relayed by a connection we received")
	}
	// Back to relayed (the direct connection dropped): retried again,
	// from the start of the backoff.
	now = now.Add(time.Minute)
	if old, changed := s.observe(a, pathRelayed, true, now); !changed || old != pathDirect {
		t.Fatalf("observe a relayed again: old %q changed %v", old, changed)
	}
	if d, ok := s.wake(now); !ok || d != punchFirstRetry {
		t.Fatalf("wake after direct→relayed = %v %v, want %v", d, ok, punchFirstRetry)
	}
	// b now has an inbound relayed connection too: ours to coordinate.
	s.observe(b, pathRelayed, true, now)
	if due := s.due(now.Add(punchFirstRetry)); len(due) != 2 {
		t.Fatalf("due = %v, want a and b", due)
	}
	// Offline members are forgotten once their attempt ended.
	s.observe(b, pathNone, false, now)
	if _, ok := s.peers[b]; !ok {
		t.Fatal("b forgotten while its attempt runs")
	}
	s.done(b, false, now)
	if _, ok := s.peers[b]; ok {
		t.Fatal("offline b still tracked after its attempt")
	}
	if _, changed := s.observe(c, pathDirect, false, now); changed {
		t.Fatal("unchanged path reported as a change")
	}
}

// TestConnRateLimiterRelays: every relayed connection counts against the
// relay's IP address, so a configured relay gets a far larger budget of
// new connections than any other address (go-libp2p's default: a burst
// of 16 per IPv4 address).
func TestConnRateLimiterRelays(t *testing.T) {
	relayAddr := ma.StringCast("/ip4/1.2.0.1/udp/4001/quic-v1")
	relays := []peer.AddrInfo{{ID: peer.ID("relay"), Addrs: []ma.Multiaddr{relayAddr, ma.StringCast("/ip4/1.2.0.1/tcp/4001")}}}
	l := connRateLimiter(relays)
	count := func(ip string) int {
		n := 0
		for range 300 {
			if l.Allow(netip.MustParseAddr(ip)) {
				n++
			}
		}
		return n
	}
	if n := count("1.2.0.1"); n < 200 {
		t.Errorf("relay address: %d of 300 new connections allowed at once, want ≥ 200", n)
	}
	if n := count("1.2.0.9"); n > 20 {
		t.Errorf("other address: %d of 300 new connections allowed at once, want go-libp2p's default burst (16)", n)
	}
	if n := count("127.0.0.1"); n != 300 {
		t.Errorf("loopback: %d of 300 allowed, want all", n)
	}
}
