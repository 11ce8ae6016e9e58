package e2e

import (
	"bufio"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/node"
)

// Benchmarks of whole daemons. Each writes its figures to testout/ at the
// repository root as well as reporting them to `go test -bench`.

const benchOut = "../../testout"

// writeIncompressible fills dir with n files of size bytes each of
// pseudo-random (incompressible) data.
func writeIncompressible(tb testing.TB, dir string, n int, size int64, seed uint64) []string {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	buf := make([]byte, 1<<20)
	var paths []string
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("file%03d.bin", i))
		f, err := os.Create(p)
		if err != nil {
			tb.Fatal(err)
		}
		for left := size; left > 0; {
			for j := 0; j+8 <= len(buf); j += 8 {
				v := rng.Uint64()
				buf[j], buf[j+1], buf[j+2], buf[j+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
				buf[j+4], buf[j+5], buf[j+6], buf[j+7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
			}
			k := min(left, int64(len(buf)))
			if _, err := f.Write(buf[:k]); err != nil {
				tb.Fatal(err)
			}
			left -= k
		}
		if err := f.Close(); err != nil {
			tb.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// rawReceiverEnv makes the test binary act as the receiving process of
// the raw TCP baseline (see TestMain's caller below).
const rawReceiverEnv = "MESHWORK_RAW_RECEIVER"

func init() {
	if os.Getenv(rawReceiverEnv) == "" {
		return
	}
	// Receiver: accept one connection, read it all, print the byte count.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	c, err := ln.Accept()
	if err != nil {
		os.Exit(1)
	}
	var dst io.Writer = io.Discard
	var f *os.File
	if dir := os.Getenv(rawReceiverEnv); dir != "1" { // write into a file in dir, then fsync
		if f, err = os.CreateTemp(dir, "raw-*"); err != nil {
			os.Exit(1)
		}
		dst = f
	}
	n, _ := io.CopyBuffer(dst, c, make([]byte, 1<<20))
	if f != nil {
		if f.Sync() != nil || f.Close() != nil {
			os.Exit(1)
		}
	}
	fmt.Println(n)
	os.Exit(0)
}

// rawTCP sends the files over one plain TCP connection to a receiving
// process (no encryption, no hashing): the physical limit of loopback on
// this machine, measured in the same run. With intoDir set, the receiver
// also writes the bytes into a file there and fsyncs it (the same disk work
// a receiving meshd does).
func rawTCP(tb testing.TB, paths []string, intoDir string) (bytes int64, elapsed time.Duration) {
	bytes, elapsed, _ = rawTCPCPU(tb, paths, intoDir)
	return bytes, elapsed
}

// cpuTime is this process's CPU time (user + system) so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawTCPCPU is rawTCP that also returns the CPU time both processes spent
// (this one sending, the child receiving).
func rawTCPCPU(tb testing.TB, paths []string, intoDir string) (bytes int64, elapsed, cpu time.Duration) {
	tb.Helper()
	mode := "1"
	if intoDir != "" {
		mode = intoDir
	}
	ch := startChild(tb, rawReceiverEnv+"="+mode, "raw receiver")
	defer ch.stop()
	sc := ch.out
	c, err := net.Dial("tcp", strings.TrimSpace(sc.Text()))
	if err != nil {
		tb.Fatal(err)
	}
	start, cpu0 := time.Now(), cpuTime()
	buf := make([]byte, 1<<20)
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			tb.Fatal(err)
		}
		n, err := io.CopyBuffer(c, f, buf)
		f.Close()
		if err != nil {
			tb.Fatal(err)
		}
		bytes += n
	}
	c.(*net.TCPConn).CloseWrite()
	if !sc.Scan() {
		tb.Fatal("raw receiver did not report")
	}
	elapsed = time.Since(start)
	if got := strings.TrimSpace(sc.Text()); got != fmt.Sprint(bytes) {
		tb.Fatalf("raw receiver got %s bytes, sent %d", got, bytes)
	}
	cpu = cpuTime() - cpu0
	c.Close()
	return bytes, elapsed, cpu + ch.wait()
}

// child is the test binary run again as the receiving side of a baseline.
type child struct {
	cmd    *exec.Cmd
	out    *bufio.Scanner // its standard output, by line
	waited bool
}

// startChild runs the test binary with env (KEY=VALUE) set, which makes it
// the receiver named what, and reads its first line (its address).
func startChild(tb testing.TB, env, what string) *child {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env)
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	ch := &child{cmd: cmd, out: bufio.NewScanner(out)}
	if !ch.out.Scan() {
		ch.stop()
		tb.Fatalf("%s did not start", what)
	}
	return ch
}

