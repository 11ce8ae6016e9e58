package e2e

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meshwork/meshwork/node"
)

// chaosQuiesce bounds how long a settle may take to converge. It is a hang
// guard, not a speed bound: a fetch from a peer that stopped answering
// (for example over a connection to a killed daemon that is not yet seen
// as dead: QUIC's 30 s idle timeout) recovers only through the transfer
// stall check (60 s), and a loaded machine adds to that.
const chaosQuiesce = 3 * time.Minute

// chEntry is one path of a device's tree: kind, size, sha256 and mode.
type chEntry struct {
	Dir  bool
	Size int64
	Hash string
	Mode fs.FileMode
}

func (e chEntry) String() string {
	if e.Dir {
		return "dir"
	}
	return fmt.Sprintf("%d bytes %.12s %v", e.Size, e.Hash, e.Mode.Perm())
}

// chSnapshot is what a device holds: its tree outside .meshwork/ and the
// hashes of every file under the folder's root, .meshwork/ (the version
// history) included.
type chSnapshot struct {
	tree     map[string]chEntry
	contents map[string]bool
	temps    []string // temporary or partial files outside .meshwork/
}

// chHashes remembers the sha256 of files by path, inode, size, mtime and
// ctime, so that a settle does not read again every file of every
// device's tree and version history (most of a soak-mode seed's CPU went
// there, the history growing with each overwritten 40 MiB file). Any
// write, truncate, chmod or rename into the path changes the key.
type chHashes struct {
	mu sync.Mutex
	m  map[chFileKey]string
}

type chFileKey struct {
	path                string
	ino                 uint64
	size, mtime, change int64
}

func (c *chHashes) hash(p string, info fs.FileInfo) (h string, size int64, err error) {
	st, ok := info.Sys().(*syscall.Stat_t)
	var k chFileKey
	if ok {
		k = chFileKey{path: p, ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), change: st.Ctim.Nano()}
		c.mu.Lock()
		h, hit := c.m[k]
		c.mu.Unlock()
		if hit {
			return h, k.size, nil
		}
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", 0, err
	}
	h = chHash(b)
	if ok && int64(len(b)) == k.size {
		// Only a read that saw the size the key names is remembered (a
		// file written while it was read gets a new ctime anyway).
		c.mu.Lock()
		if c.m == nil {
			c.m = map[chFileKey]string{}
		}
		c.m[k] = h
		c.mu.Unlock()
	}
	return h, int64(len(b)), nil
}

func chSnap(root string, hashes *chHashes) (chSnapshot, error) {
	s := chSnapshot{tree: map[string]chEntry{}, contents: map[string]bool{}}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // removed under us (the daemon moved it into the history)
			}
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		internal := rel == ".meshwork" || strings.HasPrefix(rel, ".meshwork/")
		temp := !internal && strings.HasPrefix(e.Name(), ".meshwork-")
		if temp {
			s.temps = append(s.temps, rel) // invariant (c), not (a)
		}
		if e.IsDir() {
			if !internal {
				s.tree[rel] = chEntry{Dir: true}
			}
			return nil
		}
		if !e.Type().IsRegular() {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil // removed under us
		}
		h, size, err := hashes.hash(p, info)
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		s.contents[h] = true
		if !internal && !temp {
			s.tree[rel] = chEntry{Size: size, Hash: h, Mode: info.Mode().Perm()}
		}
		return nil
	})
	return s, err
}

// chDiff describes how tree b (of device nb) differs from tree a (na),
// ignoring paths for which skip holds; "" when they agree.
func chDiff(na string, a map[string]chEntry, nb string, b map[string]chEntry, skip func(string) bool) string {
	var lines []string
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	for _, k := range chSortedKeys(keys) {
		if skip(k) {
			continue
		}
		ea, oka := a[k]
		eb, okb := b[k]
		switch {
		case !oka:
			lines = append(lines, fmt.Sprintf("  %q only on %s: %v", k, nb, eb))
		case !okb:
			lines = append(lines, fmt.Sprintf("  %q only on %s: %v", k, na, ea))
		case ea != eb:
			lines = append(lines, fmt.Sprintf("  %q: %s has %v, %s has %v", k, na, ea, nb, eb))
		}
	}
	return strings.Join(lines, "\n")
}

func chFolderInfo(d *daemon) (node.FolderInfo, error) {
	out, _, err := d.run("folder", "list", "--json")
	if err != nil {
		return node.FolderInfo{}, err
	}
	var infos []node.FolderInfo
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		return node.FolderInfo{}, err
	}
	for _, fi := range infos {
		if fi.Name == "docs" {
			return fi, nil
		}
	}
	return node.FolderInfo{}, errChNoFolder
}

// skipFor is the set of paths ignored when comparing device i's tree: a
// reader's own edits (and their conflict copies and the directories only
// they keep), which must stay on it.
func (r *chRun) skipFor(i int, snaps map[int]chSnapshot) func(string) bool {
	x := r.devs[i]
	if !x.reader || len(x.fenced) == 0 {
		return func(string) bool { return false }
	}
	return func(p string) bool {
		for f := range x.fenced {
			if chUnder(f, p) || p == f || strings.HasPrefix(p, strings.SplitN(f, ".", 2)[0]+".conflict-") {
				return true
			}
		}
		return false
	}
}

