package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node"
)

// BenchmarkTunnelIperf3: iperf3 through a tunnel between two meshd daemons
// on loopback (`mesh expose` on B, `mesh tunnel --background` on A), beside
// iperf3 directly to the same server in the same run, over TCP and then over
// QUIC; and the round-trip latency of a 1-byte echo, directly and through
// the tunnel. b.N is not used: each run takes seconds.
//
//	go test -run '^$' -bench BenchmarkTunnelIperf3 -benchtime 1x ./node/e2e/
//
// Results go to testout/bench-tunnel.txt.
func BenchmarkTunnelIperf3(b *testing.B) {
	bin, err := exec.LookPath("iperf3")
	if err != nil {
		b.Skip("iperf3 not installed")
	}
	const secs = 5
	const pings, opens = 200, 200

	port := freePort(b)
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	tunStartIperfServer(b, bin, port)
	echoAddr := tunEchoServer(b)

	var report strings.Builder
	fmt.Fprintf(&report, "BenchmarkTunnelIperf3 %s, GOMAXPROCS=%d, NumCPU=%d\n",
		time.Now().UTC().Format(time.RFC3339), runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Fprintf(&report, "two meshd processes on loopback; iperf3 -c -t %d -J, one stream, receiver's end.sum_received; direct and tunnel runs interleaved\n", secs)
	fmt.Fprintf(&report, "latency: 1-byte echo (Go echo server in the benchmark process), %d round trips on an open connection, and %d × (connect + first echo); median (p90)\n\n", pings, opens)

	tunIperfReady(b, bin, target)

	for _, tr := range []struct{ name, listen string }{
		{"tcp", "/ip4/127.0.0.1/tcp/0"},
		{"quic", "/ip4/127.0.0.1/udp/0/quic-v1"},
	} {
		a := startDaemonOn(b, "tun-a-"+tr.name, []string{tr.listen})
		c := startDaemonOn(b, "tun-b-"+tr.name, []string{tr.listen})
		a.mesh("init", "--name", "alpha")
		c.mesh("join", a.invite(), "--name", "bravo")
		idA, idC := a.status().DeviceID, c.status().DeviceID
		waitFor(b, 20*time.Second, "alpha and bravo online over "+tr.name, func() bool { return a.online(idC) && c.online(idA) })

		c.mesh("expose", "iperf", target)
		c.mesh("expose", "echo", echoAddr)
		iperfTun := tunOpen(b, a, "bravo", "iperf")
		echoTun := tunOpen(b, a, "bravo", "echo")

		// Warm up the tunnel (and wait until the far side answers).
		tunIperfReady(b, bin, iperfTun.LocalAddr)
		var direct, tunneled []float64
		for range 2 {
			direct = append(direct, tunIperfRun(b, bin, target, secs))
			tunneled = append(tunneled, tunIperfRun(b, bin, iperfTun.LocalAddr, secs))
		}
		d, t := tunMean(direct), tunMean(tunneled)
		fmt.Fprintf(&report, "over %-4s  iperf3 direct %7.1f MB/s %s   tunnel %7.1f MB/s %s   tunnel/direct %5.1f%%\n",
			tr.name, d, tunRuns(direct), t, tunRuns(tunneled), 100*t/d)
		b.ReportMetric(d, tr.name+"-direct-MB/s")
		b.ReportMetric(t, tr.name+"-tunnel-MB/s")
		b.ReportMetric(100*t/d, tr.name+"-%direct")

		// Echo latency, directly then through the tunnel, with both
		// daemons running (idle) in both cases.
		dRTT, dOpen := tunEchoLatency(b, echoAddr, pings, opens)
		rtt, open := tunEchoLatency(b, echoTun.LocalAddr, pings, opens)
		fmt.Fprintf(&report, "over %-4s  direct echo  rtt %s  open %s\n", tr.name, tunStat(dRTT), tunStat(dOpen))
		addRTT := tunUS(tunPct(rtt, 50)) - tunUS(tunPct(dRTT, 50))
		addOpen := tunUS(tunPct(open, 50)) - tunUS(tunPct(dOpen, 50))
		fmt.Fprintf(&report, "over %-4s  tunnel echo  rtt %s  open %s  added: rtt %+.0f µs, open %+.0f µs\n",
			tr.name, tunStat(rtt), tunStat(open), addRTT, addOpen)
		b.ReportMetric(tunUS(tunPct(dRTT, 50)), tr.name+"-direct-rtt-us")
		b.ReportMetric(tunUS(tunPct(rtt, 50)), tr.name+"-tunnel-rtt-us")
		b.ReportMetric(addRTT, tr.name+"-added-rtt-us")
		b.ReportMetric(addOpen, tr.name+"-added-open-us")

		// The daemon's own count of what went through the iperf tunnel.
		for _, ti := range tunList(b, a) {
			if ti.ID == iperfTun.ID {
				st, _ := json.Marshal(ti.Stats)
				fmt.Fprintf(&report, "over %-4s  iperf tunnel stats on alpha: %s\n", tr.name, st)
			}
		}
		a.mesh("tunnel", "close", strconv.Itoa(iperfTun.ID))
		a.mesh("tunnel", "close", strconv.Itoa(echoTun.ID))
		a.stop()
		c.stop()
	}
	fmt.Fprintf(&report, "\nissue target: tunnel ≥ 50%% of direct iperf3\n")
	writeReport(b, "bench-tunnel.txt", report.String())
}

// tunStartIperfServer runs `iperf3 -s` on 127.0.0.1:port for the whole
// benchmark; it is killed and waited for at cleanup.
func tunStartIperfServer(b *testing.B, bin string, port int) {
	b.Helper()
	srv := exec.Command(bin, "-s", "-B", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Wait(); close(done) }()
	b.Cleanup(func() {
		_ = srv.Process.Kill()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			b.Errorf("iperf3 server did not exit within 10s of SIGKILL")
		}
	})
}

