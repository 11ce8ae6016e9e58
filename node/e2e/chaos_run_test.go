package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chDev is one device of a chaos run.
type chDev struct {
	d       *daemon
	dir     string
	id      string
	present bool // started (a joiner is absent until its join)
	revoked bool
	reader  bool
	since   int             // revoked or reader: index into chRun.writes from which its writes are fenced
	fenced  map[string]bool // reader: paths it wrote as a reader (its tree may differ there)
}

func (x *chDev) running() bool { return x.present && x.d != nil && x.d.cmd != nil }

// chWrite is a content the harness wrote.
type chWrite struct {
	op    int
	dev   int
	path  string
	hash  string
	fresh bool // a write op's own content (unique: it starts with a header naming seed, op and device)
}

type chRun struct {
	t      *testing.T
	seed   int64
	conf   chaosConf
	base   string
	devs   []*chDev
	ops    []chaosOp
	cur    int      // the op being run
	log    []string // what each op did
	writes []chWrite
	// holders[hash] are the devices that hold a content written by an
	// editor, as far as the harness knows: the writer from its write, every
	// member from a settle that saw the content in the converged tree. A
	// device stops being a holder when the harness itself destroys its copy
	// (overwrites, truncates, appends to or removes it there: a local change
	// keeps no version) or when it is revoked. Invariant (b): a content
	// with a holder left is found somewhere at the end.
	holders  map[string]map[int]bool
	what     map[string]string // hash → who wrote it, for messages
	fReports int
	hashes   chHashes
}

func chaosMeshName(i int) string {
	return []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"}[i]
}

func (r *chRun) logf(format string, args ...any) {
	r.log = append(r.log, fmt.Sprintf("%3d  %s", r.cur, fmt.Sprintf(format, args...)))
}

// chSetup starts n devices, makes a the owner of a mesh and of folder
// "docs", and has every other device join both.
func chSetup(t *testing.T, r *chRun, n int) {
	r.base = t.TempDir() // before the daemons: its cleanup runs after theirs
	for i := range n {
		r.devs = append(r.devs, &chDev{})
		r.startDevice(i, i == 0)
	}
}

// startDevice starts device i's daemon (a fresh home), joins the mesh (or
// inits it, for the owner) and the folder.
func (r *chRun) startDevice(i int, owner bool) {
	t := r.t
	x := r.devs[i]
	x.d = startDaemon(t, chaosName(i))
	x.d.listen = chPinnedListen(t, x.d)
	x.dir = filepath.Join(r.base, "docs-"+chaosName(i))
	x.present = true
	if err := os.MkdirAll(x.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if owner {
		x.d.mesh("init", "--name", chaosMeshName(i))
		x.id = x.d.status().DeviceID
		x.d.mesh("folder", "add", x.dir, "--name", "docs")
		return
	}
	a := r.devs[0].d
	x.d.mesh("join", a.invite(), "--name", chaosMeshName(i))
	x.id = x.d.status().DeviceID
	waitFor(t, 30*time.Second, chaosName(i)+" lists folder docs", func() bool { return cuLists(x.d, "docs") })
	x.d.mesh("folder", "join", "docs", x.dir)
}

// chPinnedListen returns the addresses d listens on now, for its restarts:
// a device keeps its ports across restarts, as meshd does with its default
// port (4001). With new ports at every start (port 0) a device stopped
// while every other member restarted could never be found again, nor find
// them, in a harness without mDNS, DHT or relay (soak seed 299: d and the
// others each knew only the others' old addresses), which no user with
// the defaults meets.
func chPinnedListen(t testing.TB, d *daemon) []string {
	t.Helper()
	var out []string
	for _, a := range d.status().ListenAddrs {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/") && !strings.Contains(a, "/p2p") {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s listens on no loopback address: %v", d.name, d.status().ListenAddrs)
	}
	return out
}

