package exchange

import (
	"bufio"
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/meshwork/meshwork/syncproto"
)

const (
	obj     syncproto.ObjectID = "list-1"
	timeout                    = 20 * time.Second
)

var (
	owner      = syncproto.RoleOwner
	editor     = syncproto.RoleEditor
	readerRole = syncproto.RoleReader
)

// Two devices edit the same item while apart; once connected they
// converge, with the conflict kept identically on both.
func TestConcurrentUpdatesConverge(t *testing.T) {
	ms := newMemberSet()
	a, b := newNode(t, "A", ms), newNode(t, "B", ms)
	m := roles(a, owner, b, editor)
	a.addObject(obj, m)
	b.addObject(obj, m)

	a.update(obj, "x", "from A")
	b.update(obj, "x", "from B")
	a.update(obj, "only-a", "1")
	b.update(obj, "only-b", "2")

	connect(t, a, b)
	waitFor(t, timeout, "convergence", func() bool {
		it, ok := a.item(obj, "x")
		return ok && len(it.Sync.Conflicts) == 1 && converged(obj, a, b) && len(a.e.Object(obj).Items()) == 3
	})
	x, _ := b.item(obj, "x")
	if x.Sync.Updates != 1 || len(x.Sync.Conflicts) != 1 {
		t.Fatalf("x: updates %d, conflicts %d", x.Sync.Updates, len(x.Sync.Conflicts))
	}
	bodies := []string{string(x.Body.(syncproto.Text)), string(x.Sync.Conflicts[0].Body.(syncproto.Text))}
	if !(bodies[0] == "from A" && bodies[1] == "from B" || bodies[0] == "from B" && bodies[1] == "from A") {
		t.Fatalf("x: winner %q, conflict %q", bodies[0], bodies[1])
	}

	// Resolving on one side reaches the other.
	if _, err := b.e.Resolve(obj, "x"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, timeout, "resolution", func() bool {
		it, _ := a.item(obj, "x")
		return len(it.Sync.Conflicts) == 0 && converged(obj, a, b)
	})
}

// A–B–C in a line: A and C never connect, and converge through B,
// conflicts included.
func TestLineTopology(t *testing.T) {
	ms := newMemberSet()
	a, b, c := newNode(t, "A", ms), newNode(t, "B", ms), newNode(t, "C", ms)
	m := roles(a, owner, b, editor, c, editor)
	for _, n := range []*node{a, b, c} {
		n.addObject(obj, m)
	}
	a.update(obj, "z", "A's z")
	c.update(obj, "z", "C's z")
	connect(t, a, b)
	connect(t, b, c)
	a.update(obj, "a", "from A")
	c.update(obj, "c", "from C")
	waitFor(t, timeout, "convergence through B", func() bool {
		z, _ := a.item(obj, "z")
		return a.has(obj, "c") && c.has(obj, "a") && len(z.Sync.Conflicts) == 1 && converged(obj, a, b, c)
	})
	if connected(a, c) {
		t.Fatal("A and C are connected")
	}
	// A change made later is pushed along the line too.
	c.update(obj, "late", "from C")
	waitFor(t, timeout, "late change at A", func() bool { return a.has(obj, "late") && converged(obj, a, b, c) })
	if connected(a, c) {
		t.Fatal("A and C are connected")
	}
}

