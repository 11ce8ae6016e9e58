package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkScaleFiles: memory and time against the number of files, for
// 10,000 and 100,000 small files (1 KiB, 1,000 to a directory; 1,000,000
// too with MESHWORK_BENCH_MILLION=1, on this machine's disk; MESHWORK_BENCH_SCALE
// lists other counts, e.g. 5000,20000). For each count, a fresh pair of
// meshd: A indexes the tree (`folder add` → `mesh wait`), B joins and syncs
// it (`folder join` → `mesh wait`), then A restarts and rescans the
// unchanged tree (start → `mesh wait`). Reported: each step's time, the
// peak RSS (VmHWM) of A through index and sync, of B through sync, and of
// A through its restart and rescan; a plain copy of the same files (8
// workers, temp file + fsync + rename) in the same run as the time
// baseline; and each peak as a multiple of the smallest count's (target:
// at most 2x at 1,000,000 files). Report: testout/bench-scale.txt.
func BenchmarkScaleFiles(b *testing.B) {
	counts := []int{10000, 100000}
	if os.Getenv("MESHWORK_BENCH_MILLION") == "1" {
		counts = append(counts, 1000000)
	}
	if v := os.Getenv("MESHWORK_BENCH_SCALE"); v != "" {
		counts = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("MESHWORK_BENCH_SCALE=%q: want counts such as 10000,100000", v)
			}
			counts = append(counts, n)
		}
	}
	type row struct {
		n                             int
		index, sync, rescan, floor    time.Duration
		senderPeak, recvPeak, restart int64
	}
	var rows []row
	for _, n := range counts {
		root := b.TempDir()
		src := filepath.Join(root, "src")
		files := make([]stFile, n)
		for i := range files {
			files[i] = stFile{rel: fmt.Sprintf("d%04d/f%07d.bin", i/1000, i), size: 1 << 10}
		}
		stWriteTree(b, src, files, 5)
		r := row{n: n}
		r.floor = libFloorRun(b, src, filepath.Join(root, "floor"), files).took

		a, c := stBenchMeshPair(b)
		t0 := time.Now()
		a.mesh("folder", "add", src, "--name", "scale")
		a.mesh("wait", "scale", "--timeout", "120m")
		r.index = time.Since(t0)
		waitFor(b, 60*time.Second, "b sees the folder", func() bool { return strings.Contains(c.mesh("folder", "list"), "scale") })
		dst := filepath.Join(root, "dst")
		t1 := time.Now()
		c.mesh("folder", "join", "scale", dst)
		c.mesh("wait", "scale", "--timeout", "120m")
		r.sync = time.Since(t1)
		r.senderPeak, r.recvPeak = peakRSS(a.cmd.Process.Pid), peakRSS(c.cmd.Process.Pid)
		if err := stSameTree(src, dst, files); err != nil {
			b.Fatalf("%d files: b is not whole after `mesh wait`: %v", n, err)
		}
		c.stop()
		a.stop()
		t2 := time.Now()
		a.start()
		a.mesh("wait", "scale", "--timeout", "120m")
		r.rescan = time.Since(t2)
		r.restart = peakRSS(a.cmd.Process.Pid)
		a.stop()
		rows = append(rows, r)
		b.ReportMetric(float64(r.recvPeak)/(1<<20), fmt.Sprintf("recv-MiB-%d", n))
		b.ReportMetric(float64(r.senderPeak)/(1<<20), fmt.Sprintf("send-MiB-%d", n))
		b.ReportMetric(r.sync.Seconds(), fmt.Sprintf("sync-s-%d", n))
		if err := os.RemoveAll(root); err != nil { // before the next, larger count
			b.Fatal(err)
		}
	}
	mib := func(v int64) float64 { return float64(v) / (1 << 20) }
	var rep strings.Builder
	fmt.Fprintf(&rep, "BenchmarkScaleFiles %s: files of 1 KiB, 1,000 to a directory, two meshd on loopback TCP\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&rep, "%10s %10s %10s %12s %10s %14s %14s %14s\n", "files", "index s", "sync s", "restart+scan", "floor s", "A peak MiB", "B peak MiB", "A restart MiB")
	for _, r := range rows {
		fmt.Fprintf(&rep, "%10d %10.2f %10.2f %12.2f %10.2f %14.0f %14.0f %14.0f\n", r.n, r.index.Seconds(), r.sync.Seconds(), r.rescan.Seconds(), r.floor.Seconds(), mib(r.senderPeak), mib(r.recvPeak), mib(r.restart))
	}
	if len(rows) > 1 {
		first, last := rows[0], rows[len(rows)-1]
		ratio := func(x, y int64) float64 { return float64(x) / float64(max(y, 1)) }
		fmt.Fprintf(&rep, "peak at %d files / peak at %d: sender %.2fx, receiver %.2fx, restarted sender %.2fx   target <= 2x: %s\n",
			last.n, first.n, ratio(last.senderPeak, first.senderPeak), ratio(last.recvPeak, first.recvPeak), ratio(last.restart, first.restart),
			stMet(ratio(last.senderPeak, first.senderPeak) <= 2 && ratio(last.recvPeak, first.recvPeak) <= 2 && ratio(last.restart, first.restart) <= 2))
		fmt.Fprintf(&rep, "sync time / floor time at %d files: %.2fx\n", last.n, last.sync.Seconds()/last.floor.Seconds())
	}
	writeReport(b, "bench-scale.txt", rep.String())
}
