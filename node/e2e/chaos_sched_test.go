package e2e

import (
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"strings"
	"time"
)

// The chaos harness (issue 20, section A): a schedule of operations is
// generated from a seed alone (chaosSchedule), then run against real meshd
// processes sharing one folder (chaos_run_test.go), and the invariants are
// checked at every settle point and at the end (chaos_check_test.go).
//
// The generator keeps a model of the folder as if every change reached
// every device at once; the schedule names paths from that model. When run,
// a path may not exist on the device an operation targets (the change has
// not arrived there yet): the operation is then logged as skipped. The
// schedule depends only on the seed and the mode; what the devices do with
// it depends on timing, which is the point.

// chaosOp is one step of a schedule.
type chaosOp struct {
	Kind string // see the chOp* constants
	Dev  int    // the device acted on (index into the harness's devices)
	Dev2 int    // the second device: conflict's other writer, kill's other end
	Path string
	To   string // rename/mvdir destination; kill: "sender" or "receiver" (what Dev is)
	Size int64  // write: size; append: bytes added; truncate: new size; chmod: the mode
	Data uint64 // content seed
	// Pause is the think time before the op (drawn like the rest: the
	// workload's pace, so that some changes arrive before the next op and
	// some do not; never a synchronisation).
	Pause time.Duration
}

const (
	chOpWrite    = "write"    // create or overwrite Path with Size bytes
	chOpAppend   = "append"   // append Size bytes to Path
	chOpTruncate = "truncate" // truncate Path to Size bytes
	chOpChmod    = "chmod"    // chmod Path to Size (0644 or 0755)
	chOpRename   = "rename"   // rename the file Path to To
	chOpMvdir    = "mvdir"    // rename the directory Path to To
	chOpDelete   = "delete"   // remove the file Path
	chOpMkdir    = "mkdir"    // create the directory Path
	chOpRmdir    = "rmdir"    // remove the directory Path and all it holds
	chOpConflict = "conflict" // write Path on Dev and on Dev2 at once
	chOpStop     = "stop"     // SIGTERM Dev (a partition: it sees no one until started)
	chOpStart    = "start"    // start Dev again (same home)
	chOpKill     = "kill"     // write a large Path on the sender, SIGKILL Dev mid-transfer, restart it
	chOpSettle   = "settle"   // start every stopped device, wait for quiescence, check invariants
	chOpJoin     = "join"     // a new device Dev joins the mesh and the folder
	chOpRevoke   = "revoke"   // the owner revokes Dev
	chOpReader   = "reader"   // the folder's owner makes Dev a reader
)

func (o chaosOp) String() string {
	if o.Pause > 0 {
		return fmt.Sprintf("+%-5s %s", o.Pause, o.describe())
	}
	return "       " + o.describe()
}

func (o chaosOp) describe() string {
	dev := func(i int) string { return chaosName(i) }
	switch o.Kind {
	case chOpWrite:
		return fmt.Sprintf("write    %s %q %d bytes (data %x)", dev(o.Dev), o.Path, o.Size, o.Data)
	case chOpAppend:
		return fmt.Sprintf("append   %s %q +%d bytes (data %x)", dev(o.Dev), o.Path, o.Size, o.Data)
	case chOpTruncate:
		return fmt.Sprintf("truncate %s %q to %d bytes", dev(o.Dev), o.Path, o.Size)
	case chOpChmod:
		return fmt.Sprintf("chmod    %s %q %o", dev(o.Dev), o.Path, o.Size)
	case chOpRename, chOpMvdir:
		return fmt.Sprintf("%-8s %s %q -> %q", o.Kind, dev(o.Dev), o.Path, o.To)
	case chOpDelete, chOpMkdir, chOpRmdir:
		return fmt.Sprintf("%-8s %s %q", o.Kind, dev(o.Dev), o.Path)
	case chOpConflict:
		return fmt.Sprintf("conflict %s and %s %q %d bytes (data %x)", dev(o.Dev), dev(o.Dev2), o.Path, o.Size, o.Data)
	case chOpKill:
		return fmt.Sprintf("kill     %s (the %s; other end %s) while %q (%d bytes) transfers", dev(o.Dev), o.To, dev(o.Dev2), o.Path, o.Size)
	case chOpSettle:
		return "settle"
	default:
		return fmt.Sprintf("%-8s %s", o.Kind, dev(o.Dev))
	}
}

