package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkSmallFilesInitial: the first sync of 20,000 files of 10 KiB
// (200 MB) from one meshd to another, the case where per-version costs
// (signing on the sender's index, verification on the receiver) weigh
// most. Reported: the sender's index (`folder add` → `mesh wait`), the
// receiver's initial sync (`folder join` → `mesh wait`), and the CPU time
// both daemons spent in each (from /proc: steadier than wall time on a
// shared machine). MESHWORK_BENCH_BINDIR runs it with other binaries (e.g.
// built from the commit before signatures) for a before/after comparison;
// MESHWORK_BENCH_FILES changes the number of files.
//
//	go test ./node/e2e -run '^$' -bench BenchmarkSmallFilesInitial -benchtime 1x
//
// 2026-12-01, 2 shared cores (other jobs running: noisy), old = 52b374b
// (unsigned), new = signed, runs in the order new, old, new, old, new:
//
//	         sync-s               sync-cpu-s           index-s           index-cpu-s
//	old      26.70 38.34          30.57 33.64          2.03 2.39         1.79 2.18
//	new      25.05 28.88 38.25    25.41 31.78 31.71    2.82 4.29 3.31    2.31 3.46 2.46
//
// Expected from BenchmarkSignVerify (syncproto/exchange: ~77 µs per sign +
// verify, verify ~2/3 of it): ~1 s more CPU on the receiver for 20,000
// versions (~3% of sync CPU, below the noise here) and ~0.5 s on the
// sender's index.
func BenchmarkSmallFilesInitial(b *testing.B) {
	if dir := os.Getenv("MESHWORK_BENCH_BINDIR"); dir != "" {
		old := binDir
		binDir = dir
		b.Cleanup(func() { binDir = old })
	}
	n := 20000
	if v := os.Getenv("MESHWORK_BENCH_FILES"); v != "" {
		fmt.Sscan(v, &n)
	}
	files := make([]stFile, n)
	for i := range files {
		files[i] = stFile{rel: fmt.Sprintf("d%03d/f%06d.bin", i/200, i), size: 10 << 10}
	}
	root := b.TempDir()
	src := filepath.Join(root, "src")
	stWriteTree(b, src, files, 7)
	for i := 0; i < b.N; i++ {
		a, c := stBenchMeshPair(b)
		cpu0 := a.cpu() + c.cpu()
		t0 := time.Now()
		a.mesh("folder", "add", src, "--name", "small")
		a.mesh("wait", "small", "--timeout", "30m")
		index, cpu1 := time.Since(t0), a.cpu()+c.cpu()
		waitFor(b, 30*time.Second, "b sees the folder", func() bool { return strings.Contains(c.mesh("folder", "list"), "small") })
		dst := filepath.Join(root, fmt.Sprintf("dst%d", i))
		cpu2 := a.cpu() + c.cpu()
		t1 := time.Now()
		c.mesh("folder", "join", "small", dst)
		c.mesh("wait", "small", "--timeout", "30m")
		join, cpu3 := time.Since(t1), a.cpu()+c.cpu()
		if err := stSameTree(src, dst, files); err != nil {
			b.Fatalf("b is not whole after `mesh wait`: %v", err)
		}
		b.ReportMetric(index.Seconds(), "index-s")
		b.ReportMetric((cpu1 - cpu0).Seconds(), "index-cpu-s")
		b.ReportMetric(join.Seconds(), "sync-s")
		b.ReportMetric((cpu3 - cpu2).Seconds(), "sync-cpu-s")
		a.stop()
		c.stop()
		if err := os.RemoveAll(filepath.Join(src, ".meshwork")); err != nil {
			b.Fatal(err)
		}
	}
}