// chData is the content of a write: a header naming the seed, the op and
// the device (so that every written content is unique), then bytes from a
// PCG seeded with the op's data seed.
func chData(seed int64, op, dev int, size int64, data uint64) []byte {
	if size == 0 {
		return nil
	}
	h := fmt.Sprintf("chaos seed %d op %d dev %s\n", seed, op, chaosName(dev))
	b := make([]byte, max(size, int64(len(h))))
	p := rand.NewPCG(data, uint64(op))
	for i := 0; i < len(b); i += 8 {
		v := p.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	copy(b, h)
	return b
}

func chHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// record notes what the harness just left at rel on device dev (read back
// from disk, so that appends and truncations record the whole content).
func (r *chRun) record(dev int, rel string, fresh bool) {
	b, err := os.ReadFile(filepath.Join(r.devs[dev].dir, filepath.FromSlash(rel)))
	if err != nil {
		r.t.Fatalf("op %d: read back %s on %s: %v", r.cur, rel, chaosName(dev), err)
	}
	h := chHash(b)
	r.writes = append(r.writes, chWrite{op: r.cur, dev: dev, path: rel, hash: h, fresh: fresh && len(b) > 0})
	x := r.devs[dev]
	if x.reader {
		x.fenced[rel] = true
	}
	if !x.revoked && !x.reader {
		r.hold(h, dev, fmt.Sprintf("%q written on %s at op %d", rel, chaosName(dev), r.cur))
	}
}

func (r *chRun) hold(h string, dev int, what string) {
	if h == chEmpty {
		return
	}
	if r.holders[h] == nil {
		r.holders[h] = map[int]bool{}
		r.what[h] = what
	}
	r.holders[h][dev] = true
}

// chEmpty is the sha256 of no bytes.
var chEmpty = chHash(nil)

// release: the harness is about to destroy rel on dev (a file, or a
// directory and everything in it); dev no longer holds those contents.
func (r *chRun) release(dev int, rel string) {
	_ = filepath.WalkDir(r.abs(dev, rel), func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		if info, err := e.Info(); err == nil {
			if h, _, err := r.hashes.hash(p, info); err == nil {
				delete(r.holders[h], dev)
			}
		}
		return nil
	})
}

func (r *chRun) abs(dev int, rel string) string {
	return filepath.Join(r.devs[dev].dir, filepath.FromSlash(rel))
}

func chExists(p string) bool { _, err := os.Lstat(p); return err == nil }