// converged compares the trees of every member with the first member's;
// it returns the differences ("" when none).
//
// Conflict copies that some member lists as unavailable (no online member
// had their content: FolderInfo.UnavailableCopies) are left out when the
// trees differ: a losing version is kept only where a device still holds
// its content, so one member may keep an older copy of it that the others
// never had (soak seed 163: a device's append to its losing version, then
// its delete, before anyone fetched the append).
func (r *chRun) converged(snaps map[int]chSnapshot) string {
	d := r.diffTrees(snaps, nil)
	if d == "" {
		return ""
	}
	unav := map[string]bool{}
	for _, i := range r.members() {
		if fi, err := chFolderInfo(r.devs[i].d); err == nil {
			for _, c := range fi.UnavailableCopies {
				unav[c] = true
			}
		}
	}
	if len(unav) == 0 {
		return d
	}
	return r.diffTrees(snaps, unav)
}

func (r *chRun) diffTrees(snaps map[int]chSnapshot, unav map[string]bool) string {
	m := r.members()
	ref := m[0]
	var out []string
	for _, i := range m[1:] {
		ska, skb := r.skipFor(ref, snaps), r.skipFor(i, snaps)
		if d := chDiff(chaosName(ref), snaps[ref].tree, chaosName(i), snaps[i].tree, func(p string) bool { return ska(p) || skb(p) || unav[p] }); d != "" {
			out = append(out, fmt.Sprintf("%s vs %s:\n%s", chaosName(ref), chaosName(i), d))
		}
	}
	return strings.Join(out, "\n")
}

func (r *chRun) snapAll() map[int]chSnapshot {
	snaps := map[int]chSnapshot{}
	for i, x := range r.devs {
		if !x.present {
			continue
		}
		s, err := chSnap(x.dir, &r.hashes)
		if err != nil {
			r.t.Fatalf("op %d: snapshot of %s: %v", r.cur, chaosName(i), err)
		}
		snaps[i] = s
	}
	return snaps
}

// settle starts every stopped device, then waits for quiescence: every
// member's `mesh wait` returns (two rounds, as a device may learn
// something during another's wait) and the trees agree. It checks
// invariant (f) (wait and in_sync say in sync only when the trees agree),
// (a) (they agree within chaosQuiesce) and (c) (no temporary file).
func (r *chRun) settle(why string) map[int]chSnapshot {
	t := r.t
	for i, x := range r.devs {
		if x.present && !x.running() {
			x.d.start()
			r.logf("started %s (%s)", chaosName(i), why)
		}
	}
	start := time.Now()
	deadline := start.Add(chaosQuiesce)
	for {
		var waitErrs []string
		for range 2 {
			for _, i := range r.members() {
				left := time.Until(deadline).Round(time.Second)
				if left < time.Second {
					left = time.Second
				}
				out, e, err := r.devs[i].d.run("wait", "docs", "--timeout", left.String())
				switch {
				case err != nil:
					waitErrs = append(waitErrs, fmt.Sprintf("%s: %v %s", chaosName(i), err, strings.TrimSpace(e)))
				case strings.Contains(out, "not waited for"):
					// Every member runs: a wait that names one it did not
					// wait for does not say it is in sync with it.
					waitErrs = append(waitErrs, fmt.Sprintf("%s: %s", chaosName(i), strings.TrimSpace(out)))
				}
			}
		}
		snaps := r.snapAll()
		diff := r.converged(snaps)
		if diff == "" && len(waitErrs) == 0 {
			r.checkTemps(snaps)
			r.holdTrees(snaps)
			r.logf("%s: converged in %s", why, time.Since(start).Round(10*time.Millisecond))
			return snaps
		}
		if diff != "" {
			r.checkInSync(diff, len(waitErrs) == 0)
		}
		if time.Now().After(deadline) {
			r.dumpDaemons()
			t.Fatalf("op %d (%s): invariant (a): no convergence within %s\nwait errors: %v\ntrees:\n%s", r.cur, why, chaosQuiesce, waitErrs, diff)
		}
		time.Sleep(200 * time.Millisecond) // a poll interval, not a synchronisation
	}
}

