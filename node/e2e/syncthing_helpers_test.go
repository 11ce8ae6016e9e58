package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node"
)

// Helpers for the benchmarks that run Syncthing beside Meshwork
// (syncthing_bench_test.go): real syncthing processes on loopback driven
// over their REST API, generated file trees, and figures.

// syncthingPath returns the syncthing binary or skips the benchmark.
func syncthingPath(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("syncthing")
	if err != nil {
		tb.Skip("syncthing is not installed (apt-get install -y syncthing): these benchmarks compare Meshwork to Syncthing in the same run")
	}
	return p
}

// stBenchSmall reports whether MESHWORK_BENCH_SMALL asks for the quick sizes.
func stBenchSmall() bool {
	v := os.Getenv("MESHWORK_BENCH_SMALL")
	return v != "" && v != "0"
}

// stFolder is one folder in a syncthing configuration.
type stFolder struct {
	ID, Path      string
	Peers         []*stInstance // devices it is shared with besides this one
	Paused        bool
	Watcher       bool
	WatchDelayS   int
	RescanPeriodS int
}

// stInstance is one syncthing process with its own home.
type stInstance struct {
	tb         testing.TB
	bin, name  string
	home       string
	id         string
	listenPort int
	guiPort    int
	apiKey     string
	cmd        *exec.Cmd
	done       chan struct{}
	log        string
	hc         *http.Client
}