// exec runs op i.
func (r *chRun) exec(i int, o chaosOp) {
	r.cur = i
	t := r.t
	time.Sleep(o.Pause) // the workload's think time (see chaosOp.Pause)
	if o.Dev >= len(r.devs) && o.Kind != chOpJoin {
		t.Fatalf("op %d names device %d of %d", i, o.Dev, len(r.devs))
	}
	switch o.Kind {
	case chOpWrite:
		r.writeFile(o.Dev, o.Path, chData(r.seed, i, o.Dev, o.Size, o.Data))
	case chOpConflict:
		r.writeFile(o.Dev, o.Path, chData(r.seed, i, o.Dev, o.Size, o.Data))
		r.writeFile(o.Dev2, o.Path, chData(r.seed, i, o.Dev2, o.Size, o.Data^1))
	case chOpAppend:
		p := r.abs(o.Dev, o.Path)
		r.release(o.Dev, o.Path)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			r.logf("append on %s: %q absent here", chaosName(o.Dev), o.Path)
			return
		}
		_, err = f.Write(chData(r.seed, i, o.Dev, o.Size, o.Data))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("op %d: append to %s: %v", i, p, err)
		}
		r.record(o.Dev, o.Path, false)
		r.logf("appended %d bytes on %s to %q", o.Size, chaosName(o.Dev), o.Path)
	case chOpTruncate:
		r.release(o.Dev, o.Path)
		if err := os.Truncate(r.abs(o.Dev, o.Path), o.Size); err != nil {
			r.logf("truncate on %s: %q absent here", chaosName(o.Dev), o.Path)
			return
		}
		r.record(o.Dev, o.Path, false)
		r.logf("truncated %q on %s to %d", o.Path, chaosName(o.Dev), o.Size)
	case chOpChmod:
		if err := os.Chmod(r.abs(o.Dev, o.Path), fs.FileMode(o.Size)); err != nil {
			r.logf("chmod on %s: %q absent here", chaosName(o.Dev), o.Path)
			return
		}
		r.logf("chmod %q on %s to %o", o.Path, chaosName(o.Dev), o.Size)
	case chOpRename, chOpMvdir:
		r.rename(o)
	case chOpDelete:
		r.release(o.Dev, o.Path)
		if err := os.Remove(r.abs(o.Dev, o.Path)); err != nil {
			r.logf("delete on %s: %v", chaosName(o.Dev), err)
			return
		}
		r.logf("deleted %q on %s", o.Path, chaosName(o.Dev))
	case chOpMkdir:
		if err := os.MkdirAll(r.abs(o.Dev, o.Path), 0o755); err != nil {
			r.logf("mkdir on %s: %v", chaosName(o.Dev), err)
			return
		}
		r.logf("made directory %q on %s", o.Path, chaosName(o.Dev))
	case chOpRmdir:
		p := r.abs(o.Dev, o.Path)
		if !chExists(p) {
			r.logf("rmdir on %s: %q absent here", chaosName(o.Dev), o.Path)
			return
		}
		r.release(o.Dev, o.Path)
		// The daemon may write into the directory while it is removed
		// (an apply under way), as it may under a user's rm -r: try
		// again, as the user would, and go on if it keeps writing.
		err := os.RemoveAll(p)
		for try := 0; try < 5 && errors.Is(err, syscall.ENOTEMPTY); try++ {
			r.release(o.Dev, o.Path)
			err = os.RemoveAll(p)
		}
		switch {
		case errors.Is(err, syscall.ENOTEMPTY):
			r.logf("rmdir on %s: %v (the daemon kept writing into it)", chaosName(o.Dev), err)
			return
		case err != nil:
			t.Fatalf("op %d: remove %s: %v", i, p, err)
		}
		r.logf("removed directory %q on %s", o.Path, chaosName(o.Dev))
	case chOpStop:
		r.devs[o.Dev].d.stop()
		r.logf("stopped %s", chaosName(o.Dev))
	case chOpStart:
		if !r.devs[o.Dev].running() {
			r.devs[o.Dev].d.start()
		}
		r.logf("started %s", chaosName(o.Dev))
	case chOpKill:
		r.kill(o)
	case chOpSettle:
		r.settle("settle")
	case chOpJoin:
		r.devs = append(r.devs, &chDev{})
		r.startDevice(o.Dev, false)
		r.logf("%s joined the mesh and the folder", chaosName(o.Dev))
	case chOpRevoke:
		r.revoke(o.Dev)
	case chOpReader:
		r.makeReader(o.Dev)
	default:
		t.Fatalf("op %d: unknown kind %q", i, o.Kind)
	}
}

func (r *chRun) writeFile(dev int, rel string, data []byte) {
	p := r.abs(dev, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		// A parent was renamed or removed meanwhile, or is a file here.
		r.logf("write on %s: %v", chaosName(dev), err)
		return
	}
	r.release(dev, rel)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		r.logf("write on %s: %v", chaosName(dev), err)
		return
	}
	r.record(dev, rel, true)
	r.logf("wrote %q on %s (%d bytes, sha256 %.12s)", rel, chaosName(dev), len(data), r.writes[len(r.writes)-1].hash)
}