// dumpDaemons makes every running daemon print its goroutines (SIGQUIT)
// and keeps the logs out of the test's temporary directories, for a seed
// that does not converge: a hang shows where it waits.
func (r *chRun) dumpDaemons() {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("meshwork-chaos-seed-%d", r.seed))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.t.Logf("keep logs: %v", err)
		return
	}
	// What each replica says, and a wait under way in each daemon when it
	// dumps its goroutines: a wait that never ends shows where it waits.
	var waits sync.WaitGroup
	for i, x := range r.devs {
		if !x.running() {
			continue
		}
		for name, args := range map[string][]string{
			"files": {"folder", "files", "docs", "--json"},
			"list":  {"folder", "list", "--json"},
			"feed":  {"feed", "docs", "--format", "json"}, // the replica: versions, history, conflicts
		} {
			out, e, err := x.d.run(args...)
			_ = os.WriteFile(filepath.Join(dir, chaosName(i)+"-"+name+".json"), []byte(out+e+fmt.Sprint(err)), 0o644)
		}
		waits.Go(func() { _, _, _ = x.d.run("wait", "docs", "--timeout", "20s") })
	}
	time.Sleep(2 * time.Second) // lets the waits start; a diagnostic pause, not a synchronisation
	for i, x := range r.devs {
		if !x.running() {
			continue
		}
		_ = x.d.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-x.d.done:
		case <-time.After(10 * time.Second):
		}
		if b, err := os.ReadFile(filepath.Join(x.d.home, "meshd.log")); err == nil {
			_ = os.WriteFile(filepath.Join(dir, chaosName(i)+".log"), b, 0o644)
		}
	}
	waits.Wait()
	r.t.Logf("daemon logs with goroutine dumps (SIGQUIT) and replicas (folder files) kept in %s", dir)
}

// checkInSync reports invariant (f) once per run: the trees differ, yet
// every member's `mesh wait` returned, or every member's in_sync is 1.
func (r *chRun) checkInSync(diff string, waited bool) {
	if r.fReports > 0 {
		return
	}
	var st []string
	all := true
	for _, i := range r.members() {
		fi, err := chFolderInfo(r.devs[i].d)
		if err != nil || fi.InSync < 1 || len(fi.Transferring) > 0 {
			all = false
		}
		st = append(st, fmt.Sprintf("%s in_sync=%.3f transferring=%d", chaosName(i), fi.InSync, len(fi.Transferring)))
	}
	if !waited && !all {
		return
	}
	// Still in sync and differing after a fresh look: not a race with a
	// change in flight.
	if d := r.converged(r.snapAll()); d == "" {
		return
	}
	r.fReports++
	r.t.Errorf("op %d: invariant (f): the members say they are in sync (every mesh wait returned: %v; in_sync: %s) but their trees differ:\n%s",
		r.cur, waited, strings.Join(st, ", "), diff)
}

func (r *chRun) checkTemps(snaps map[int]chSnapshot) {
	for _, i := range chSortedInts(snaps) {
		if tmp := snaps[i].temps; len(tmp) > 0 {
			r.t.Errorf("op %d: invariant (c): %s shows temporary files outside .meshwork/: %v", r.cur, chaosName(i), tmp)
		}
	}
}

// holdTrees: after a settle, every member holds every content of the
// converged tree (a reader's own edits aside).
func (r *chRun) holdTrees(snaps map[int]chSnapshot) {
	for _, i := range r.members() {
		skip := r.skipFor(i, snaps)
		for p, e := range snaps[i].tree {
			if !e.Dir && !skip(p) {
				r.hold(e.Hash, i, fmt.Sprintf("%q in the tree at op %d", p, r.cur))
			}
		}
	}
}

func chSortedHolders(m map[int]bool) []int {
	var k []int
	for i := range m {
		k = append(k, i)
	}
	sort.Ints(k)
	return k
}

func chSortedInts(m map[int]chSnapshot) []int {
	var k []int
	for i := range m {
		k = append(k, i)
	}
	sort.Ints(k)
	return k
}

// final checks, after the last settle, invariants (b), (d) and (e).
func (r *chRun) final(snaps map[int]chSnapshot) {
	t := r.t
	somewhere := func(h string, except int) []string {
		var on []string
		for _, i := range chSortedInts(snaps) {
			if i != except && snaps[i].contents[h] {
				on = append(on, chaosName(i))
			}
		}
		return on
	}
	var lost []string
	for h, hs := range r.holders {
		if len(hs) > 0 && len(somewhere(h, -1)) == 0 {
			var on []string
			for _, i := range chSortedHolders(hs) {
				on = append(on, chaosName(i))
			}
			lost = append(lost, fmt.Sprintf("%.12s (%s; last held by %v)", h, r.what[h], on))
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Errorf("invariant (b): %d contents written by editors are nowhere (not current, not a conflict copy, not in any version history), though a device held each and did not itself destroy it: %v", len(lost), lost)
	}
	for i, x := range r.devs {
		if !x.revoked && !x.reader {
			continue
		}
		for _, w := range r.writes[x.since:] {
			if !w.fresh {
				continue
			}
			switch {
			case w.dev == i:
				if on := somewhere(w.hash, i); len(on) > 0 {
					inv := "(e): a reader's"
					if x.revoked {
						inv = "(d): a revoked device's"
					}
					t.Errorf("invariant %s edit reached %v: %q written at op %d", inv, on, w.path, w.op)
				}
			case x.revoked && snaps[i].contents[w.hash]:
				t.Errorf("invariant (d): revoked %s received %q written by %s at op %d, after its revocation", chaosName(i), w.path, chaosName(w.dev), w.op)
			}
		}
	}
}