// A change on A reaches B by push: B's OnChange fires without B asking
// on its own, one announce and one request per change, and nothing
// happens while nothing changes. The package has no ticker.
func TestPushWithoutPolling(t *testing.T) {
	ms := newMemberSet()
	a, b := newNode(t, "A", ms), newNode(t, "B", ms)
	m := roles(a, owner, b, editor)
	oa := a.addObject(obj, m)
	ob := b.addObject(obj, m)
	connect(t, a, b)
	// Catch-up done: each holds the other's (empty) log's epoch.
	waitFor(t, timeout, "catch-up", func() bool {
		return ob.Cursor(a.dev()).Epoch == oa.Epoch() && oa.Cursor(b.dev()).Epoch == ob.Epoch()
	})
	waitFor(t, timeout, "idle", func() bool {
		return a.e.Stats().SessionsStarted == b.e.Stats().SessionsServed && b.e.Stats().SessionsStarted == a.e.Stats().SessionsServed
	})
	sa, sb := a.e.Stats(), b.e.Stats()

	for i := range 3 {
		start := time.Now()
		a.update(obj, "x", strings.Repeat("v", i+1))
		select {
		case items := <-b.changes:
			if len(items) != 1 || items[0].Sync.ID != "x" {
				t.Fatalf("OnChange got %d items", len(items))
			}
			t.Logf("push %d: %v from Update on A to OnChange on B", i, time.Since(start))
		case <-time.After(5 * time.Second):
			t.Fatalf("change %d not pushed within 5 s", i)
		}
	}
	// Let any stray traffic show (an observation window, not a
	// synchronisation: nothing is expected to happen).
	select {
	case items := <-b.changes:
		t.Fatalf("unexpected change %v", items)
	case <-a.changes:
		t.Fatal("unexpected change on A")
	case <-time.After(300 * time.Millisecond):
	}
	da, db := a.e.Stats(), b.e.Stats()
	if got := db.RequestsSent - sb.RequestsSent; got != 3 {
		t.Errorf("B sent %d requests for 3 changes", got)
	}
	if got := da.RequestsSent - sa.RequestsSent; got != 0 {
		t.Errorf("A sent %d requests, nothing changed on B", got)
	}
	if got := da.SessionsStarted - sa.SessionsStarted; got != 3 {
		t.Errorf("A started %d sessions for 3 changes", got)
	}
	if got := db.SessionsStarted - sb.SessionsStarted; got != 0 {
		t.Errorf("B started %d sessions: applying A's changes echoed them back", got)
	}

	// By design: no ticker, no periodic timer in shipped code.
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" && (sel.Sel.Name == "NewTicker" || sel.Sel.Name == "Tick") {
					t.Errorf("%s uses time.%s: the exchange must not poll", f, sel.Sel.Name)
				}
			}
			return true
		})
	}
}

// A burst of changes while a push is in flight becomes one more push.
func TestPushCoalesces(t *testing.T) {
	ms := newMemberSet()
	a, b := newNode(t, "A", ms), newNode(t, "B", ms)
	m := roles(a, owner, b, editor)
	oa := a.addObject(obj, m)
	ob := b.addObject(obj, m)
	connect(t, a, b)
	waitFor(t, timeout, "catch-up", func() bool {
		return ob.Cursor(a.dev()).Epoch == oa.Epoch() && oa.Cursor(b.dev()).Epoch == ob.Epoch()
	})
	waitFor(t, timeout, "idle", func() bool {
		return a.e.Stats().SessionsStarted == b.e.Stats().SessionsServed
	})
	before := a.e.Stats()

	gate := make(chan struct{})
	b.gate.Store(&gate)
	a.update(obj, "item-0", "0")
	select {
	case <-b.entered: // A's first push is being applied on B, and waits
	case <-time.After(timeout):
		t.Fatal("first push never applied")
	}
	for i := 1; i < 50; i++ {
		a.update(obj, "item-"+string(rune('A'+i%26))+strings.Repeat("x", i/26), "v")
	}
	b.gate.Store(nil)
	close(gate)
	waitFor(t, timeout, "burst at B", func() bool { return converged(obj, a, b) })
	if got := a.e.Stats().SessionsStarted - before.SessionsStarted; got != 2 {
		t.Errorf("A started %d sessions for a push and a burst of 49, want 2", got)
	}
}

// A reader's change is refused by every other device and not relayed:
// R is a reader for A and B but (misconfigured) an editor for C and
// itself. Line R–C–B–A, plus R–B.
func TestReaderRefused(t *testing.T) {
	ms := newMemberSet()
	a, b, c, r := newNode(t, "A", ms), newNode(t, "B", ms), newNode(t, "C", ms), newNode(t, "R", ms)
	honest := roles(a, owner, b, editor, c, editor, r, readerRole)
	forged := roles(a, owner, b, editor, c, editor, r, editor)
	a.addObject(obj, honest)
	b.addObject(obj, honest)
	c.addObject(obj, forged)
	r.addObject(obj, forged)
	connect(t, r, c)
	connect(t, c, b)
	connect(t, b, a)
	connect(t, r, b)

	r.update(obj, "evil", "from a reader")
	waitFor(t, timeout, "reader's change at C", func() bool { return c.has(obj, "evil") })
	c.update(obj, "ok", "from an editor")
	waitFor(t, timeout, "editor's change at A", func() bool { return a.has(obj, "ok") && b.has(obj, "ok") })
	// The reader still receives.
	waitFor(t, timeout, "editor's change at R", func() bool { return r.has(obj, "ok") })

	for _, n := range []*node{a, b} {
		if n.has(obj, "evil") {
			t.Errorf("%s holds the reader's change", n.name)
		}
	}
	if got := b.e.Stats().ItemsRefused; got < 1 {
		t.Errorf("B refused %d items, want the reader's change relayed by C", got)
	}
	if got := a.e.Stats().ItemsRefused; got != 0 {
		t.Errorf("A refused %d items: B relayed the reader's change", got)
	}
	// A change by A reaches everyone, the reader included.
	a.update(obj, "from-owner", "hi")
	waitFor(t, timeout, "owner's change at R", func() bool { return r.has(obj, "from-owner") })
}

