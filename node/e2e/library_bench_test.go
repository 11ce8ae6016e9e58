package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node"
)

// BenchmarkLibraryVsSyncthing: the first sync of a library from one device
// to another, Meshwork against Syncthing (1.19 here) and against a floor,
// in the same run, on loopback, one shape per sub-benchmark:
//
//   - library: a generated photo library (library_gen_test.go) of 5 GB
//     (MESHWORK_BENCH_LIBRARY_GB sets another size, e.g. 50);
//   - 1MiB: 1,000 files of 1 MiB;
//   - 10KiB: 20,000 files of 10 KiB;
//   - mixed: 2 GiB in ~600 files of 1–8 MiB plus 10,000 of 1–64 KiB (the
//     shape of the earlier BenchmarkSyncVsSyncthingInitial).
//
// Timed from the receiver joining (Meshwork: `mesh folder join`, then `mesh
// wait` returns; Syncthing: the receiver's paused folder is unpaused, until
// its REST API reports completion 100, nothing needed, idle, every file in
// the global and local index) with the sender connected and done indexing
// beforehand; every run's tree is compared with the source afterwards. The
// floor is a plain program doing the file work alone: it copies the same
// files into a new directory with 8 workers, each file written to a
// temporary name, fsynced and renamed. Runs go in the order Meshwork,
// Syncthing, floor, Syncthing, Meshwork, each once file creation has
// settled (settleCreates); the figures are the means of the two runs.
// Peak memory is each process's VmHWM from its start (the sender's covers
// its index as well). Reports: testout/bench-library-SHAPE.txt.
// MESHWORK_BENCH_SMALL=1 selects quick sizes. One shape alone:
//
//	go test ./node/e2e -run '^$' -bench 'BenchmarkLibraryVsSyncthing/1MiB' -benchtime 1x
func BenchmarkLibraryVsSyncthing(b *testing.B) {
	syncthingPath(b)
	for _, sh := range libShapes() {
		b.Run(sh.name, func(b *testing.B) { libBench(b, sh) })
	}
}

// libShape is one data shape of BenchmarkLibraryVsSyncthing.
type libShape struct {
	name, desc string
	gen        func() (files []stFile, detail string)
}

func libShapes() []libShape {
	small := stBenchSmall()
	pick := func(full, quick int64) int64 {
		if small {
			return quick
		}
		return full
	}
	libBytes := pick(5e9, 300e6)
	if v := os.Getenv("MESHWORK_BENCH_LIBRARY_GB"); v != "" {
		if gb, err := strconv.ParseFloat(v, 64); err == nil && gb > 0 {
			libBytes = int64(gb * 1e9)
		}
	}
	same := func(n int64, size int64, dir int) func() ([]stFile, string) {
		return func() ([]stFile, string) {
			files := make([]stFile, n)
			for i := range files {
				files[i] = stFile{rel: fmt.Sprintf("d%03d/f%06d.bin", i/dir, i), size: size}
			}
			return files, ""
		}
	}
	n1, n10 := pick(1000, 100), pick(20000, 2000)
	return []libShape{
		{"library", fmt.Sprintf("generated photo library of %.1f GB", float64(libBytes)/1e9), func() ([]stFile, string) {
			files, mix := libGenerate(libBytes, 1)
			return files, mix.String()
		}},
		{"1MiB", fmt.Sprintf("%d files of 1 MiB", n1), same(n1, 1<<20, 100)},
		{"10KiB", fmt.Sprintf("%d files of 10 KiB", n10), same(n10, 10<<10, 200)},
		{"mixed", "files of 1–8 MiB plus files of 1–64 KiB (the earlier initial-sync shape)", func() ([]stFile, string) {
			files, _ := stPhotoLibrary(pick(2<<30, 200<<20), int(pick(10000, 1000)), 1)
			return files, ""
		}},
	}
}

// libRun is one timed run of one tool.
type libRun struct {
	took               time.Duration
	recvPeak, sendPeak int64         // VmHWM in bytes (0: not measured)
	cpu                time.Duration // both processes, during the timed part
	index              time.Duration // the sender's index before it (not timed)
	served             int64         // bytes the sender served (Meshwork)
}