// chaosName is device i's short name (also its daemon's name).
func chaosName(i int) string { return string(rune('a' + i)) }

// chaosConf is a mode of the harness: make test, make chaos, make soak.
type chaosConf struct {
	Mode    string
	Devs    int   // devices at the start
	MaxDevs int   // upper bound of Devs (soak draws 4 or 5)
	Ops     int   // operations besides the forced settles
	MaxSize int64 // largest ordinary file
	BigSize int64 // the one large file (and the killed transfer's)
	Kills   int
	Stops   int
}

var (
	chConfTest = chaosConf{Mode: "test", Devs: 3, MaxDevs: 3, Ops: 20, MaxSize: 256 << 10, BigSize: 3 << 20, Kills: 1, Stops: 1}
	chConfBig  = chaosConf{Mode: "big", Devs: 3, MaxDevs: 4, Ops: 40, MaxSize: 2 << 20, BigSize: 24 << 20, Kills: 2, Stops: 2}
	chConfSoak = chaosConf{Mode: "soak", Devs: 4, MaxDevs: 5, Ops: 60, MaxSize: 4 << 20, BigSize: 40 << 20, Kills: 3, Stops: 3}
)

// chaosSchedStream is the PCG's second seed word ("chaos"): the first is the seed.
const chaosSchedStream = 0x6368616f73

// chGenDev is the generator's view of a device.
type chGenDev struct {
	present, running, revoked, reader bool
	startAt                           int // op index at which a stopped device comes back; -1 none
}

type chGen struct {
	r     *rand.Rand
	c     chaosConf
	devs  []chGenDev
	files map[string]bool
	dirs  map[string]bool
	ops   []chaosOp
	n     int // counter for fresh names
	i     int // the operation being drawn
}

// chaosSchedule is the schedule of seed in mode c (and the number of
// devices it starts with). It depends on nothing else.
func chaosSchedule(seed int64, c chaosConf) (devs int, ops []chaosOp) {
	g := &chGen{r: rand.New(rand.NewPCG(uint64(seed), chaosSchedStream)), c: c, files: map[string]bool{}, dirs: map[string]bool{}}
	devs = c.Devs + g.r.IntN(c.MaxDevs-c.Devs+1)
	for range devs {
		g.devs = append(g.devs, chGenDev{present: true, running: true, startAt: -1})
	}
	// Membership events: make test has one per seed (a join, a revoke or a
	// role change), soak each with probability 2/3.
	events := map[int]string{}
	place := func(kind string) {
		for {
			at := c.Ops/4 + g.r.IntN(c.Ops/2)
			if events[at] == "" {
				events[at] = kind
				return
			}
		}
	}
	if c.Mode == "test" {
		place([]string{chOpJoin, chOpRevoke, chOpReader}[g.r.IntN(3)])
	} else {
		for _, k := range []string{chOpJoin, chOpRevoke, chOpReader} {
			if g.r.IntN(3) != 0 {
				place(k)
			}
		}
	}
	killAt := g.r.Perm(c.Ops)[:c.Kills]
	stopAt := g.r.Perm(c.Ops)[:c.Stops]
	bigAt := g.r.IntN(c.Ops)
	for i := range c.Ops {
		g.i = i
		for d := range g.devs {
			if g.devs[d].startAt == i {
				g.start(d)
			}
		}
		switch {
		case events[i] != "":
			g.membership(events[i])
		case slices.Contains(killAt, i):
			g.kill()
		case slices.Contains(stopAt, i):
			g.stop()
		case i == bigAt:
			g.write(g.editor(), c.BigSize)
		default:
			g.fileOp()
		}
	}
	return devs, g.ops // the harness ends every run with a settle
}

func (g *chGen) emit(o chaosOp) {
	if g.r.IntN(2) == 0 {
		o.Pause = time.Duration(g.r.IntN(400)) * time.Millisecond
	}
	g.ops = append(g.ops, o)
}

func (g *chGen) start(d int) {
	g.devs[d].running, g.devs[d].startAt = true, -1
	g.emit(chaosOp{Kind: chOpStart, Dev: d})
}

// settle starts every stopped device (the harness does the same).
func (g *chGen) settle() {
	for d := range g.devs {
		g.devs[d].running, g.devs[d].startAt = g.devs[d].present, -1
	}
	g.emit(chaosOp{Kind: chOpSettle})
}