// B loses its database: a new store, a new epoch, the object added again.
// A's cursor of B is of the old epoch: full reconciliation both ways, with
// only the items that differ travelling.
func TestLostDatabase(t *testing.T) {
	ms := newMemberSet()
	a, b := newNode(t, "A", ms), newNode(t, "B", ms)
	m := roles(a, owner, b, editor)
	oa := a.addObject(obj, m)
	b.addObject(obj, m)
	for i := range 10 {
		a.update(obj, "a"+string(rune('0'+i)), "A")
	}
	b.update(obj, "b0", "B")
	b.update(obj, "b1", "B")
	connect(t, a, b)
	waitFor(t, timeout, "first convergence", func() bool { return converged(obj, a, b) && len(oa.Items()) == 12 })
	oldEpoch := b.e.Object(obj).Epoch()

	b.stop()
	b.store = NewMemStore() // the database is gone
	b.start()
	ob := b.addObject(obj, m)
	if ob.Epoch() == oldEpoch {
		t.Fatal("new database, same epoch")
	}
	b.update(obj, "after", "B again")
	beforeA := a.e.Stats()
	connect(t, a, b)
	waitFor(t, timeout, "convergence after the loss", func() bool {
		return converged(obj, a, b) && len(oa.Items()) == 13
	})
	waitFor(t, timeout, "A's cursor of B's new log", func() bool { return oa.Cursor(b.dev()).Epoch == ob.Epoch() })
	sa, sb := a.e.Stats(), b.e.Stats()
	if sa.FullRequestsSent-beforeA.FullRequestsSent < 1 || sb.FullRequestsSent < 1 {
		t.Errorf("full requests: A %d, B %d", sa.FullRequestsSent-beforeA.FullRequestsSent, sb.FullRequestsSent)
	}
	if got := sb.ChangesSent; got != 1 {
		t.Errorf("B sent %d items, want only the new one", got)
	}
	if got := sa.ChangesSent - beforeA.ChangesSent; got != 12 {
		t.Errorf("A sent %d items to B's empty replica, want 12", got)
	}
}

// B's database is restored from an old backup, same epoch: A holds a
// cursor beyond B's head, reconciles fully and gives B back what it lost.
func TestRolledBackPeer(t *testing.T) {
	ms := newMemberSet()
	a, b := newNode(t, "A", ms), newNode(t, "B", ms)
	m := roles(a, owner, b, editor)
	oa := a.addObject(obj, m)
	b.addObject(obj, m)
	b.update(obj, "early", "B")
	ctx := context.Background()
	backup, err := b.store.Get(ctx, obj)
	if err != nil {
		t.Fatal(err)
	}
	b.update(obj, "lost-1", "B")
	b.update(obj, "lost-2", "B")
	connect(t, a, b)
	waitFor(t, timeout, "first convergence", func() bool { return converged(obj, a, b) && len(oa.Items()) == 3 })

	b.stop()
	b.store = NewMemStore()
	if err := b.store.Put(ctx, obj, backup); err != nil {
		t.Fatal(err)
	}
	b.start()
	ob := b.e.Object(obj)
	if ob == nil || len(ob.Items()) != 1 {
		t.Fatal("backup not loaded")
	}
	b.update(obj, "new", "B")
	before := a.e.Stats()
	connect(t, a, b)
	waitFor(t, timeout, "convergence after the rollback", func() bool {
		return converged(obj, a, b) && len(oa.Items()) == 4
	})
	if got := a.e.Stats().FullRequestsSent - before.FullRequestsSent; got < 1 {
		t.Errorf("A sent %d full requests", got)
	}
}