func libBench(b *testing.B, sh libShape) {
	files, detail := sh.gen()
	var total int64
	for _, f := range files {
		total += f.size
	}
	root := b.TempDir()
	src := filepath.Join(root, "src")
	genStart := time.Now()
	stWriteTree(b, src, files, 21)
	gen := time.Since(genStart)
	// Destinations stay until the end (a mass deletion slows file creation
	// on this machine's ext4 for minutes: settleCreates) unless keeping them
	// all would take more than 40 GB.
	keep := total*4 < 40e9
	probes := filepath.Join(root, "create-probes")
	var settles []string
	run := func(label string, do func(dst string) libRun) libRun {
		syscall.Sync()
		waited, per := settleCreates(b, probes)
		settles = append(settles, fmt.Sprintf("%s %s (%.0f µs/file)", label, waited, float64(per.Nanoseconds())/1e3))
		dst := filepath.Join(root, strings.ReplaceAll(label, " ", "-"))
		r := do(dst)
		if err := stSameTree(src, dst, files); err != nil {
			b.Fatalf("%s: the receiver said it was in sync, but: %v", label, err)
		}
		if !keep {
			if err := os.RemoveAll(dst); err != nil {
				b.Fatal(err)
			}
		}
		return r
	}
	mesh := func(dst string) libRun { return libMeshRun(b, src, dst, files) }
	st := func(n int) func(string) libRun {
		return func(dst string) libRun { return libSyncthingRun(b, src, dst, files, n) }
	}
	m1 := run("Meshwork 1", mesh)
	s1 := run("Syncthing 1", st(1))
	fl := run("floor", func(dst string) libRun { return libFloorRun(b, src, dst, files) })
	s2 := run("Syncthing 2", st(2))
	m2 := run("Meshwork 2", mesh)

	mt, stt := (m1.took+m2.took)/2, (s1.took+s2.took)/2
	speedup := stt.Seconds() / mt.Seconds()
	mb := float64(total) / 1e6
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	line := func(r *strings.Builder, what string, x, y libRun) {
		t := (x.took + y.took) / 2
		fmt.Fprintf(r, "  %-42s %8.2f s %6.0f MB/s %7.0f files/s  (runs %.2f s, %.2f s)  receiver peak %4.0f / %4.0f MiB  sender peak %4.0f / %4.0f MiB  cpu %.1f / %.1f s\n",
			what, t.Seconds(), mb/t.Seconds(), float64(len(files))/t.Seconds(), x.took.Seconds(), y.took.Seconds(),
			mib(x.recvPeak), mib(y.recvPeak), mib(x.sendPeak), mib(y.sendPeak), x.cpu.Seconds(), y.cpu.Seconds())
	}
	var r strings.Builder
	fmt.Fprintf(&r, "BenchmarkLibraryVsSyncthing/%s %s\n", sh.name, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&r, "data: %s; %d files, %.0f MB, incompressible; generated in %s (not timed)\n", sh.desc, len(files), mb, gen.Round(time.Millisecond))
	if detail != "" {
		fmt.Fprintf(&r, "%s: %s\n", sh.name, detail)
	}
	fmt.Fprintf(&r, "timed: receiver joins → in sync (sender connected and done indexing first); loopback TCP; order Meshwork, Syncthing, floor, Syncthing, Meshwork\n")
	line(&r, "Meshwork (join + mesh wait)", m1, m2)
	line(&r, "Syncthing "+syncthingVersion()+" (unpause → in sync)", s1, s2)
	fmt.Fprintf(&r, "  %-42s %8.2f s %6.0f MB/s %7.0f files/s  (8 workers: temp file, fsync, rename)\n", "floor (plain copy)", fl.took.Seconds(), mb/fl.took.Seconds(), float64(len(files))/fl.took.Seconds())
	fmt.Fprintf(&r, "  Syncthing time / Meshwork time: %.2fx   target >= 3x: %s\n", speedup, stMet(speedup >= 3))
	fmt.Fprintf(&r, "  Meshwork time / floor time:     %.2fx\n", mt.Seconds()/fl.took.Seconds())
	recvOK := m1.recvPeak <= s1.recvPeak && m2.recvPeak <= s2.recvPeak
	fmt.Fprintf(&r, "  receiver peak RSS at most Syncthing's in each pair of runs (M1 vs S1, M2 vs S2): %s\n", stMet(recvOK))
	fmt.Fprintf(&r, "not timed: sender's index: Meshwork %.2f / %.2f s, Syncthing %.2f / %.2f s\n", m1.index.Seconds(), m2.index.Seconds(), s1.index.Seconds(), s2.index.Seconds())
	if m1.served > 0 {
		fmt.Fprintf(&r, "Meshwork sender served %d bytes for %d bytes of files (%.3fx)\n", m1.served, total, float64(m1.served)/float64(total))
	}
	fmt.Fprintf(&r, "waited before each run until creating a file cost <= %s: %s\n", settledCreate, strings.Join(settles, ", "))
	b.ReportMetric(mt.Seconds(), "meshwork-s")
	b.ReportMetric(stt.Seconds(), "syncthing-s")
	b.ReportMetric(fl.took.Seconds(), "floor-s")
	b.ReportMetric(speedup, "speedup")
	b.ReportMetric(mib(max(m1.recvPeak, m2.recvPeak)), "meshwork-recv-MiB")
	b.ReportMetric(mib(max(s1.recvPeak, s2.recvPeak)), "syncthing-recv-MiB")
	writeReport(b, "bench-library-"+sh.name+".txt", r.String())
}