// pick returns one of the devices for which ok holds, or -1.
func (g *chGen) pick(ok func(int, chGenDev) bool) int {
	var c []int
	for i, d := range g.devs {
		if d.present && ok(i, d) {
			c = append(c, i)
		}
	}
	if len(c) == 0 {
		return -1
	}
	return c[g.r.IntN(len(c))]
}

func chIsEditor(d chGenDev) bool { return !d.revoked && !d.reader }

// editor is a random editor, running or not (editing a stopped device's
// folder is an edit made while it is offline).
func (g *chGen) editor() int { return g.pick(func(_ int, x chGenDev) bool { return chIsEditor(x) }) }

func (g *chGen) membership(kind string) {
	if !g.devs[0].running { // the owner invites, revokes and shares
		g.start(0)
	}
	switch kind {
	case chOpJoin:
		d := len(g.devs)
		g.devs = append(g.devs, chGenDev{present: true, running: true, startAt: -1})
		g.emit(chaosOp{Kind: chOpJoin, Dev: d})
	case chOpRevoke, chOpReader:
		// Never device a, the mesh's and the folder's owner.
		d := g.pick(func(i int, x chGenDev) bool { return i > 0 && chIsEditor(x) })
		if d < 0 {
			g.fileOp()
			return
		}
		g.settle() // everything written so far reaches everyone first
		g.emit(chaosOp{Kind: kind, Dev: d})
		if kind == chOpRevoke {
			g.devs[d].revoked = true
		} else {
			g.devs[d].reader = true
		}
	}
}

func (g *chGen) kill() {
	victim := g.pick(func(_ int, x chGenDev) bool { return chIsEditor(x) })
	other := g.pick(func(_ int, x chGenDev) bool { return chIsEditor(x) })
	for tries := 0; victim == other && tries < 10; tries++ {
		other = g.pick(func(_ int, x chGenDev) bool { return chIsEditor(x) })
	}
	if victim < 0 || victim == other {
		g.fileOp()
		return
	}
	for _, d := range []int{victim, other} {
		if !g.devs[d].running {
			g.start(d)
		}
	}
	role := []string{"sender", "receiver"}[g.r.IntN(2)]
	p := g.newFile()
	g.files[p] = true
	g.addParents(p)
	g.emit(chaosOp{Kind: chOpKill, Dev: victim, Dev2: other, To: role, Path: p, Size: g.c.BigSize, Data: g.r.Uint64()})
}

func (g *chGen) stop() {
	d := g.pick(func(_ int, x chGenDev) bool { return x.running })
	if d < 0 {
		g.fileOp()
		return
	}
	g.devs[d].running = false
	g.devs[d].startAt = g.i + 1 + g.r.IntN(6)
	g.emit(chaosOp{Kind: chOpStop, Dev: d})
}

// size draws a file size: mostly small, sometimes up to MaxSize.
func (g *chGen) size() int64 {
	switch x := g.r.IntN(10); {
	case x == 0:
		return 0
	case x < 6:
		return int64(g.r.IntN(4 << 10))
	case x < 9:
		return int64(g.r.IntN(64 << 10))
	default:
		return g.r.Int64N(g.c.MaxSize + 1)
	}
}

func chSortedKeys(m map[string]bool) []string {
	k := make([]string, 0, len(m))
	for p := range m {
		k = append(k, p)
	}
	sort.Strings(k)
	return k
}

func (g *chGen) anyOf(m map[string]bool) string {
	k := chSortedKeys(m)
	if len(k) == 0 {
		return ""
	}
	return k[g.r.IntN(len(k))]
}

// dir is an existing directory or the root ("").
func (g *chGen) dir() string {
	if len(g.dirs) == 0 || g.r.IntN(3) == 0 {
		return ""
	}
	return g.anyOf(g.dirs)
}

var chExts = []string{".txt", ".bin", "", ".tar.gz", " copy.md"}

func (g *chGen) newFile() string {
	g.n++
	return path.Join(g.dir(), fmt.Sprintf("f%d%s", g.n, chExts[g.r.IntN(len(chExts))]))
}

func (g *chGen) newDir() string {
	g.n++
	name := fmt.Sprintf("d%d", g.n)
	if g.r.IntN(4) == 0 {
		name += " x" // a space in a name
	}
	return path.Join(g.dir(), name)
}

// chUnder reports whether p is dir or inside it.
func chUnder(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

func (g *chGen) addParents(p string) {
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		g.dirs[d] = true
	}
}