// tunIperfReady runs short iperf3 tests against addr until one succeeds
// (the server, or the far end of a tunnel, needs a moment), within 20 s.
func tunIperfReady(b *testing.B, bin, addr string) {
	b.Helper()
	var lastErr error
	waitFor(b, 20*time.Second, "iperf3 answering at "+addr, func() bool {
		_, lastErr = tunIperf(bin, addr, "-n", "8M")
		if lastErr != nil {
			time.Sleep(200 * time.Millisecond)
		}
		return lastErr == nil
	})
}

// tunIperfRun runs one timed iperf3 test against addr, in MB/s as the
// receiver counted them.
func tunIperfRun(b *testing.B, bin, addr string, secs int) float64 {
	b.Helper()
	mbs, err := tunIperf(bin, addr, "-t", strconv.Itoa(secs))
	if err != nil {
		b.Fatalf("iperf3 to %s: %v", addr, err)
	}
	return mbs
}

func tunIperf(bin, addr string, args ...string) (float64, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-c", host, "-p", port, "-J"}, args...)...)
	out, err := cmd.Output()
	var res struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				Bytes         float64 `json:"bytes"`
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		if err == nil {
			err = jerr
		}
		return 0, fmt.Errorf("iperf3 client: %w", err)
	}
	if res.Error != "" {
		return 0, errors.New(res.Error)
	}
	if err != nil {
		return 0, err
	}
	if res.End.SumReceived.Bytes == 0 {
		return 0, errors.New("iperf3: receiver counted no bytes")
	}
	return res.End.SumReceived.BitsPerSecond / 8 / 1e6, nil
}

// tunEchoServer is a TCP echo service on loopback, closed at cleanup.
func tunEchoServer(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(c, c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			})
		}
	})
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// tunEchoLatency measures 1-byte echo round trips on one open connection,
// and connect + first echo on fresh connections.
func tunEchoLatency(b *testing.B, addr string, pings, opens int) (rtt, open []time.Duration) {
	b.Helper()
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			b.Fatalf("dial %s: %v", addr, err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		return c
	}
	buf := []byte{1}
	ping := func(c net.Conn) {
		if _, err := c.Write(buf); err != nil {
			b.Fatalf("echo via %s: %v", addr, err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatalf("echo via %s: %v", addr, err)
		}
	}
	c := dial()
	for range 50 { // warm up
		ping(c)
	}
	for range pings {
		t0 := time.Now()
		ping(c)
		rtt = append(rtt, time.Since(t0))
	}
	c.Close()
	for range opens {
		t0 := time.Now()
		c := dial()
		ping(c)
		open = append(open, time.Since(t0))
		c.Close()
	}
	return rtt, open
}

// tunOpen opens a daemon-held tunnel and returns it as `mesh tunnels
// --json` lists it.
func tunOpen(b *testing.B, d *daemon, device, service string) node.TunnelInfo {
	b.Helper()
	d.mesh("tunnel", device, service, "--background")
	for _, ti := range slices.Backward(tunList(b, d)) {
		if ti.Service == service {
			return ti
		}
	}
	b.Fatalf("tunnel to %s/%s not listed", device, service)
	return node.TunnelInfo{}
}

func tunList(b *testing.B, d *daemon) []node.TunnelInfo {
	b.Helper()
	var list []node.TunnelInfo
	out := d.mesh("tunnels", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		b.Fatalf("tunnels --json: %v\n%s", err, out)
	}
	return list
}

func tunPct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func tunUS(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func tunStat(d []time.Duration) string {
	return fmt.Sprintf("%5.0f µs (%5.0f)", tunUS(tunPct(d, 50)), tunUS(tunPct(d, 90)))
}

func tunMean(v []float64) float64 {
	var sum float64
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}

func tunRuns(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
