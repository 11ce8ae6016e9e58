package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/node/natlab"
)

// Hole-punch retries (issue 20, failure 2): a relayed pair of cone-NATed
// devices whose first punch failed used to stay relayed. meshd now punches
// again (node/punch.go) on new relayed connections, on address changes and
// with backoff while relayed. Each round is a fresh lab (fresh NAT state).
// A direct path between the two routers is blocked while the mesh forms,
// so that no NAT mapping between them exists when a round starts.

// hpRounds is how many rounds each scenario runs: 2, or 20 with
// MESHWORK_SOAK=1 (make soak).
func hpRounds() int {
	if os.Getenv("MESHWORK_SOAK") != "" {
		return 20
	}
	return 2
}

// hpWithin is the bound the issue sets on becoming direct.
const hpWithin = 30 * time.Second

// hpBlock drops everything between the two routers' WAN addresses (in
// both routers' FORWARD chains, before NAT, so the dropped packets leave
// no conntrack entry); the returned func removes the rules again.
func hpBlock(t *testing.T, r1, r2 *natlab.Router) (unblock func()) {
	t.Helper()
	rule := func(op string, r, other *natlab.Router) error {
		args := []string{"netns", "exec", r.NS(), "iptables", op, "FORWARD"}
		if op == "-I" {
			args = append(args, "1")
		}
		args = append(args, "-o", "wan", "-d", other.WANIP().String()+"/32", "-j", "DROP")
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	for _, rr := range [][2]*natlab.Router{{r1, r2}, {r2, r1}} {
		if err := rule("-I", rr[0], rr[1]); err != nil {
			t.Fatal(err)
		}
	}
	done := false
	return func() {
		t.Helper()
		if done {
			return
		}
		done = true
		for _, rr := range [][2]*natlab.Router{{r1, r2}, {r2, r1}} {
			if err := rule("-D", rr[0], rr[1]); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// hpSetup builds a lab with a relay and two cone routers, and a mesh of
// alpha and bravo behind them that formed (through the relay) while the
// direct path between the routers was blocked. It returns the pair,
// relayed, and the unblock func.
func hpSetup(t *testing.T) (p *meshPair, unblock func()) {
	t.Helper()
	lab, relayHost := newLab(t)
	r1, r2 := lab.Router("home1", natlab.Cone), lab.Router("home2", natlab.Cone)
	unblock = hpBlock(t, r1, r2)
	p = newMeshPair(t, relayHost, r1.Host("a"), r2.Host("b"))
	t.Cleanup(func() { hpDump(t, p) })
	p.waitOnline(30 * time.Second)
	for _, c := range []struct {
		d  *labDaemon
		id string
	}{{p.a, p.idB}, {p.b, p.idA}} {
		if dev := c.d.device(c.id); deref(dev.Connection) != "relayed" {
			t.Fatalf("with the routers blocked from each other %s sees %s, want relayed", c.d.name, describe(dev))
		}
	}
	return p, unblock
}

// hpDump logs the lines of both daemons' logs that tell how they reached
// each other (reservations, dials, punches, path changes) when the test
// failed, or always with HP_DEBUG=1.
func hpDump(t *testing.T, p *meshPair) {
	if !t.Failed() && os.Getenv("HP_DEBUG") == "" {
		return
	}
	keys := []string{"reservation", "member connected", "dial member", "DHT", "punch", "path changed", "DirectConnect", "proxy conn"}
	for _, d := range []*labDaemon{p.a, p.b} {
		for _, l := range strings.Split(d.currentLog(), "\n") {
			for _, k := range keys {
				if strings.Contains(l, k) {
					t.Logf("%s: %.600s", d.name, l)
					break
				}
			}
		}
	}
}

// hpEvents opens d's live event stream (GET /api/v1/events on its HTTP
// API, which listens on loopback inside d's namespace: the connection is
// made there).
func hpEvents(t *testing.T, d *labDaemon) <-chan sseEvent {
	t.Helper()
	st := d.status()
	if st.HTTP == nil {
		t.Fatalf("%s: HTTP API is off", d.name)
	}
	tok, err := os.ReadFile(filepath.Join(d.home, "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	host := d.host
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := host.Do(func() (err error) {
			c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}}
	req, err := http.NewRequest("GET", "http://"+*st.HTTP+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s: events stream: %v %v", d.name, err, resp)
	}
	t.Cleanup(func() { resp.Body.Close(); tr.CloseIdleConnections() })
	return readSSE(resp.Body)
}

// hpWaitPathEvents reads ev until it has seen both a "path" event saying
// that peer is now reached directly and a "devices" event listing it as
// direct; it returns the path event's "from" ("relayed", or "offline"
// when the first connection was direct).
func hpWaitPathEvents(t *testing.T, d *labDaemon, ev <-chan sseEvent, peerID string) (from string) {
	t.Helper()
	sawPath, sawDevices := false, false
	waitEvent(t, ev, 20*time.Second, d.name+"'s path and devices events for the direct connection", func(e sseEvent) bool {
		switch e.Type {
		case "path":
			var pe node.PathEvent
			if err := json.Unmarshal([]byte(e.Data), &pe); err != nil {
				t.Fatalf("path event %q: %v", e.Data, err)
			}
			if pe.ID == peerID && deref(pe.To) == "direct" && !sawPath {
				sawPath, from = true, "offline"
				if pe.From != nil {
					from = *pe.From
				}
			}
		case "devices":
			var devs []node.Device
			if err := json.Unmarshal([]byte(e.Data), &devs); err != nil {
				t.Fatalf("devices event %q: %v", e.Data, err)
			}
			for _, dev := range devs {
				if dev.ID == peerID && deref(dev.Connection) == "direct" {
					sawDevices = true
				}
			}
		}
		return sawPath && sawDevices
	})
	return from
}

// hpWaitNews waits until d's news has a "path" entry about peer written
// by d after since.
func hpWaitNews(t *testing.T, d *labDaemon, peerID string, since time.Time) node.NewsEntry {
	t.Helper()
	var found node.NewsEntry
	waitFor(t, 20*time.Second, d.name+"'s news of the direct connection", func() bool {
		var list []node.NewsEntry
		out := d.mesh("news", "--json")
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("mesh news --json: %v: %s", err, out)
		}
		for _, e := range list {
			if e.Kind == "path" && e.Peer == peerID && e.Device == d.name && !e.Time.Before(since.Add(-time.Second)) &&
				strings.Contains(e.Text, "connected directly") {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// hpWaitDirect waits until both devices reach each other directly and
// returns how long that took from start.
func hpWaitDirect(t *testing.T, p *meshPair, start time.Time, within time.Duration) time.Duration {
	t.Helper()
	onA := waitConnection(t, p.a, p.idB, "direct", within-time.Since(start))
	onB := waitConnection(t, p.b, p.idA, "direct", within-time.Since(start))
	took := time.Since(start)
	t.Logf("direct after %v: alpha sees %s; bravo sees %s", took.Round(time.Millisecond), describe(onA), describe(onB))
	return took
}

// hpMeetRelayed waits until alpha and bravo are connected through the
// relay (both see the other online and relayed).
func hpMeetRelayed(t *testing.T, p *meshPair) {
	t.Helper()
	waitFor(t, hpWithin, "alpha and bravo to meet through the relay", func() bool {
		onA, onB := p.a.device(p.idB), p.b.device(p.idA)
		return onA.Online && onB.Online && deref(onA.Connection) == "relayed" && deref(onB.Connection) == "relayed"
	})
}

// hpPunchFailed reports whether one of the devices logged a failed punch
// to the other: go-libp2p's own attempt, or a retry of meshd's.
func hpPunchFailed(p *meshPair) bool {
	for _, c := range []struct {
		d  *labDaemon
		id string
	}{{p.a, p.idB}, {p.b, p.idA}} {
		if c.d.holePunchFailed(c.id) || c.d.logHas(`msg="hole punch retry failed"`, c.id) {
			return true
		}
	}
	return false
}

// TestNATLabPunchRelayLate: two cone-NATed members start while their relay
// is down (each has tried to reserve a slot and failed) and the relay
// starts after them: they meet through it and are direct within 30 s of
// the relay's start. The routers cannot reach each other until the pair
// has met through the relay (otherwise the devices, which know each
// other's public addresses from before, may dial each other directly at
// the same moment, which a cone NAT lets through: a path that needs no
// punch). The change shows in the events stream (path and devices events)
// and in the news.
func TestNATLabPunchRelayLate(t *testing.T) {
	var took []time.Duration
	for round := 1; round <= hpRounds(); round++ {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			p, unblock := hpSetup(t)
			p.a.stopLab()
			p.b.stopLab()
			p.relay.proc.stop()

			p.a.restart()
			p.b.restart()
			evA := hpEvents(t, p.a)
			for _, d := range []*labDaemon{p.a, p.b} {
				waitFor(t, 30*time.Second, d.name+" tried to reserve a slot on the relay that is down", func() bool {
					return strings.Contains(d.currentLog(), `msg="relay reservation failed"`)
				})
			}
			p.relay.restart()
			start := time.Now()
			hpMeetRelayed(t, p)
			unblock()
			took = append(took, hpWaitDirect(t, p, start, hpWithin))
			if from := hpWaitPathEvents(t, p.a, evA, p.idB); from != "relayed" {
				t.Errorf("alpha's path event to bravo says direct from %s, want from relayed", from)
			}
			hpWaitNews(t, p.a, p.idB, start)
			stA, stB := p.a.status(), p.b.status()
			t.Logf("meshd's retries: alpha %d attempts, %d direct; bravo %d attempts, %d direct",
				stA.HolePunchAttempts, stA.HolePunchDirect, stB.HolePunchAttempts, stB.HolePunchDirect)
		})
	}
	t.Logf("relay started after the devices: relay up → direct both ways per round: %v", took)
}

// TestNATLabPunchAfterRelayRestart: a cone-NATed pair whose punch failed
// (the routers could not reach each other) is relayed; the relay is
// restarted while the pair is relayed: the pair meets through it again
// and (the routers can reach each other again) is direct within 30 s of
// the relay's restart, and the change shows in the events stream and the
// news.
func TestNATLabPunchAfterRelayRestart(t *testing.T) {
	var took []time.Duration
	for round := 1; round <= hpRounds(); round++ {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			p, unblock := hpSetup(t)
			waitFor(t, 60*time.Second, "a failed hole punch between alpha and bravo", func() bool { return hpPunchFailed(p) })
			if dev := p.a.device(p.idB); deref(dev.Connection) != "relayed" {
				t.Fatalf("after the failed punch alpha sees %s, want relayed", describe(dev))
			}
			evA := hpEvents(t, p.a)
			p.relay.proc.stop()
			waitFor(t, 30*time.Second, "alpha and bravo to lose each other with the relay", func() bool {
				return !p.a.device(p.idB).Online && !p.b.device(p.idA).Online
			})
			p.relay.restart()
			start := time.Now()
			// As in TestNATLabPunchRelayLate: unblocked once they met
			// through the relay again.
			hpMeetRelayed(t, p)
			unblock()
			took = append(took, hpWaitDirect(t, p, start, hpWithin))
			hpWaitPathEvents(t, p.a, evA, p.idB)
			hpWaitNews(t, p.a, p.idB, start)
		})
	}
	t.Logf("relay restarted while relayed: relay up → direct both ways per round: %v", took)
}

// TestNATLabPunchRetry: a cone-NATed pair whose punch failed stays
// connected through the relay; once the routers can reach each other, a
// retry of meshd's (not go-libp2p's single attempt, which is over) makes
// the connection direct, with nothing else changing.
func TestNATLabPunchRetry(t *testing.T) {
	p, unblock := hpSetup(t)
	// go-libp2p's own attempt (on the relayed connection of the join) is
	// over once it logged its failure: what punches after the unblock is
	// a retry.
	waitFor(t, 90*time.Second, "go-libp2p's hole punch between alpha and bravo to fail", func() bool {
		return p.a.holePunchFailed(p.idB) || p.b.holePunchFailed(p.idA)
	})
	unblock()
	start := time.Now()
	// A retry may be in its backoff (at most 25 s) or in an attempt that
	// began while blocked (a direct dial and three punches of up to 10 s).
	hpWaitDirect(t, p, start, 90*time.Second)
	stA, stB := p.a.status(), p.b.status()
	t.Logf("meshd's retries: alpha %d attempts, %d direct; bravo %d attempts, %d direct",
		stA.HolePunchAttempts, stA.HolePunchDirect, stB.HolePunchAttempts, stB.HolePunchDirect)
	if stA.HolePunchDirect+stB.HolePunchDirect == 0 {
		t.Errorf("direct, but neither status counts a retry that ended direct (alpha %+v, bravo %+v)",
			[2]int64{stA.HolePunchAttempts, stA.HolePunchDirect}, [2]int64{stB.HolePunchAttempts, stB.HolePunchDirect})
	}
	hpWaitNews(t, p.a, p.idB, start)
}

var hpTime = regexp.MustCompile(`^time=(\S+)`)

// hpRetryStarts returns when d started punch retries to peer (meshd's
// DEBUG line "hole punch retry"), oldest first.
func hpRetryStarts(d *labDaemon, peerID string) []time.Time {
	var out []time.Time
	for _, line := range strings.Split(d.currentLog(), "\n") {
		if !strings.Contains(line, `msg="hole punch retry" `) || !strings.Contains(line, peerID) {
			continue
		}
		if m := hpTime.FindStringSubmatch(line); m != nil {
			if ts, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
				out = append(out, ts)
			}
		}
	}
	return out
}

// hpCheckNoSpin checks that d's punch retries to a peer it cannot punch
// through to back off: at least two retries so far, never two within the
// 2 s minimum gap nor further apart than the 25 s cap plus one attempt
// (a direct dial and three punches), and at most one INFO line.
func hpCheckNoSpin(t *testing.T, d *labDaemon, peerID string) {
	t.Helper()
	var starts []time.Time
	waitFor(t, 30*time.Second, d.name+"'s punch retries", func() bool {
		starts = hpRetryStarts(d, peerID)
		return len(starts) >= 2
	})
	var gaps []time.Duration
	for i := 1; i < len(starts); i++ {
		gaps = append(gaps, starts[i].Sub(starts[i-1]))
	}
	t.Logf("%s's punch retries to a peer behind a symmetric NAT: %d, gaps %v", d.name, len(starts), gaps)
	for i, g := range gaps {
		if g < 2*time.Second-50*time.Millisecond {
			t.Errorf("retries %d and %d are %v apart, want ≥ 2 s (gaps %v)", i, i+1, g, gaps)
		}
		if g > 30*time.Second+10*time.Second*4 {
			t.Errorf("retries %d and %d are %v apart: more than the 25 s cap plus one attempt (gaps %v)", i, i+1, g, gaps)
		}
	}
	if n := strings.Count(d.currentLog(), `level=INFO msg="hole punching keeps failing`); n > 1 {
		t.Errorf("%s logged the failing retries %d times at INFO, want at most once", d.name, n)
	}
}