func (g *chGen) write(d int, size int64) {
	if d < 0 {
		return
	}
	p := g.anyOf(g.files)
	if p == "" || g.r.IntN(2) == 0 {
		p = g.newFile()
	}
	g.files[p] = true
	g.addParents(p)
	g.emit(chaosOp{Kind: chOpWrite, Dev: d, Path: p, Size: size, Data: g.r.Uint64()})
}

// fileOp emits one weighted random file operation.
func (g *chGen) fileOp() {
	d := g.editor()
	// Readers' and revoked devices' edits, which must reach no one.
	if x := g.pick(func(_ int, x chGenDev) bool { return !chIsEditor(x) }); x >= 0 && g.r.IntN(4) == 0 {
		g.write(x, g.size())
		return
	}
	weights := []struct {
		kind string
		w    int
	}{{chOpWrite, 24}, {chOpAppend, 8}, {chOpTruncate, 5}, {chOpChmod, 3}, {chOpRename, 8}, {chOpMvdir, 4},
		{chOpDelete, 7}, {chOpMkdir, 4}, {chOpRmdir, 3}, {chOpConflict, 6}, {chOpSettle, 4}}
	total := 0
	for _, w := range weights {
		total += w.w
	}
	x := g.r.IntN(total)
	kind := ""
	for _, w := range weights {
		if x < w.w {
			kind = w.kind
			break
		}
		x -= w.w
	}
	f := g.anyOf(g.files)
	if f == "" && kind != chOpMkdir && kind != chOpSettle && kind != chOpMvdir && kind != chOpRmdir {
		kind = chOpWrite
	}
	switch kind {
	case chOpWrite:
		g.write(d, g.size())
	case chOpAppend:
		g.emit(chaosOp{Kind: kind, Dev: d, Path: f, Size: 1 + int64(g.r.IntN(8<<10)), Data: g.r.Uint64()})
	case chOpTruncate:
		g.emit(chaosOp{Kind: kind, Dev: d, Path: f, Size: int64(g.r.IntN(2 << 10))})
	case chOpChmod:
		g.emit(chaosOp{Kind: kind, Dev: d, Path: f, Size: []int64{0o644, 0o755, 0o600}[g.r.IntN(3)]})
	case chOpRename:
		to := g.newFile()
		if g.r.IntN(5) == 0 && len(g.files) > 1 {
			to = g.anyOf(g.files) // over an existing file
		}
		if to == f {
			return
		}
		delete(g.files, f)
		g.files[to] = true
		g.addParents(to)
		g.emit(chaosOp{Kind: kind, Dev: d, Path: f, To: to})
	case chOpMvdir:
		from := g.anyOf(g.dirs)
		if from == "" {
			g.write(d, g.size())
			return
		}
		to := g.newDir()
		if chUnder(to, from) {
			to = path.Base(to) // not into itself
		}
		g.moveDir(from, to)
		g.emit(chaosOp{Kind: kind, Dev: d, Path: from, To: to})
	case chOpDelete:
		delete(g.files, f)
		g.emit(chaosOp{Kind: kind, Dev: d, Path: f})
	case chOpMkdir:
		p := g.newDir()
		g.dirs[p] = true
		g.addParents(p)
		g.emit(chaosOp{Kind: kind, Dev: d, Path: p})
	case chOpRmdir:
		p := g.anyOf(g.dirs)
		if p == "" {
			g.write(d, g.size())
			return
		}
		for _, m := range []map[string]bool{g.files, g.dirs} {
			for k := range m {
				if chUnder(k, p) {
					delete(m, k)
				}
			}
		}
		g.emit(chaosOp{Kind: kind, Dev: d, Path: p})
	case chOpConflict:
		d2 := g.editor()
		if d2 == d {
			g.write(d, g.size())
			return
		}
		g.emit(chaosOp{Kind: kind, Dev: d, Dev2: d2, Path: f, Size: g.size(), Data: g.r.Uint64()})
	case chOpSettle:
		g.settle()
	}
}

func (g *chGen) moveDir(from, to string) {
	for _, m := range []map[string]bool{g.files, g.dirs} {
		for _, k := range chSortedKeys(m) {
			if chUnder(k, from) {
				delete(m, k)
				m[to+strings.TrimPrefix(k, from)] = true
			}
		}
	}
	g.addParents(to + "/x")
}