// wait waits for the child to exit and returns the CPU time it used.
func (ch *child) wait() time.Duration {
	ch.waited = true
	if err := ch.cmd.Wait(); err != nil {
		return 0
	}
	if ru, ok := ch.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return 0
}

// stop kills the child unless it was waited for: after a failure on the
// way, it must not wait forever.
func (ch *child) stop() {
	if !ch.waited {
		ch.cmd.Process.Kill()
		ch.cmd.Wait()
	}
}

// cryptoFloor measures, on one core, the two costs every byte of a
// transfer must pay twice (once per side) beyond moving it over TCP: the
// BLAKE3 verification of its chunk and the AES-128-GCM of the TLS 1.3
// channel (16 KiB records, the size TLS uses). It returns ns per byte of
// each.
func cryptoFloor() (hashNs, aeadNs float64) {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 131)
	}
	const rounds = 256 // 256 MiB each
	t0 := time.Now()
	for range rounds {
		blobs.SumChunk(buf)
	}
	hashNs = float64(time.Since(t0).Nanoseconds()) / float64(rounds*len(buf))
	blk, _ := aes.NewCipher(make([]byte, 16))
	gcm, _ := cipher.NewGCM(blk)
	nonce := make([]byte, gcm.NonceSize())
	out := make([]byte, 0, 16<<10+gcm.Overhead())
	t0 = time.Now()
	for range rounds {
		for off := 0; off < len(buf); off += 16 << 10 {
			out = gcm.Seal(out[:0], nonce, buf[off:off+16<<10], nil)
		}
	}
	aeadNs = float64(time.Since(t0).Nanoseconds()) / float64(rounds*len(buf))
	return hashNs, aeadNs
}

// cpuProfile fetches a CPU profile of a daemon over its control socket.
func cpuProfile(d *daemon, seconds int, dst string) error {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", node.SocketPath(d.home))
	}}}
	resp, err := hc.Get(fmt.Sprintf("http://meshd/debug/pprof/profile?seconds=%d", seconds))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// BenchmarkTransfer1GiB: a 1 GiB set of files (16 × 64 MiB, incompressible)
