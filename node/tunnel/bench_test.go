package tunnel

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The transfer benchmarks set the tunnel against the same thing done
// directly on loopback in the same run, and report the ratio: this
// machine's loopback is the physical limit (see /work/shared/NOTES.md).
//
//	go test -run XXX -bench . -benchtime 1x ./node/tunnel/
//
// MESHWORK_TUNNEL_TRANSPORTS=tcp,quic selects transports;
// MESHWORK_IPERF_SECONDS sets the length of each iperf3 run (default 5),
// MESHWORK_IPERF_ROUNDS the number of interleaved rounds (default 2).
// Results are also written to testout/tunnel-bench.txt at the repository root.

const benchOut = "../../testout/tunnel-bench.txt"

var allTransports = []struct{ name, listen string }{
	{"tcp", "/ip4/127.0.0.1/tcp/0"},
	{"quic", "/ip4/127.0.0.1/udp/0/quic-v1"},
}

// transports returns the transports to measure: all, or those named in
// MESHWORK_TUNNEL_TRANSPORTS (comma-separated).
func transports() []struct{ name, listen string } {
	want := os.Getenv("MESHWORK_TUNNEL_TRANSPORTS")
	if want == "" {
		return allTransports
	}
	var out []struct{ name, listen string }
	for _, tr := range allTransports {
		if slices.Contains(strings.Split(want, ","), tr.name) {
			out = append(out, tr)
		}
	}
	return out
}

// BenchmarkIperf3Tunnel runs iperf3 directly on loopback and through a
// tunnel between two in-process hosts, over TCP and over QUIC, once each
// (b.N is not used: each run takes seconds).
func BenchmarkIperf3Tunnel(b *testing.B) {
	iperf, err := exec.LookPath("iperf3")
	if err != nil {
		b.Skip("iperf3 not installed")
	}
	secs := 5
	if s, err := strconv.Atoi(os.Getenv("MESHWORK_IPERF_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	port := startIperfServer(b, iperf)
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	rounds := 2
	if s, err := strconv.Atoi(os.Getenv("MESHWORK_IPERF_ROUNDS")); err == nil && s > 0 {
		rounds = s
	}
	// Other work on this machine moves the numbers by a factor of two from
	// one run to the next, so the modes are interleaved over rounds and
	// compared by their means.
	type mode struct {
		name string
		addr string
		runs []float64
	}
	modes := []*mode{{name: "direct", addr: target}}
	for _, tr := range transports() {
		p := newPair(b, tr.listen)
		if err := p.server.Expose("iperf", target, nil); err != nil {
			b.Fatal(err)
		}
		modes = append(modes, &mode{name: tr.name, addr: p.listen(b, "iperf").Addr().String()})
	}
	for range rounds {
		for _, m := range modes {
			m.runs = append(m.runs, runIperfClient(b, iperf, m.addr, secs))
		}
	}
	lines := []string{fmt.Sprintf("iperf3 -c -t %d -O 1, one stream, loopback, GOMAXPROCS=%d, %d interleaved rounds; mean (runs)",
		secs, runtime.GOMAXPROCS(0), rounds)}
	direct := mean(modes[0].runs)
	b.ReportMetric(direct, "direct-MB/s")
	lines = append(lines, fmt.Sprintf("  direct           %7.1f MB/s          %s", direct, fmtRuns(modes[0].runs)))
	for _, m := range modes[1:] {
		got := mean(m.runs)
		ratio := got / direct
		b.ReportMetric(got, m.name+"-MB/s")
		b.ReportMetric(ratio*100, m.name+"-%direct")
		lines = append(lines, fmt.Sprintf("  tunnel over %-4s %7.1f MB/s %5.1f%%  %s", m.name, got, ratio*100, fmtRuns(m.runs)))
	}
	writeBenchResult(b, "iperf3", lines)
}

// BenchmarkLatency measures a 1-byte echo round trip on an open connection
// (1000 ping-pongs) and the time to open a connection and get a first
// 1-byte echo (100 times), directly and through a tunnel over TCP and QUIC.
func BenchmarkLatency(b *testing.B) {
	svc := newService(b, echo)
	const pings, opens = 1000, 100
	measure := func(addr string) (rtt, open []time.Duration) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		buf := []byte{1}
		for range 50 { // warm up
			pingPong(b, c, buf)
		}
		for range pings {
			t0 := time.Now()
			pingPong(b, c, buf)
			rtt = append(rtt, time.Since(t0))
		}
		for range opens {
			t0 := time.Now()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			pingPong(b, c, buf)
			open = append(open, time.Since(t0))
			_ = c.Close()
		}
		return rtt, open
	}
	dRTT, dOpen := measure(svc.addr())
	lines := []string{fmt.Sprintf("1-byte echo: %d round trips on an open connection; %d × (connect + first echo); median (p90)", pings, opens),
		fmt.Sprintf("  direct           rtt %s  open %s", stat(dRTT), stat(dOpen))}
	b.ReportMetric(us(median(dRTT)), "direct-rtt-µs")
	for _, tr := range transports() {
		p := newPair(b, tr.listen)
		if err := p.server.Expose("echo", svc.addr(), nil); err != nil {
			b.Fatal(err)
		}
		f := p.listen(b, "echo")
		rtt, open := measure(f.Addr().String())
		added, addedOpen := us(median(rtt))-us(median(dRTT)), us(median(open))-us(median(dOpen))
		b.ReportMetric(us(median(rtt)), tr.name+"-rtt-µs")
		b.ReportMetric(added, tr.name+"-added-rtt-µs")
		b.ReportMetric(addedOpen, tr.name+"-added-open-µs")
		lines = append(lines, fmt.Sprintf("  tunnel over %-4s rtt %s  open %s  added: rtt +%.0f µs, open +%.0f µs",
			tr.name, stat(rtt), stat(open), added, addedOpen))
	}
	writeBenchResult(b, "latency", lines)
}

func mean(v []float64) float64 {
	var sum float64
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}

func fmtRuns(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func pingPong(b *testing.B, c net.Conn, buf []byte) {
	if _, err := c.Write(buf); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		b.Fatal(err)
	}
}

func median(d []time.Duration) time.Duration { return pct(d, 50) }

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func stat(d []time.Duration) string {
	return fmt.Sprintf("%6.0f µs (%6.0f)", us(median(d)), us(pct(d, 90)))
}

// startIperfServer runs iperf3 -s on a free loopback port until the
// benchmark ends; it returns once the server says it is listening.
func startIperfServer(b *testing.B, iperf string) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cmd := exec.Command(iperf, "-s", "-B", "127.0.0.1", "-p", strconv.Itoa(port), "--forceflush")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	ready := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Server listening") && ready != nil {
				close(ready)
				ready = nil
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case <-ready:
	case <-exited:
		b.Fatal("iperf3 -s exited")
	case <-time.After(10 * time.Second):
		b.Fatal("iperf3 -s did not start")
	}
	return port
}