func (r *chRun) rename(o chaosOp) {
	from, to := r.abs(o.Dev, o.Path), r.abs(o.Dev, o.To)
	if st, err := os.Lstat(from); err != nil || st.IsDir() != (o.Kind == chOpMvdir) {
		r.logf("%s on %s: %q absent here", o.Kind, chaosName(o.Dev), o.Path)
		return
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		r.logf("%s on %s: %v", o.Kind, chaosName(o.Dev), err)
		return
	}
	if st, err := os.Lstat(to); err == nil && !st.IsDir() {
		r.release(o.Dev, o.To) // replaced by the rename
	}
	if err := os.Rename(from, to); err != nil {
		r.logf("%s on %s: %v", o.Kind, chaosName(o.Dev), err)
		return
	}
	r.logf("renamed %q to %q on %s", o.Path, o.To, chaosName(o.Dev))
}

// chKill SIGKILLs d's meshd.
func chKill(d *daemon) {
	_ = d.cmd.Process.Kill()
	<-d.done
	d.logf.Close()
	d.cmd = nil
}

// chPartial reports whether dir holds a partial file of the folder (a
// transfer under way).
func chPartial(dir string) bool {
	found := false
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(e.Name(), ".meshwork-") && strings.HasSuffix(e.Name(), ".partial") {
			found = true
			return fs.SkipAll
		}
		return nil
	})
	return found
}

// kill writes a large file on the sender and SIGKILLs the victim (the
// sender or the receiver) as soon as the receiver has a partial file, then
// starts it again.
func (r *chRun) kill(o chaosOp) {
	sender, receiver := o.Dev, o.Dev2
	if o.To == "receiver" {
		sender, receiver = o.Dev2, o.Dev
	}
	r.writeFile(sender, o.Path, chData(r.seed, r.cur, sender, o.Size, o.Data))
	recv := r.devs[receiver]
	seen := "the receiver's partial file"
	deadline := time.Now().Add(20 * time.Second)
	for !chPartial(recv.dir) {
		if st, err := os.Stat(r.abs(receiver, o.Path)); err == nil && st.Size() == o.Size {
			seen = "the whole file on the receiver (the transfer was done)"
			break
		}
		if time.Now().After(deadline) {
			seen = "nothing within 20s"
			break
		}
		time.Sleep(time.Millisecond)
	}
	victim := r.devs[o.Dev].d
	chKill(victim)
	r.logf("killed %s (the %s) after seeing %s", chaosName(o.Dev), o.To, seen)
	victim.start()
	r.logf("restarted %s", chaosName(o.Dev))
}

// members are the devices that sync the folder as members: present and
// not revoked.
func (r *chRun) members() []int {
	var m []int
	for i, x := range r.devs {
		if x.present && !x.revoked {
			m = append(m, i)
		}
	}
	return m
}

func (r *chRun) revoke(dev int) {
	x, a := r.devs[dev], r.devs[0].d
	a.mesh("revoke", chaosMeshName(dev))
	x.revoked = true
	for _, hs := range r.holders {
		delete(hs, dev)
	}
	for _, i := range r.members() {
		d := r.devs[i].d
		waitFor(r.t, 30*time.Second, chaosName(i)+" no longer lists revoked "+chaosName(dev), func() bool {
			for _, dv := range d.devices() {
				if dv.ID == x.id {
					return false
				}
			}
			return true
		})
	}
	x.since = len(r.writes)
	r.logf("revoked %s (every member knows)", chaosName(dev))
}

func (r *chRun) makeReader(dev int) {
	x, a := r.devs[dev], r.devs[0].d
	a.mesh("folder", "share", "docs", chaosMeshName(dev), "--role", "reader")
	x.reader, x.fenced = true, map[string]bool{}
	waitFor(r.t, 30*time.Second, chaosName(dev)+" sees itself a reader", func() bool {
		return chRole(x.d) == "reader"
	})
	r.logf("made %s a reader", chaosName(dev))
	// Every member catches up with the owner (and so learns the role)
	// before the reader writes anything.
	r.settle("after the role change")
	x.since = len(r.writes)
}

// errChNoFolder: the device does not list the folder.
var errChNoFolder = errors.New("folder docs not listed")

func chRole(d *daemon) string {
	fi, err := chFolderInfo(d)
	if err != nil {
		return ""
	}
	return fi.Role
}