// fetched by one meshd from another on loopback, beside a raw TCP copy of
// the same bytes between two processes. Once over QUIC and once over TCP.
func BenchmarkTransfer1GiB(b *testing.B) {
	const files, size = 16, 64 << 20
	data := b.TempDir()
	paths := writeIncompressible(b, data, files, size, 1)
	total := int64(files * size)
	began := time.Now()

	// The raw copy takes a few hundred ms and varies by 2x from run to run
	// here (and the machine's speed drifts within a minute): three copies
	// before everything else and three after the meshd transfers, and the
	// median of the six.
	type rawRun struct {
		bytes     int64
		time, cpu time.Duration
	}
	var runs []rawRun
	rawRuns := func() {
		for range 3 {
			var r rawRun
			r.bytes, r.time, r.cpu = rawTCPCPU(b, paths, "")
			runs = append(runs, r)
		}
	}
	mbsOf := func(r rawRun) float64 { return float64(r.bytes) / r.time.Seconds() / 1e6 }
	rawRuns()
	// The crypto every byte must pay twice, once per side: a BLAKE3
	// verification and an AES-GCM pass.
	hashNs, aeadNs := cryptoFloor()
	// The stack meshd runs on, alone: one libp2p stream (TCP, TLS, yamux)
	// carrying the same bytes, without and with BLAKE3 on both sides.
	type streamRun struct {
		n         int64
		took, cpu time.Duration
	}
	var streams [2]streamRun // [0] plain, [1] hashing
	for i, hash := range []bool{false, true} {
		streams[i].n, streams[i].took, streams[i].cpu = p2pStream(b, paths, hash)
	}
	stackNs := float64(streams[0].cpu.Nanoseconds()) / float64(streams[0].n) // both processes
	diskBytes, diskTime := rawTCP(b, paths, b.TempDir())
	diskMBs := float64(diskBytes) / diskTime.Seconds() / 1e6
	iperfMBs, iperfErr := iperf3(total)

	type meshRun struct {
		name       string
		elapsed    time.Duration
		cpuA, cpuC time.Duration
	}
	var meshRuns []meshRun
	for _, transport := range []struct{ name, listen string }{
		{"quic", "/ip4/127.0.0.1/udp/0/quic-v1"},
		{"tcp", "/ip4/127.0.0.1/tcp/0"},
	} {
		a := startDaemonOn(b, "a-"+transport.name, []string{transport.listen})
		c := startDaemonOn(b, "b-"+transport.name, []string{transport.listen})
		joinPair(b, a, c)

		out := a.mesh("blob", "add", data)
		var refs []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			refs = append(refs, strings.Fields(line)[0])
		}
		dst := b.TempDir()
		profA := filepath.Join(benchOut, "transfer-"+transport.name+"-sender.pprof")
		profC := filepath.Join(benchOut, "transfer-"+transport.name+"-receiver.pprof")
		profDone := make(chan struct{}, 2)
		go func() { _ = cpuProfile(a, 2, profA); profDone <- struct{}{} }()
		go func() { _ = cpuProfile(c, 2, profC); profDone <- struct{}{} }()
		cpuA0, cpuC0 := a.cpu(), c.cpu()
		start := time.Now()
		c.mesh(append([]string{"blob", "get", "--quiet", "--out", dst}, refs...)...)
		r := meshRun{name: transport.name, elapsed: time.Since(start), cpuA: a.cpu() - cpuA0, cpuC: c.cpu() - cpuC0}
		<-profDone
		<-profDone
		for i, ref := range refs {
			if fi, err := os.Stat(filepath.Join(dst, ref)); err != nil || fi.Size() != size {
				b.Fatalf("blob %d not fetched whole: %v", i, err)
			}
		}
		meshRuns = append(meshRuns, r)
		a.stop()
		c.stop()
	}
	rawRuns()

	var report strings.Builder
	fmt.Fprintf(&report, "BenchmarkTransfer1GiB %s (%d files of %d MiB)\n", began.UTC().Format(time.RFC3339), files, size>>20)
	var all []string
	for _, r := range runs {
		all = append(all, fmt.Sprintf("%.0f", mbsOf(r)))
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].time < runs[j].time })
	med := runs[len(runs)/2-1] // of the two middle runs the faster, so that the ratio is not flattered
	rawMBs := mbsOf(med)
	fmt.Fprintf(&report, "raw loopback TCP (2 processes, no crypto, receiver discards): %.0f MB/s (%s, %s CPU in both processes; median of 6, 3 before and 3 after the rest, in order: %s MB/s)\n",
		rawMBs, med.time.Round(time.Millisecond), med.cpu.Round(time.Millisecond), strings.Join(all, ", "))
	b.ReportMetric(rawMBs, "raw-MB/s")
	// The ceiling for any verified, encrypted transfer on this machine:
	// every byte costs the raw TCP copy's CPU plus a BLAKE3 verification
	// and an AES-GCM pass on each side, and there are runtime.NumCPU()
	// cores to pay with (reading the file and writing it out are free in
	// this bound).
	tcpNs := float64(med.cpu.Nanoseconds()) / float64(med.bytes)
	floorMBs := float64(runtime.NumCPU()) / (tcpNs + 2*hashNs + 2*aeadNs) * 1e3
	fmt.Fprintf(&report, "CPU per byte, measured here: TCP copy %.2f ns (both processes), BLAKE3 %.2f ns (%.0f MB/s on one core), AES-128-GCM %.2f ns (%.0f MB/s)\n",
		tcpNs, hashNs, 1e3/hashNs, aeadNs, 1e3/aeadNs)
	fmt.Fprintf(&report, "ceiling for a verified encrypted transfer on %d cores: %d / (TCP + 2×BLAKE3 + 2×AES-GCM) = %.0f MB/s = %.0f%% of raw TCP\n",
		runtime.NumCPU(), runtime.NumCPU(), floorMBs, 100*floorMBs/rawMBs)
	b.ReportMetric(floorMBs, "ceiling-MB/s")
	for i, st := range streams {
		mbs := float64(st.n) / st.took.Seconds() / 1e6
		what, metric := "one libp2p stream (TCP+TLS+yamux, as meshd), receiver discards", "p2p-MB/s"
		if i == 1 {
			what, metric = "the same, BLAKE3 of every MiB on both sides", "p2p-hash-MB/s"
		}
		fmt.Fprintf(&report, "%s: %.0f MB/s (%s, %s CPU in both processes) = %.0f%% of raw TCP\n",
			what, mbs, st.took.Round(time.Millisecond), st.cpu.Round(time.Millisecond), 100*mbs/rawMBs)
		b.ReportMetric(mbs, metric)
	}
	// What this stack allows a verified transfer on these cores: the
	// stream's measured CPU per byte plus the two BLAKE3 passes, with
	// perfect parallelism and reading and writing files free.
	stackMBs := float64(runtime.NumCPU()) / (stackNs + 2*hashNs) * 1e3
	fmt.Fprintf(&report, "ceiling on this stack: %d / (libp2p stream %.2f ns + 2×BLAKE3) = %.0f MB/s = %.0f%% of raw TCP\n",
		runtime.NumCPU(), stackNs, stackMBs, 100*stackMBs/rawMBs)
	b.ReportMetric(stackMBs, "stack-ceiling-MB/s")
	fmt.Fprintf(&report, "raw loopback TCP into a file + fsync (no crypto, no hashing): %.0f MB/s (%s)\n", diskMBs, diskTime.Round(time.Millisecond))
	b.ReportMetric(diskMBs, "raw-disk-MB/s")
	if iperfErr == nil {
		fmt.Fprintf(&report, "iperf3 loopback TCP (-n %d MiB, default buffers): %.0f MB/s\n", total>>20, iperfMBs)
		b.ReportMetric(iperfMBs, "iperf3-MB/s")
	} else {
		fmt.Fprintf(&report, "iperf3 baseline skipped: %v\n", iperfErr)
	}
	for _, r := range meshRuns {
		mbs := float64(total) / r.elapsed.Seconds() / 1e6
		fmt.Fprintf(&report, "meshd → meshd over %s: %.0f MB/s (%s), %.0f%% of raw TCP, %.0f%% of raw TCP into a file, %.0f%% of the ceiling, %.0f%% of the ceiling on this stack\n",
			r.name, mbs, r.elapsed.Round(time.Millisecond), 100*mbs/rawMBs, 100*mbs/diskMBs, 100*mbs/floorMBs, 100*mbs/stackMBs)
		// Where the cores went: both daemons' CPU per byte against the bare
		// stream's and the two BLAKE3 passes.
		meshNs := float64((r.cpuA + r.cpuC).Nanoseconds()) / float64(total)
		fmt.Fprintf(&report, "  CPU of both daemons: %s sending + %s receiving = %.2f ns per byte, %.2f cores busy on average (the libp2p stream alone %.2f ns + 2×BLAKE3 %.2f ns = %.2f ns; the rest, %.2f ns, is reading and writing files, the blob protocol and the index)\n",
			r.cpuA.Round(10*time.Millisecond), r.cpuC.Round(10*time.Millisecond), meshNs, (r.cpuA+r.cpuC).Seconds()/r.elapsed.Seconds(),
			stackNs, 2*hashNs, stackNs+2*hashNs, meshNs-stackNs-2*hashNs)
		b.ReportMetric(mbs, r.name+"-MB/s")
		b.ReportMetric(mbs/rawMBs, r.name+"-ratio")
		b.ReportMetric(meshNs, r.name+"-cpu-ns/B")
	}
	fmt.Fprintf(&report, "CPU profiles (first 2 s of each transfer): %s/transfer-*.pprof\n", benchOut)
	writeReport(b, "bench-transfer.txt", report.String())
}