// A host that is not a mesh member gets its streams reset and no data,
// and is never sent to.
func TestNonMemberReset(t *testing.T) {
	ms := newMemberSet()
	a := newNode(t, "A", ms)
	outsiders := newMemberSet()
	outsiders.add(a.h.ID())
	n := newNode(t, "N", outsiders) // N thinks A is a member; A does not know N
	m := roles(a, owner, n, editor) // the object even lists N
	a.addObject(obj, m)
	n.addObject(obj, m)
	a.update(obj, "secret", "for members")
	connect(t, n, a)

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := n.e.Sync(ctx, a.h.ID()); err == nil {
		t.Fatal("sync of a non-member succeeded")
	}
	// By hand: a well-formed ANNOUNCE, then read.
	st, err := n.h.NewStream(ctx, a.h.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(st)
	if err := writeFrame(w, msgAnnounce, announce{Reply: true}.encode()); err == nil {
		_ = writeFrame(w, msgEnd, nil)
		_ = w.Flush()
	}
	got, err := io.ReadAll(st)
	if err == nil || len(got) != 0 {
		t.Fatalf("non-member read %d bytes, err %v", len(got), err)
	}
	waitFor(t, timeout, "refusals counted", func() bool { return a.e.Stats().StreamsRefused >= 2 })
	if s := a.e.Stats(); s.SessionsStarted != 0 || s.ChangesSent != 0 || s.SessionsServed != 0 {
		t.Fatalf("A talked to a non-member: %+v", s)
	}
	if n.has(obj, "secret") {
		t.Fatal("non-member got the item")
	}
}

// A restart (badger store, same keys) resumes from the persisted cursors:
// only the change made since travels, no full reconciliation.
func TestRestartResumesFromCursors(t *testing.T) {
	ms := newMemberSet()
	a, b := newNode(t, "A", ms), newNode(t, "B", ms)
	openDB := func(dir string) *badger.DB {
		db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	dbA, dbB := openDB(dirA), openDB(dirB)
	for _, x := range []struct {
		n  *node
		db *badger.DB
	}{{a, dbA}, {b, dbB}} {
		x.n.stop()
		x.n.store = NewBadgerStore(x.db, "sync/")
		x.n.start()
	}
	m := roles(a, owner, b, editor)
	a.addObject(obj, m)
	b.addObject(obj, m)
	for i := range 30 {
		a.update(obj, "a-"+strings.Repeat("i", i+1), "A")
	}
	for i := range 10 {
		b.update(obj, "b-"+strings.Repeat("i", i+1), "B")
	}
	connect(t, a, b)
	waitFor(t, timeout, "convergence", func() bool { return converged(obj, a, b) && len(a.e.Object(obj).Items()) == 40 })
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := a.e.Sync(ctx, b.h.ID()); err != nil {
		t.Fatal(err)
	}
	caughtUp := func() bool {
		oa, ob := a.e.Object(obj), b.e.Object(obj)
		return oa.Cursor(b.dev()) == syncproto.Cursor{Epoch: ob.Epoch(), Seq: ob.Head()} &&
			ob.Cursor(a.dev()) == syncproto.Cursor{Epoch: oa.Epoch(), Seq: oa.Head()}
	}
	waitFor(t, timeout, "cursors at the heads", caughtUp)

	a.stop()
	b.stop()
	dbA.Close()
	dbB.Close()
	dbA, dbB = openDB(dirA), openDB(dirB)
	t.Cleanup(func() { dbA.Close(); dbB.Close() }) // after the engines' cleanups
	a.store, b.store = NewBadgerStore(dbA, "sync/"), NewBadgerStore(dbB, "sync/")
	a.start()
	b.start()
	if o := a.e.Object(obj); o == nil || len(o.Items()) != 40 || !caughtUp() {
		t.Fatal("replicas or cursors not restored")
	}
	a.update(obj, "new", "after the restart")
	connect(t, a, b)
	waitFor(t, timeout, "the new change at B", func() bool { return b.has(obj, "new") && converged(obj, a, b) })
	// A's items travel no more: wait for B's catch-up push to be done.
	waitFor(t, timeout, "idle", func() bool {
		sa, sb := a.e.Stats(), b.e.Stats()
		return sa.SessionsStarted == sb.SessionsServed && sb.SessionsStarted == sa.SessionsServed
	})
	sa, sb := a.e.Stats(), b.e.Stats()
	t.Logf("after restart: A %+v", sa)
	t.Logf("after restart: B %+v", sb)
	if sa.FullRequestsSent != 0 || sb.FullRequestsSent != 0 {
		t.Errorf("full requests after a restart: A %d, B %d", sa.FullRequestsSent, sb.FullRequestsSent)
	}
	if sa.ChangesSent != 1 {
		t.Errorf("A sent %d items, want the one new change", sa.ChangesSent)
	}
	// B may send the new item back if it had applied it before its own
	// catch-up announce: at most one item.
	if sb.ChangesSent > 1 {
		t.Errorf("B sent %d items, want at most 1", sb.ChangesSent)
	}
}

// Engine lifetime: Close is idempotent and waits; calls after it fail.
func TestCloseIdempotent(t *testing.T) {
	ms := newMemberSet()
	a := newNode(t, "A", ms)
	a.addObject(obj, roles(a, owner))
	a.stop()
	if err := a.e.Close(); err != nil {
		t.Fatal(err)
	}
	o, err := syncproto.NewObject("other", syncproto.TypeNote, roles(a, owner), a.e.ObjectConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.e.Add(o); !errors.Is(err, ErrClosed) {
		t.Fatalf("add after close: %v", err)
	}
	if err := a.e.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("run after close: %v", err)
	}
	if _, err := a.e.Update("nope", "x", syncproto.Content{}); !errors.Is(err, ErrUnknownObject) {
		t.Fatalf("update of unknown object: %v", err)
	}
	big := syncproto.Content{Body: syncproto.Bytes(make([]byte, MaxItemSize))}
	if _, err := a.e.Update(obj, "big", big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("update too large: %v", err)
	}
}

// A batch of local changes is persisted and pushed once; a replica larger
// than a frame travels in several CHANGES frames.
func TestBatchAndLargeObject(t *testing.T) {
	ms := newMemberSet()
	a, b := newNode(t, "A", ms), newNode(t, "B", ms)
	m := roles(a, owner, b, editor)
	oa := a.addObject(obj, m)
	b.addObject(obj, m)
	big := strings.Repeat("0123456789abcdef", 20<<10) // 320 KiB
	err := a.e.Change(obj, func(o *syncproto.Object) error {
		for i := range 30 { // 9.4 MiB in all: more than MaxFrameSize
			if _, err := o.Update(syncproto.ItemID("big-"+strings.Repeat("i", i+1)), syncproto.Content{Body: syncproto.Text(big)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	connect(t, a, b)
	waitFor(t, timeout, "large object at B", func() bool { return converged(obj, a, b) && len(oa.Items()) == 30 })
	if got := b.e.Stats().ChangesReceived; got != 30 {
		t.Errorf("B received %d items, want 30", got)
	}
	waitFor(t, timeout, "idle", func() bool { return a.e.Stats().SessionsStarted == b.e.Stats().SessionsServed })
	before := a.e.Stats()
	err = a.e.Change(obj, func(o *syncproto.Object) error {
		for i := range 20 {
			if _, err := o.Update(syncproto.ItemID("small-"+strings.Repeat("i", i+1)), syncproto.Content{Title: "s"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, timeout, "batch at B", func() bool { return converged(obj, a, b) && len(oa.Items()) == 50 })
	if got := a.e.Stats().SessionsStarted - before.SessionsStarted; got != 1 {
		t.Errorf("a batch of 20 changes took %d pushes", got)
	}
}

// A member that breaks the protocol (CHANGES nobody asked for) gets ERROR
// and a reset, and its items are not applied.
func TestProtocolViolation(t *testing.T) {
	ms := newMemberSet()
	a, m := newNode(t, "A", ms), newNode(t, "M", ms)
	a.addObject(obj, roles(a, owner, m, editor))
	connect(t, m, a)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := m.h.NewStream(ctx, a.h.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Reset()
	w := bufio.NewWriter(st)
	changes := sampleChanges() // a valid batch for object "list"
	for _, f := range []struct {
		typ byte
		p   []byte
	}{{msgChanges, changes}, {msgEnd, nil}} {
		if err := writeFrame(w, f.typ, f.p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	typ, p, err := readFrame(bufio.NewReader(st))
	if err != nil || typ != msgError {
		t.Fatalf("got frame %#x, %v", typ, err)
	}
	if e, err := decodeError(p); err != nil || e.Code != codeBadRequest {
		t.Fatalf("error frame %+v, %v", e, err)
	}
	if a.e.Stats().ChangesReceived != 0 {
		t.Fatal("unsolicited changes applied")
	}
}

// TestMembershipChanged: a peer connected before it became a member (a
// device redeeming an invite over that very connection) is taken on once
// the daemon says membership changed, and changes then flow to it.
func TestMembershipChanged(t *testing.T) {
	msA, msB := newMemberSet(), newMemberSet()
	a, b := newNode(t, "A", msA), newNode(t, "B", msB)
	m := roles(a, owner, b, editor)
	a.addObject(obj, m)
	b.addObject(obj, m)
	connect(t, a, b) // neither counts the other as a member yet
	a.update(obj, "x", "1")
	// Nothing can flow: A does not push to a non-member.
	if b.has(obj, "x") {
		t.Fatal("a change reached a non-member")
	}
	msA.add(b.h.ID())
	msB.add(a.h.ID())
	a.e.MembershipChanged()
	b.e.MembershipChanged()
	waitFor(t, timeout, "x on B after MembershipChanged", func() bool { return b.has(obj, "x") })
	b.update(obj, "y", "2")
	waitFor(t, timeout, "y pushed to A", func() bool { return a.has(obj, "y") })
}

// An item that cannot be sent (larger than a frame: it reached the log
// without the size checks) is skipped and counted; it never blocks the
// peer's cursor, so the changes after it still travel.
func TestUnsendableItemSkipped(t *testing.T) {
	ms := newMemberSet()
	a, b := newNode(t, "A", ms), newNode(t, "B", ms)
	m := roles(a, owner, b, editor)
	a.addObject(obj, m)
	ob := b.addObject(obj, m)
	err := a.e.Change(obj, func(o *syncproto.Object) error {
		if _, err := o.Update("huge", syncproto.Content{Body: syncproto.Bytes(make([]byte, MaxFrameSize))}); err != nil {
			return err
		}
		_, err := o.Update("after", syncproto.Content{Title: "after the huge one"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	connect(t, a, b)
	waitFor(t, timeout, "the item after the huge one at B", func() bool { _, ok := ob.Item("after"); return ok })
	if _, ok := ob.Item("huge"); ok {
		t.Fatal("B holds an item larger than a frame")
	}
	if got := a.e.Stats().ItemsUnsendable; got < 1 {
		t.Fatalf("A counted %d unsendable items, want at least 1", got)
	}
	if _, err := a.e.Update(obj, "later", syncproto.Content{Title: "later"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, timeout, "a later change at B", func() bool { _, ok := ob.Item("later"); return ok })
}

// idle waits until every session either side started has been served.
func cuIdle(t *testing.T, a, b *node) {
	t.Helper()
	waitFor(t, timeout, "idle", func() bool {
		sa, sb := a.e.Stats(), b.e.Stats()
		return sa.SessionsStarted == sb.SessionsServed && sb.SessionsStarted == sa.SessionsServed
	})
}

// TestAddedReplicaCatchesUp: a device that starts holding an object after
// the peer announced it (a catalog entry arrived, a folder was joined)
// gets the peer's items at once, with nothing changing on the peer: the
// Add asks the connected members for their announcement.
func TestAddedReplicaCatchesUp(t *testing.T) {
	ms := newMemberSet()
	a, b := newNode(t, "A", ms), newNode(t, "B", ms)
	m := roles(a, owner, b, editor)
	a.addObject(obj, m)
	a.update(obj, "x", "held by A only")
	connect(t, a, b)
	cuIdle(t, a, b) // A's catch-up announced obj; B ignored it (not held)
	if b.e.Object(obj) != nil {
		t.Fatal("B holds obj before adding it")
	}
	b.addObject(obj, m)
	waitFor(t, timeout, "x on B after B added the replica", func() bool { return b.has(obj, "x") })
}

// TestMemberListChangeCatchesUp: B ignored A's announcement because its
// replica did not list A as a writer; once B's member list names A, B
// catches up with A, with nothing changing on A.
func TestMemberListChangeCatchesUp(t *testing.T) {
	ms := newMemberSet()
	a, b := newNode(t, "A", ms), newNode(t, "B", ms)
	a.addObject(obj, roles(a, owner, b, editor))
	a.update(obj, "x", "1")
	b.addObject(obj, roles(a, readerRole, b, owner))
	connect(t, a, b)
	cuIdle(t, a, b)
	if b.has(obj, "x") {
		t.Fatal("B took changes from a reader")
	}
	if err := b.e.SetMembers(obj, roles(a, owner, b, editor)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, timeout, "x on B after its member list changed", func() bool { return b.has(obj, "x") })
}