// libMeshRun: a fresh pair of meshd; A indexes src, B joins into dst.
func libMeshRun(b *testing.B, src, dst string, files []stFile) libRun {
	a, c := stBenchMeshPair(b)
	defer a.stop()
	defer c.stop()
	if err := os.RemoveAll(filepath.Join(src, ".meshwork")); err != nil { // a previous run's index
		b.Fatal(err)
	}
	var r libRun
	t0 := time.Now()
	a.mesh("folder", "add", src, "--name", "photos")
	a.mesh("wait", "photos", "--timeout", "60m")
	r.index = time.Since(t0)
	waitFor(b, 30*time.Second, "b sees the folder", func() bool { return strings.Contains(c.mesh("folder", "list"), "photos") })
	cpu0 := a.cpu() + c.cpu()
	start := time.Now()
	c.mesh("folder", "join", "photos", dst)
	c.mesh("wait", "photos", "--timeout", "60m")
	r.took = time.Since(start)
	r.cpu = a.cpu() + c.cpu() - cpu0
	r.recvPeak, r.sendPeak = peakRSS(c.cmd.Process.Pid), peakRSS(a.cmd.Process.Pid)
	var st node.Status
	if err := json.Unmarshal([]byte(a.mesh("status", "--json")), &st); err == nil {
		r.served = st.Transfer.BytesServed
	}
	return r
}

// libSyncthingRun: a fresh pair of syncthing; A scans src, B's folder at
// dst starts paused and is unpaused when the timer starts.
func libSyncthingRun(b *testing.B, src, dst string, files []stFile, n int) libRun {
	if err := os.RemoveAll(filepath.Join(src, ".meshwork")); err != nil { // Meshwork's state is not content
		b.Fatal(err)
	}
	sa, sb := newSyncthing(b, fmt.Sprintf("st-a%d", n)), newSyncthing(b, fmt.Sprintf("st-b%d", n))
	folder := func(path string, paused bool, peer *stInstance) []stFolder {
		return []stFolder{{ID: "photos", Path: path, Peers: []*stInstance{peer}, Paused: paused, Watcher: true, WatchDelayS: 1, RescanPeriodS: 3600}}
	}
	sa.writeConfig([]*stInstance{sb}, folder(src, false, sb))
	sb.writeConfig([]*stInstance{sa}, folder(dst, true, sa))
	defer sa.stop()
	defer sb.stop()
	var r libRun
	t0 := time.Now()
	sa.start()
	sa.waitScanned("photos", int64(len(files)), 60*time.Minute)
	r.index = time.Since(t0)
	sb.start()
	waitFor(b, 60*time.Second, "syncthing devices connected", func() bool { return sa.connected(sb) && sb.connected(sa) })
	pa, pb := sa.cmd.Process.Pid, sb.cmd.Process.Pid
	cpu0 := procCPU(pa) + procCPU(pb)
	start := time.Now()
	if err := sb.do("PATCH", "/rest/config/folders/photos", map[string]any{"paused": false}, nil); err != nil {
		b.Fatalf("unpause the receiver's folder: %v", err)
	}
	deadline := time.Now().Add(60 * time.Minute)
	for {
		ok, s := sb.inSync("photos", int64(len(files)))
		if ok {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("syncthing receiver not in sync after 60 minutes: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.took = time.Since(start)
	r.cpu = procCPU(pa) + procCPU(pb) - cpu0
	r.recvPeak, r.sendPeak = peakRSS(pb), peakRSS(pa)
	return r
}

// libFloorRun copies files from src into dst with 8 workers, each file
// written to a temporary name in its directory, fsynced and renamed: the
// file work of a sync without its protocol.
func libFloorRun(b *testing.B, src, dst string, files []stFile) libRun {
	start := time.Now()
	work := make(chan stFile)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	var dirs sync.Map
	for range 8 {
		wg.Go(func() {
			buf := make([]byte, 1<<20)
			for f := range work {
				if err := floorCopy(filepath.Join(src, f.rel), filepath.Join(dst, f.rel), buf, &dirs); err != nil {
					errs <- err
					for range work { // drain, so the feeder ends
					}
					return
				}
			}
		})
	}
	for _, f := range files {
		work <- f
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("floor copy: %v", err)
	}
	return libRun{took: time.Since(start)}
}

func floorCopy(from, to string, buf []byte, dirs *sync.Map) error {
	dir := filepath.Dir(to)
	if _, ok := dirs.Load(dir); !ok {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		dirs.Store(dir, true)
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := filepath.Join(dir, ".tmp-"+filepath.Base(to))
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(out, in, buf); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", from, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, to)
}

// peakRSS is a process's peak resident set (VmHWM in /proc/PID/status),
// in bytes; 0 when it cannot be read.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v) // "12345 kB"
			if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