// iperf3 measures loopback TCP with iperf3 (server and client processes)
// sending n bytes, in MB/s as the receiver counted them.
func iperf3(n int64) (float64, error) {
	bin, err := exec.LookPath("iperf3")
	if err != nil {
		return 0, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "-s", "-1", "-B", "127.0.0.1", "-p", fmt.Sprint(port))
	if err := srv.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }() // never wait on a server that got no client
	var out []byte
	for i := 0; i < 50; i++ { // the server needs a moment to listen
		out, err = exec.CommandContext(ctx, bin, "-c", "127.0.0.1", "-p", fmt.Sprint(port), "-n", fmt.Sprint(n), "-J").Output()
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return 0, fmt.Errorf("iperf3 client: %w", err)
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, fmt.Errorf("iperf3 output: %w", err)
	}
	if res.End.SumReceived.BitsPerSecond <= 0 {
		// Seen here now and then: a run that reports no figure, rather
		// than a figure of 0.
		return 0, fmt.Errorf("iperf3 reported no received rate (error %q)", res.Error)
	}
	return res.End.SumReceived.BitsPerSecond / 8 / 1e6, nil
}

func writeReport(tb testing.TB, name, text string) {
	tb.Helper()
	if err := os.MkdirAll(benchOut, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(benchOut, name), []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("\n%s", text)
}

// BenchmarkSwarm1GiB: C fetches 1 GiB that both A and B hold. Uplinks are
// modelled with send caps (no tc/netem here): A serves at most 100 MB/s, B
// (the throttled one) 40 MB/s. Three fetchers measure A alone, A and B
// together, and A and B with B killed (SIGKILL) a few seconds in.
func BenchmarkSwarm1GiB(b *testing.B) {
	const files, size = 16, 64 << 20
	const capA, capB = "100MB", "40MB"
	data := b.TempDir()
	writeIncompressible(b, data, files, size, 2)
	total := float64(files * size)
	var report strings.Builder
	fmt.Fprintf(&report, "BenchmarkSwarm1GiB %s: A capped at %s/s, B at %s/s\n", time.Now().UTC().Format(time.RFC3339), capA, capB)

	tcp := []string{"/ip4/127.0.0.1/tcp/0"}
	a := startDaemonOn(b, "a", tcp, "--max-send-rate", capA)
	peerB := startDaemonOn(b, "b", tcp, "--max-send-rate", capB)
	a.mesh("init", "--name", "a")
	peerB.mesh("join", a.invite(), "--name", "b")
	var fetchers []*daemon
	for i := 1; i <= 3; i++ {
		c := startDaemonOn(b, fmt.Sprintf("c%d", i), tcp)
		c.mesh("join", a.invite(), "--name", fmt.Sprintf("c%d", i))
		fetchers = append(fetchers, c)
	}
	var refs []string
	for _, line := range strings.Split(strings.TrimSpace(a.mesh("blob", "add", data)), "\n") {
		refs = append(refs, strings.Fields(line)[0])
	}
	peerB.mesh("blob", "add", data) // B indexes the same files: it holds the same chunks
	idA, idB := a.status().DeviceID, peerB.status().DeviceID

	fetch := func(c *daemon, during func()) time.Duration {
		waitFor(b, 20*time.Second, c.name+" online with a", func() bool { return c.online(idA) })
		dst := b.TempDir()
		start := time.Now()
		done := make(chan struct{})
		if during != nil {
			go func() { during(); close(done) }()
		} else {
			close(done)
		}
		c.mesh(append([]string{"blob", "get", "--quiet", "--out", dst}, refs...)...)
		<-done
		elapsed := time.Since(start)
		// A finished fetcher holds the data too and would serve the next
		// one (swarming from every member): take it away.
		c.stop()
		return elapsed
	}

	// 1. A alone (B stopped).
	peerB.stop()
	tA := fetch(fetchers[0], nil)
	fmt.Fprintf(&report, "from A alone:           %6.2fs  %4.0f MB/s\n", tA.Seconds(), total/tA.Seconds()/1e6)

	// 2. A and B.
	peerB.start("--max-send-rate", capB)
	waitFor(b, 20*time.Second, "b online with c2", func() bool { return fetchers[1].online(idB) })
	tAB := fetch(fetchers[1], nil)
	fmt.Fprintf(&report, "from A and B:           %6.2fs  %4.0f MB/s  (%.0f%% faster than A alone; B's cap is %.0f%% of A's)\n",
		tAB.Seconds(), total/tAB.Seconds()/1e6, 100*(tA.Seconds()/tAB.Seconds()-1), 40.0)

	// 3. A and B, B killed mid-way.
	waitFor(b, 20*time.Second, "b online with c3", func() bool { return fetchers[2].online(idB) })
	tKill := fetch(fetchers[2], func() {
		time.Sleep(3 * time.Second) // let B serve part of the transfer first
		_ = peerB.cmd.Process.Kill()
	})
	fmt.Fprintf(&report, "from A and B, B killed at 3s: %6.2fs  %4.0f MB/s (completed)\n", tKill.Seconds(), total/tKill.Seconds()/1e6)
	b.ReportMetric(total/tA.Seconds()/1e6, "A-MB/s")
	b.ReportMetric(total/tAB.Seconds()/1e6, "AB-MB/s")
	b.ReportMetric(tA.Seconds()/tAB.Seconds(), "speedup")
	writeReport(b, "bench-swarm.txt", report.String())
	if tAB >= tA {
		b.Errorf("swarming did not help: %s with A and B, %s with A alone", tAB, tA)
	}
}

// settleCreates probes with settleProbeFiles new files and is satisfied
// when each costs at most settledCreate.
const (
	settleProbeFiles = 400
	settledCreate    = 60 * time.Microsecond
)

// settleCreates waits, before a timed run, until creating a file in dir costs
// what it normally does, and returns how long it waited and the last probe's
// cost per file. On ext4 without a journal (this machine), allocating an
// inode skips every inode freed in the last 60 s (360 s while the inode
// table is not yet written back), one by one: after a mass deletion, such as
// a previous benchmark's temporary trees, each file creation costs
// 0.3–0.8 ms instead of ~10 µs for minutes, which moved the initial-sync
// figure by 30%. The probe files stay until dir is removed (deleting them
// would be a deletion of its own).
func settleCreates(tb testing.TB, dir string) (waited, perFile time.Duration) {
	tb.Helper()
	const (
		files     = settleProbeFiles
		maxWait   = 7 * time.Minute
		probeStep = 3 * time.Second
	)
	start := time.Now()
	for n := 0; ; n++ {
		syscall.Sync()
		d := filepath.Join(dir, fmt.Sprintf("probe-%d", n))
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
		t0 := time.Now()
		for i := range files {
			f, err := os.Create(filepath.Join(d, strconv.Itoa(i)))
			if err != nil {
				tb.Fatal(err)
			}
			f.Close()
		}
		perFile = time.Since(t0) / files
		if perFile <= settledCreate || time.Since(start) > maxWait {
			return time.Since(start).Round(time.Second), perFile
		}
		time.Sleep(probeStep) // waiting out a kernel heuristic, not an event
	}
}
