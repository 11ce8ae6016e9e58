package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node"
)

// Benchmarks of Meshwork against Syncthing (Debian's syncthing 1.19 here)
// doing the same work in the same run, on loopback, two real processes of
// each. The figures go to testout/bench-vs-syncthing-*.txt. They are
// skipped when syncthing is not installed. MESHWORK_BENCH_SMALL=1 selects
// quick sizes. Run one alone with e.g.
//
//	go test ./node/e2e -run '^$' -bench BenchmarkSyncVsSyncthingLatency -benchtime 1x
//
// The initial sync is BenchmarkLibraryVsSyncthing (library_bench_test.go).
//
// The timer of `go test` runs through set-up too: read the reported
// metrics (and the report), not ns/op.

// BenchmarkSyncVsSyncthingLatency: a one-file change (4 KiB rewritten in
// place) on A until the file is identical on B, polled every 2 ms, median
// of 50, both tools with their filesystem watchers on. Syncthing's
// fsWatcherDelayS is set to 1, its minimum. Target: Meshwork's median under
// 500 ms.
func BenchmarkSyncVsSyncthingLatency(b *testing.B) {
	syncthingPath(b)
	n, mode := 50, "full"
	if stBenchSmall() {
		n, mode = 20, "small (MESHWORK_BENCH_SMALL)"
	}
	const perChange = 10 * time.Second
	root := b.TempDir()

	// Meshwork.
	a, c := stBenchMeshPair(b)
	srcM, dstM := stMkdir(b, filepath.Join(root, "mesh-a")), filepath.Join(root, "mesh-b")
	if err := os.WriteFile(filepath.Join(srcM, "note.txt"), []byte("initial\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	a.mesh("folder", "add", srcM, "--name", "notes")
	a.mesh("wait", "notes")
	waitFor(b, 30*time.Second, "b sees the folder", func() bool { return strings.Contains(c.mesh("folder", "list"), "notes") })
	c.mesh("folder", "join", "notes", dstM)
	c.mesh("wait", "notes", "--timeout", "60s")
	time.Sleep(500 * time.Millisecond) // watchers set up on both sides
	meshS, meshTO := stPropagation(b, filepath.Join(srcM, "note.txt"), filepath.Join(dstM, "note.txt"), n, perChange, 1)
	a.stop()
	c.stop()

	// Syncthing.
	srcS, dstS := stMkdir(b, filepath.Join(root, "st-a")), stMkdir(b, filepath.Join(root, "st-b"))
	if err := os.WriteFile(filepath.Join(srcS, "note.txt"), []byte("initial\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	sa, sb := syncthingPair(b, func(self, peer *stInstance) []stFolder {
		path := srcS
		if self.name == "st-b" {
			path = dstS
		}
		return []stFolder{{ID: "notes", Path: path, Peers: []*stInstance{peer}, Watcher: true, WatchDelayS: 1, RescanPeriodS: 3600}}
	})
	waitFor(b, 2*time.Minute, "syncthing initial sync of the note", func() bool {
		ok, _ := sb.inSync("notes", 1)
		if !ok {
			return false
		}
		st, err := sa.status("notes")
		return err == nil && st.State == "idle"
	})
	time.Sleep(2 * time.Second) // watchers start after the first scan
	stS, stTO := stPropagation(b, filepath.Join(srcS, "note.txt"), filepath.Join(dstS, "note.txt"), n, perChange, 1)
	sa.stop()
	sb.stop()

	mMed, sMed := stMedian(meshS), stMedian(stS)
	var r strings.Builder
	fmt.Fprintf(&r, "BenchmarkSyncVsSyncthingLatency %s, mode %s\n", time.Now().UTC().Format(time.RFC3339), mode)
	fmt.Fprintf(&r, "one file (4 KiB, rewritten in place) changed on A → identical on B, polled every 2 ms; %d changes, the next 0.3–1.3 s (random) after each arrives; per-change deadline %s\n", n, perChange)
	line := func(name string, s []time.Duration, timeouts int) {
		fmt.Fprintf(&r, "  %-42s median %7.1f ms  p90 %7.1f ms  min %7.1f ms  max %7.1f ms  (%d samples, %d over the deadline)\n", name,
			stMs(stMedian(s)), stMs(stPercentile(s, 0.9)), stMs(stPercentile(s, 0)), stMs(stPercentile(s, 1)), len(s), timeouts)
	}
	line("Meshwork (watcher, 100 ms debounce)", meshS, meshTO)
	line("Syncthing "+syncthingVersion()+" (fsWatcherDelayS=1, its minimum)", stS, stTO)
	ratio := 0.0
	if mMed > 0 {
		ratio = float64(sMed) / float64(mMed)
	}
	fmt.Fprintf(&r, "  Syncthing median / Meshwork median: %.1fx\n", ratio)
	fmt.Fprintf(&r, "  target Meshwork median < 500 ms: %s\n", stMet(meshTO == 0 && len(meshS) > 0 && mMed < 500*time.Millisecond))
	b.ReportMetric(stMs(mMed), "meshwork-median-ms")
	b.ReportMetric(stMs(sMed), "syncthing-median-ms")
	b.ReportMetric(ratio, "speedup")
	writeReport(b, "bench-vs-syncthing-latency.txt", r.String())
	if len(meshS) == 0 || len(stS) == 0 {
		b.Errorf("no change arrived within %s for one of the tools (meshwork %d timeouts, syncthing %d)", perChange, meshTO, stTO)
	}
}

// BenchmarkSyncVsSyncthingRescan: a full rescan of 100,000 unchanged small
// files (in 1,000 directories), each tool alone on its own copy of the same
// tree, after its initial index. Meshwork: the folder wait endpoint (what
// `mesh wait` calls: a full scan, then in sync with no online peer);
// Syncthing: POST /rest/db/scan until /rest/db/status is idle again. Median
// of 5 rescans. Target: Meshwork faster.
func BenchmarkSyncVsSyncthingRescan(b *testing.B) {
	syncthingPath(b)
	n, mode := 100000, "full"
	if stBenchSmall() {
		n, mode = 10000, "small (MESHWORK_BENCH_SMALL)"
	}
	const rounds = 5
	files := stManySmall(n, 5)
	root := b.TempDir()
	dirM, dirS := filepath.Join(root, "mesh"), filepath.Join(root, "st")
	genStart := time.Now()
	stWriteTree(b, dirM, files, 5)
	stWriteTree(b, dirS, files, 5)
	gen := time.Since(genStart)

	// Meshwork: one daemon.
	a := startDaemonOn(b, "a", []string{"/ip4/127.0.0.1/tcp/0"})
	a.mesh("init", "--name", "alpha")
	t0 := time.Now()
	a.mesh("folder", "add", dirM, "--name", "many")
	if _, err := stMeshWait(a, "many", 30*time.Minute); err != nil {
		b.Fatal(err)
	}
	meshIndex := time.Since(t0)
	var infos []node.FolderInfo
	if err := json.Unmarshal([]byte(a.mesh("folder", "list", "--json")), &infos); err != nil || len(infos) != 1 {
		b.Fatalf("folder list: %v %+v", err, infos)
	}
	meshItems := infos[0].Items
	var meshS []time.Duration
	for i := 0; i < rounds; i++ {
		d, err := stMeshWait(a, "many", 10*time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		meshS = append(meshS, d)
	}
	a.stop()

	// Syncthing: one device.
	s := newSyncthing(b, "st-a")
	s.writeConfig(nil, []stFolder{{ID: "many", Path: dirS, Watcher: true, WatchDelayS: 10, RescanPeriodS: 3600}})
	t0 = time.Now()
	s.start()
	s.waitScanned("many", int64(n), 30*time.Minute)
	stIndex := time.Since(t0)
	var stS []time.Duration
	var postOnly []time.Duration
	for i := 0; i < rounds; i++ {
		start := time.Now()
		if err := s.do("POST", "/rest/db/scan?folder=many", nil, nil); err != nil {
			b.Fatalf("syncthing scan: %v", err)
		}
		postOnly = append(postOnly, time.Since(start))
		s.waitScanned("many", int64(n), 10*time.Minute)
		stS = append(stS, time.Since(start))
	}
	s.stop()

	mMed, sMed := stMedian(meshS), stMedian(stS)
	ratio := float64(sMed) / float64(mMed)
	var r strings.Builder
	fmt.Fprintf(&r, "BenchmarkSyncVsSyncthingRescan %s, mode %s\n", time.Now().UTC().Format(time.RFC3339), mode)
	fmt.Fprintf(&r, "%d unchanged files of 256 B–2 KiB in %d directories, one copy per tool, generated in %s (not timed); median of %d full rescans after the initial index\n",
		n, (n+99)/100, gen.Round(time.Millisecond), rounds)
	fmt.Fprintf(&r, "  Meshwork  (GET /v1/folders/NAME/wait, one device): median %8.1f ms  (all: %s)\n", stMs(mMed), stMsList(meshS))
	fmt.Fprintf(&r, "  Syncthing %s (POST /rest/db/scan → idle):  median %8.1f ms  (all: %s; the POST alone: median %.1f ms)\n",
		syncthingVersion(), stMs(sMed), stMsList(stS), stMs(stMedian(postOnly)))
	fmt.Fprintf(&r, "  Syncthing / Meshwork: %.2fx   target Meshwork faster: %s\n", ratio, stMet(mMed < sMed))
	fmt.Fprintf(&r, "not timed above: initial index: Meshwork %.2f s (%d items; `folder add` → wait), Syncthing %.2f s (process start → idle with every file)\n",
		meshIndex.Seconds(), meshItems, stIndex.Seconds())
	b.ReportMetric(stMs(mMed), "meshwork-ms")
	b.ReportMetric(stMs(sMed), "syncthing-ms")
	b.ReportMetric(ratio, "speedup")
	writeReport(b, "bench-vs-syncthing-rescan.txt", r.String())
}

func stMs(d time.Duration) float64 { return float64(d) / 1e6 }

func stMsList(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.0f", stMs(d))
	}
	return strings.Join(parts, ", ") + " ms"
}