// runIperfClient runs one iperf3 test against addr and returns the rate
// the receiver measured, in MB/s (10^6 bytes).
func runIperfClient(b *testing.B, iperf, addr string, secs int) float64 {
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+30)*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, iperf, "-c", host, "-p", port, "-t", strconv.Itoa(secs), "-O", "1", "-J").Output()
	if err != nil {
		b.Fatalf("iperf3 -c %s: %v\n%s", addr, err, out)
	}
	var res struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		b.Fatalf("iperf3 output: %v", err)
	}
	if res.Error != "" || res.End.SumReceived.BitsPerSecond == 0 {
		b.Fatalf("iperf3 -c %s: %q", addr, res.Error)
	}
	return res.End.SumReceived.BitsPerSecond / 8 / 1e6
}

// writeBenchResult replaces the section of benchOut for this benchmark.
func writeBenchResult(b *testing.B, section string, lines []string) {
	for _, l := range lines {
		b.Log(l)
	}
	if err := os.MkdirAll(filepath.Dir(benchOut), 0o755); err != nil {
		b.Fatal(err)
	}
	old, _ := os.ReadFile(benchOut)
	sections := map[string]string{}
	var order []string
	for _, part := range strings.Split(string(old), "\n## ") {
		part = strings.TrimPrefix(part, "## ")
		name, body, ok := strings.Cut(part, "\n")
		if !ok || name == "" || strings.HasPrefix(name, "#") {
			continue
		}
		sections[name] = body
		order = append(order, name)
	}
	if _, ok := sections[section]; !ok {
		order = append(order, section)
	}
	sections[section] = time.Now().UTC().Format(time.RFC3339) + "\n" + strings.Join(lines, "\n") + "\n"
	var sb strings.Builder
	sb.WriteString("# node/tunnel benchmarks (go test -run XXX -bench . -benchtime 1x ./node/tunnel/)\n")
	for _, name := range order {
		sb.WriteString("\n## " + name + "\n" + strings.TrimRight(sections[name], "\n") + "\n")
	}
	if err := os.WriteFile(benchOut, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
}