// newSyncthing generates a home (key, certificate, config) for a syncthing
// device; configure it with writeConfig before start.
func newSyncthing(tb testing.TB, name string) *stInstance {
	tb.Helper()
	bin := syncthingPath(tb)
	home, err := os.MkdirTemp("", "st-"+name+"-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(home) })
	cmd := exec.Command(bin, "generate", "--home="+home)
	cmd.Env = append(os.Environ(), "STNODEFAULTFOLDER=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("syncthing generate: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Device ID:\s*([A-Z0-9-]{63})`).FindSubmatch(out)
	if m == nil {
		tb.Fatalf("syncthing generate printed no device ID:\n%s", out)
	}
	s := &stInstance{
		tb: tb, bin: bin, name: name, home: home, id: string(m[1]),
		listenPort: freePort(tb), guiPort: freePort(tb),
		apiKey: fmt.Sprintf("meshwork-bench-%s-%d", name, rand.Uint64()),
		log:    filepath.Join(home, "syncthing.log"),
		hc:     &http.Client{Timeout: 5 * time.Minute},
	}
	return s
}

func (s *stInstance) tcpAddr() string { return fmt.Sprintf("tcp://127.0.0.1:%d", s.listenPort) }

// writeConfig edits the generated config.xml before the first start:
// loopback only, no discovery, relays, NAT, usage or crash reporting,
// upgrades; a GUI/REST listener with a fixed API key; peers with static
// addresses; the folders.
func (s *stInstance) writeConfig(peers []*stInstance, folders []stFolder) {
	tb := s.tb
	tb.Helper()
	p := filepath.Join(s.home, "config.xml")
	raw, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := string(raw)
	set := func(tag, val string) {
		re := regexp.MustCompile(`<` + tag + `>[^<]*</` + tag + `>`)
		loc := re.FindStringIndex(cfg)
		if loc == nil {
			tb.Fatalf("syncthing config.xml has no <%s>", tag)
		}
		cfg = cfg[:loc[0]] + "<" + tag + ">" + val + "</" + tag + ">" + cfg[loc[1]:]
	}
	// Options (each tag is unique in the generated file up to <defaults>).
	set("listenAddress", s.tcpAddr())
	set("globalAnnounceEnabled", "false")
	set("localAnnounceEnabled", "false")
	set("relaysEnabled", "false")
	set("natEnabled", "false")
	set("urAccepted", "-1")
	set("crashReportingEnabled", "false")
	set("autoUpgradeIntervalH", "0")
	set("startBrowser", "false")
	// Syncthing lowers its own CPU priority by default; meshd does not.
	// Compare them on equal terms.
	set("setLowPriority", "false")
	// GUI / REST.
	guiRe := regexp.MustCompile(`(?s)<gui [^>]*>.*?</gui>`)
	if !guiRe.MatchString(cfg) {
		tb.Fatal("syncthing config.xml has no <gui>")
	}
	cfg = guiRe.ReplaceAllLiteralString(cfg, fmt.Sprintf(
		"<gui enabled=\"true\" tls=\"false\" debugging=\"false\">\n        <address>127.0.0.1:%d</address>\n        <apikey>%s</apikey>\n        <theme>default</theme>\n    </gui>",
		s.guiPort, s.apiKey))
	// No folder from generate (there is one without STNODEFAULTFOLDER).
	if i := strings.Index(cfg, "<defaults>"); i >= 0 {
		head := regexp.MustCompile(`(?s)\n\s*<folder [^>]*>.*?</folder>`).ReplaceAllString(cfg[:i], "")
		cfg = head + cfg[i:]
	}
	var ins strings.Builder
	for _, f := range folders {
		fmt.Fprintf(&ins, `    <folder id="%s" label="%s" path="%s" type="sendreceive" rescanIntervalS="%d" fsWatcherEnabled="%t" fsWatcherDelayS="%d" ignorePerms="false" autoNormalize="true">
        <filesystemType>basic</filesystemType>
        <device id="%s" introducedBy=""><encryptionPassword></encryptionPassword></device>
`, f.ID, f.ID, f.Path, f.RescanPeriodS, f.Watcher, f.WatchDelayS, s.id)
		for _, peer := range f.Peers {
			fmt.Fprintf(&ins, "        <device id=\"%s\" introducedBy=\"\"><encryptionPassword></encryptionPassword></device>\n", peer.id)
		}
		fmt.Fprintf(&ins, "        <minDiskFree unit=\"%%\">1</minDiskFree>\n        <paused>%t</paused>\n        <markerName>.stfolder</markerName>\n    </folder>\n", f.Paused)
	}
	for _, peer := range peers {
		fmt.Fprintf(&ins, `    <device id="%s" name="%s" compression="metadata" introducer="false" skipIntroductionRemovals="false" introducedBy="">
        <address>%s</address>
        <paused>false</paused>
        <autoAcceptFolders>false</autoAcceptFolders>
    </device>
`, peer.id, peer.name, peer.tcpAddr())
	}
	i := strings.Index(cfg, "    <gui ")
	if i < 0 {
		tb.Fatal("syncthing config.xml: cannot place folders")
	}
	cfg = cfg[:i] + ins.String() + cfg[i:]
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	for _, f := range folders { // the folder marker, as syncthing itself creates it
		if err := os.MkdirAll(filepath.Join(f.Path, ".stfolder"), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
}

// start runs `syncthing serve` and waits until its REST API answers.
func (s *stInstance) start() {
	tb := s.tb
	tb.Helper()
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(s.bin, "serve", "--home="+s.home, "--no-browser", "--no-restart", "--no-upgrade", "--skip-port-probing")
	cmd.Env = append(os.Environ(), "STMONITORED=1", "STNOUPGRADE=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		tb.Fatalf("start syncthing %s: %v", s.name, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(s.done) }()
	tb.Cleanup(s.stop)
	waitFor(tb, 30*time.Second, "syncthing "+s.name+" REST API", func() bool {
		var r struct{ Ping string }
		return s.get("/rest/system/ping", &r) == nil && r.Ping == "pong"
	})
}

// stop sends SIGTERM, waits for the exit (SIGKILL after 15 s).
func (s *stInstance) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
	if s.tb.Failed() {
		b, _ := os.ReadFile(s.log)
		s.tb.Logf("---- syncthing %s log ----\n%s", s.name, tail(string(b), 60))
	}
}

func (s *stInstance) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", s.guiPort, path), rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", s.apiKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (s *stInstance) get(path string, out any) error { return s.do("GET", path, nil, out) }

// stStatus is the part of /rest/db/status the benchmarks read.
type stStatus struct {
	State             string `json:"state"`
	NeedBytes         int64  `json:"needBytes"`
	NeedFiles         int64  `json:"needFiles"`
	NeedDeletes       int64  `json:"needDeletes"`
	LocalBytes        int64  `json:"localBytes"`
	LocalFiles        int64  `json:"localFiles"`
	GlobalBytes       int64  `json:"globalBytes"`
	GlobalFiles       int64  `json:"globalFiles"`
	GlobalDirectories int64  `json:"globalDirectories"`
	Errors            int64  `json:"errors"`
	PullErrors        int64  `json:"pullErrors"`
}

func (s *stInstance) status(folder string) (stStatus, error) {
	var st stStatus
	err := s.get("/rest/db/status?folder="+url.QueryEscape(folder), &st)
	return st, err
}

func (s *stInstance) completion(folder string) (float64, error) {
	var c struct {
		Completion float64 `json:"completion"`
	}
	err := s.get("/rest/db/completion?folder="+url.QueryEscape(folder), &c)
	return c.Completion, err
}

// connected reports whether s has a connection to peer.
func (s *stInstance) connected(peer *stInstance) bool {
	var r struct {
		Connections map[string]struct {
			Connected bool `json:"connected"`
		} `json:"connections"`
	}
	if err := s.get("/rest/system/connections", &r); err != nil {
		return false
	}
	return r.Connections[peer.id].Connected
}

// inSync reports whether folder on s is complete and holds wantFiles files
// (syncthing's definition plus a check that the index arrived: before it
// does, an empty folder is "100% complete"). 1.x counts every directory as
// 128 bytes in the byte totals, on both sides alike.
func (s *stInstance) inSync(folder string, wantFiles int64) (bool, stStatus) {
	st, err := s.status(folder)
	if err != nil {
		return false, st
	}
	if st.State != "idle" || st.NeedBytes != 0 || st.NeedFiles != 0 || st.NeedDeletes != 0 ||
		st.GlobalFiles != wantFiles || st.LocalFiles != wantFiles || st.LocalBytes != st.GlobalBytes {
		return false, st
	}
	c, err := s.completion(folder)
	return err == nil && c >= 100, st
}

// waitIdle polls until folder's state is idle and it holds wantFiles
// files locally (its own scan finished).
func (s *stInstance) waitScanned(folder string, wantFiles int64, within time.Duration) {
	s.tb.Helper()
	var last stStatus
	deadline := time.Now().Add(within)
	for {
		st, err := s.status(folder)
		if err == nil && st.State == "idle" && st.LocalFiles == wantFiles {
			return
		}
		last = st
		if time.Now().After(deadline) {
			s.tb.Fatalf("syncthing %s: folder %s not scanned within %s: %+v (err %v)", s.name, folder, within, last, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncthingPair starts two syncthing devices that know each other, each
// with the folders conf returns for it, and waits until they are connected.
func syncthingPair(tb testing.TB, conf func(self, peer *stInstance) []stFolder) (a, b *stInstance) {
	tb.Helper()
	a, b = newSyncthing(tb, "st-a"), newSyncthing(tb, "st-b")
	a.writeConfig([]*stInstance{b}, conf(a, b))
	b.writeConfig([]*stInstance{a}, conf(b, a))
	a.start()
	b.start()
	waitFor(tb, 30*time.Second, "syncthing devices connected", func() bool { return a.connected(b) && b.connected(a) })
	return a, b
}

// stBenchMeshPair starts two meshd on loopback TCP in one mesh, both online.
func stBenchMeshPair(tb testing.TB) (a, b *daemon) {
	tb.Helper()
	tcp := []string{"/ip4/127.0.0.1/tcp/0"}
	a, b = startDaemonOn(tb, "a", tcp), startDaemonOn(tb, "b", tcp)
	joinPair(tb, a, b)
	return a, b
}

// stMeshWait calls the daemon's folder wait endpoint over its control
// socket (what `mesh wait` does, without starting a CLI process) and
// returns how long it took.
func stMeshWait(d *daemon, name string, timeout time.Duration) (time.Duration, error) {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", node.SocketPath(d.home))
	}}}
	start := time.Now()
	resp, err := hc.Get("http://meshd/v1/folders/" + url.PathEscape(name) + "/wait?timeout=" + url.QueryEscape(timeout.String()))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	elapsed := time.Since(start)
	if resp.StatusCode/100 != 2 {
		return elapsed, fmt.Errorf("wait %s: %s: %s", name, resp.Status, strings.TrimSpace(string(body)))
	}
	return elapsed, nil
}

// stFile is one file of a generated tree.
type stFile struct {
	rel  string
	size int64
	same int // 1 + the index of the file whose content this one repeats; 0: its own
}

// stPhotoLibrary lays out a photo-like library: large "photos" of 1–8 MiB
// (skewed towards the small end, ~3.3 MiB on average) in year/month
// directories until bigTotal bytes, plus smallN "thumbnails and sidecars"
// of 1–64 KiB beside them.
func stPhotoLibrary(bigTotal int64, smallN int, seed uint64) (files []stFile, total int64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	const mib = 1 << 20
	var big int64
	for i := 0; big < bigTotal; i++ {
		u := rng.Float64()
		size := int64(mib + 7*mib*u*u)
		if left := bigTotal - big; size > left {
			size = max(left, mib)
		}
		rel := fmt.Sprintf("%d/%02d/IMG_%05d.jpg", 2015+i%10, 1+(i/10)%12, i)
		files = append(files, stFile{rel: rel, size: size})
		big += size
	}
	for i := 0; i < smallN; i++ {
		size := int64(1024 + rng.IntN(63*1024+1))
		rel := fmt.Sprintf("%d/%02d/thumbs/IMG_%05d_%d.webp", 2015+i%10, 1+(i/10)%12, i, i%7)
		files = append(files, stFile{rel: rel, size: size})
	}
	for _, f := range files {
		total += f.size
	}
	return files, total
}

// stManySmall lays out n small files (256 B – 2 KiB) in directories of 100.
func stManySmall(n int, seed uint64) []stFile {
	rng := rand.New(rand.NewPCG(seed, 11))
	files := make([]stFile, n)
	for i := range files {
		files[i] = stFile{rel: fmt.Sprintf("d%04d/f%06d.txt", i/100, i), size: int64(256 + rng.IntN(1793))}
	}
	return files
}

// stWriteTree writes files under root with pseudo-random (incompressible)
// content, different for every file but those that repeat another's
// (stFile.same).
func stWriteTree(tb testing.TB, root string, files []stFile, seed uint64) {
	tb.Helper()
	buf := make([]byte, 1<<20)
	made := map[string]bool{}
	for i, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.rel))
		if dir := filepath.Dir(p); !made[dir] {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				tb.Fatal(err)
			}
			made[dir] = true
		}
		stream := i
		if f.same > 0 {
			stream = f.same - 1
		}
		rng := rand.New(rand.NewPCG(seed, uint64(stream)))
		fh, err := os.Create(p)
		if err != nil {
			tb.Fatal(err)
		}
		for left := f.size; left > 0; {
			k := min(left, int64(len(buf)))
			for j := 0; j < int(k); j += 8 { // len(buf) is a multiple of 8
				binary.LittleEndian.PutUint64(buf[j:], rng.Uint64())
			}
			if _, err := fh.Write(buf[:k]); err != nil {
				tb.Fatal(err)
			}
			left -= k
		}
		if err := fh.Close(); err != nil {
			tb.Fatal(err)
		}
	}
}

// stSameTree checks that every file of files is identical under a and b.
func stSameTree(a, b string, files []stFile) error {
	for _, f := range files {
		x, err := os.ReadFile(filepath.Join(a, filepath.FromSlash(f.rel)))
		if err != nil {
			return err
		}
		y, err := os.ReadFile(filepath.Join(b, filepath.FromSlash(f.rel)))
		if err != nil {
			return fmt.Errorf("%s: %w", f.rel, err)
		}
		if !bytes.Equal(x, y) {
			return fmt.Errorf("%s differs (%d vs %d bytes)", f.rel, len(x), len(y))
		}
	}
	return nil
}

// stPropagation writes n successive versions of src (one file) and measures,
// for each, the time until dst has exactly the new content, polling every
// 2 ms. A change not seen within perChange counts as a timeout (and the
// benchmark waits up to a minute more for it before the next change).
func stPropagation(tb testing.TB, src, dst string, n int, perChange time.Duration, seed uint64) (samples []time.Duration, timeouts int) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 3))
	for i := 0; i < n; i++ {
		content := make([]byte, 4096)
		for j := range content {
			content[j] = byte('a' + rng.IntN(26))
		}
		copy(content, fmt.Sprintf("change %d\n", i))
		start := time.Now()
		if err := os.WriteFile(src, content, 0o644); err != nil {
			tb.Fatal(err)
		}
		seen := false
		for !seen {
			got, _ := os.ReadFile(dst)
			if bytes.Equal(got, content) {
				seen = true
				break
			}
			if time.Since(start) > perChange {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if seen {
			samples = append(samples, time.Since(start))
		} else {
			timeouts++
			waitFor(tb, time.Minute, fmt.Sprintf("change %d to arrive late", i), func() bool {
				got, _ := os.ReadFile(dst)
				return bytes.Equal(got, content)
			})
		}
		// Let both sides settle, then wait a random 0–1 s more so that
		// changes do not fall at the same phase of a periodic timer (as
		// Syncthing's 1 s watcher aggregation is) every time.
		time.Sleep(300*time.Millisecond + time.Duration(rng.IntN(1000))*time.Millisecond)
	}
	return samples, timeouts
}

func stMedian(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func stPercentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s)-1) + 0.5)
	return s[i]
}

func stMet(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

func stMkdir(tb testing.TB, dir string) string {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}

var stVersion = sync.OnceValue(func() string {
	out, err := exec.Command("syncthing", "--version").Output()
	if f := strings.Fields(string(out)); err == nil && len(f) >= 2 {
		return f[1]
	}
	return "(version unknown)"
})

// syncthingVersion is the installed syncthing's version, e.g. v1.19.2-ds1.
func syncthingVersion() string { return stVersion() }
