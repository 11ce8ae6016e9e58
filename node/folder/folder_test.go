package folder

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/hlc"
)

// TestRoundTrip: files, directories, empty directories, the executable
// bit, mtimes and symlinks go A→B; then modify, delete, rename and move;
// B's own scan reports nothing it wrote; a move transfers no chunk.
func TestRoundTrip(t *testing.T) {
	a, b := pair(t)
	mt := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	a.write("a.txt", []byte("hello"), 0o644)
	a.write("sub/run.sh", []byte("#!/bin/sh\necho hi\n"), 0o755)
	a.write("sub/deep/big.bin", randBytes(1, 3<<20), 0o600)
	a.write("gone.txt", []byte("bye"), 0o644)
	a.write("empty.txt", nil, 0o644)
	if err := os.MkdirAll(a.path("emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(a.path("a.txt"), mt, mt); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/run.sh", a.path("link")); err != nil {
		t.Fatal(err)
	}
	a.scan()
	b.mustPull(a)
	sameTree(t, a, b)
	if fi, err := os.Stat(b.path("a.txt")); err != nil || !fi.ModTime().Equal(mt) {
		t.Errorf("mtime on B: %v %v, want %v", fi.ModTime(), err, mt)
	}
	headB := b.obj.Head()
	b.scan()
	if b.obj.Head() != headB {
		t.Errorf("B's scan reported its own writes as changes (head %d -> %d)", headB, b.obj.Head())
	}

	// Modify, delete, chmod, rename and move.
	a.write("a.txt", []byte("hello again"), 0o644)
	if err := os.Remove(a.path("gone.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(a.path("sub/run.sh"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(a.path("sub/deep/big.bin"), a.path("moved.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(a.path("sub/deep")); err != nil {
		t.Fatal(err)
	}
	a.scan()
	before := b.fetch.chunks.Load()
	b.mustPull(a)
	sameTree(t, a, b)
	if got := b.fetch.chunks.Load() - before; got != 1 {
		t.Errorf("fetched %d chunks after the edit and move, want 1 (a.txt only)", got)
	}
	headB = b.obj.Head()
	b.scan()
	if b.obj.Head() != headB {
		t.Errorf("B's scan reported changes after applying (head %d -> %d)", headB, b.obj.Head())
	}
	// The deleted file is in B's history.
	vs, err := b.f.History("gone.txt")
	if err != nil || len(vs) != 1 || vs[0].Size != 3 || vs[0].By != devA {
		t.Fatalf("history of gone.txt: %+v %v", vs, err)
	}

	// Type changes: file -> dir, symlink -> file; and back to B→A.
	os.Remove(a.path("a.txt"))
	a.write("a.txt/inner", []byte("x"), 0o644)
	os.Remove(a.path("link"))
	a.write("link", []byte("now a file"), 0o644)
	a.scan()
	b.mustPull(a)
	sameTree(t, a, b)
	b.write("fromb.txt", []byte("B wrote this"), 0o644)
	b.scan()
	a.mustPull(b)
	sameTree(t, a, b)
	noTemps(t, b.root)
	if st := b.f.Status(); st.InSync != 1 || st.Items == 0 {
		t.Errorf("status: %+v", st)
	}
}

// TestMoveAcrossBatches: a delete applied alone, then the create of the same
// content elsewhere: the content comes from the version history, no fetch.
func TestMoveAcrossBatches(t *testing.T) {
	a, b := pair(t)
	a.write("x/file.bin", randBytes(2, 1<<20), 0o644)
	a.scan()
	b.mustPull(a)
	if err := os.Rename(a.path("x/file.bin"), a.path("y.bin")); err != nil {
		t.Fatal(err)
	}
	a.scan()
	del, _ := a.obj.Item("x/file.bin")
	cre, _ := a.obj.Item("y.bin")
	before := b.fetch.chunks.Load()
	for _, it := range []syncproto.Item{del, cre} {
		_, res, err := b.obj.Apply(it)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.f.Apply(context.Background(), []syncproto.Item{res}); err != nil {
			t.Fatal(err)
		}
	}
	sameTree(t, a, b)
	if got := b.fetch.chunks.Load() - before; got != 0 {
		t.Errorf("a move fetched %d chunks", got)
	}
}

// TestWatcherLatency: a change on A becomes a Feed update through the
// watcher alone (the full rescan is an hour away): a new file, a file in a
// new directory, then one in that directory once it is watched, a delete.
// The latency is logged; asserting it would be a timed assertion (it
// failed on a loaded machine), so the bound is only a hang guard.
func TestWatcherLatency(t *testing.T) {
	a := newNode(t, devA, nil)
	a.write("first.txt", []byte("1"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.f.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	waitFor(t, 30*time.Second, func() bool { _, ok := a.obj.Item("first.txt"); return ok })
	// Watches are added just after a scan: write probe files into dir until
	// one is seen, then dir is watched.
	watched := func(dir string) {
		t.Helper()
		for i := range 300 {
			name := "probe" + itoa(i) + ".txt"
			if dir != "" {
				name = dir + "/" + name
			}
			a.write(name, []byte("p"), 0o644)
			for range 40 { // longer than the watcher's debounce
				if _, ok := a.obj.Item(syncproto.ItemID(name)); ok {
					return
				}
				time.Sleep(5 * time.Millisecond) // polling, not synchronisation
			}
		}
		t.Fatalf("%q not watched after 300 probe files", dir)
	}
	watched("")
	check := func(what string, mutate func(), ok func() bool) {
		t.Helper()
		start := time.Now()
		mutate()
		waitFor(t, 30*time.Second, ok)
		t.Logf("%s: seen after %v", what, time.Since(start))
	}
	check("new file", func() { a.write("new.txt", []byte("n"), 0o644) }, func() bool {
		_, ok := a.obj.Item("new.txt")
		return ok
	})
	check("file in new dir", func() { a.write("d1/d2/f.txt", []byte("n"), 0o644) }, func() bool {
		_, ok := a.obj.Item("d1/d2/f.txt")
		return ok
	})
	watched("d1/d2")
	check("file in watched new dir", func() { a.write("d1/d2/g.txt", []byte("g"), 0o644) }, func() bool {
		_, ok := a.obj.Item("d1/d2/g.txt")
		return ok
	})
	check("delete", func() { os.Remove(a.path("first.txt")) }, func() bool {
		it, _ := a.obj.Item("first.txt")
		return it.Sync.Deleted
	})
}

func waitFor(t testing.TB, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRescanReadsNothing: a rescan of unchanged files hashes none; a
// touched file is hashed again, and a restart keeps the cache.
func TestRescanReadsNothing(t *testing.T) {
	a := newNode(t, devA, nil)
	for i := range 300 {
		a.write(filepathJoin("d", string(rune('a'+i%10)), "f"+itoa(i)), []byte("content "+itoa(i)), 0o644)
	}
	a.scan()
	var hashed atomic.Int64
	a.f.hashHook = func(string) { hashed.Add(1) }
	a.scan()
	if n := hashed.Load(); n != 0 {
		t.Fatalf("rescan hashed %d files", n)
	}
	a.write("d/a/f0", []byte("changed"), 0o644)
	a.scan()
	if n := hashed.Load(); n != 1 {
		t.Fatalf("rescan after one change hashed %d files", n)
	}
	a.f.Close()
	a.open(nil)
	a.f.hashHook = func(string) { hashed.Add(1) }
	a.scan()
	if n := hashed.Load(); n != 1 {
		t.Fatalf("scan after reopen hashed %d files", n-1)
	}
}

func filepathJoin(p ...string) string { return strings.Join(p, "/") }

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// fileItem builds a remote item for a file at rel with content data, the
// content being available from src's store.
func fileItem(t *testing.T, src *testNode, rel string, data []byte) syncproto.Item {
	t.Helper()
	p := filepath.Join(t.TempDir(), "content")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, ref, err := src.st.AddFile(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return rawItem(rel, &syncproto.FileEntry{Path: rel, Mode: 0o644, ModTime: time.Now().UTC(), Size: ref.Size, Blob: ItemBlobRef(ref)})
}

func rawItem(id string, fe *syncproto.FileEntry) syncproto.Item {
	return syncproto.Item{
		Sync:    syncproto.Sync{ID: syncproto.ItemID(id), Updates: 1, History: []syncproto.History{{Sequence: 1, When: hlc.FromTime(time.Now()), By: devA}}},
		Content: syncproto.Content{Title: "x", Body: fe},
	}
}

// TestMaliciousItems: items whose path escapes the folder, by "..", an
// absolute path, NUL, a backslash, the internal directory, a symlinked
// parent or a symlink target, are refused and nothing is written outside.
func TestMaliciousItems(t *testing.T) {
	a, b := pair(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "keep"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := tree(t, outside)
	if err := os.Symlink(outside, b.path("escape")); err != nil {
		t.Fatal(err)
	}
	b.scan()
	data := []byte("evil")
	cases := map[string]syncproto.Item{
		"dotdot":         fileItem(t, a, "../evil", data),
		"dotdot inside":  fileItem(t, a, "x/../../evil", data),
		"absolute":       fileItem(t, a, filepath.Join(outside, "evil"), data),
		"nul":            fileItem(t, a, "ev\x00il", data),
		"backslash":      fileItem(t, a, `..\evil`, data),
		"internal":       fileItem(t, a, ".meshwork/versions/evil", data),
		"temp name":      fileItem(t, a, ".meshwork-evil.partial", data),
		"symlink parent": fileItem(t, a, "escape/evil", data),
		"symlink parent dir": rawItem("escape/newdir",
			&syncproto.FileEntry{Path: "escape/newdir", Mode: fs.ModeDir | 0o755}),
		"symlink out": rawItem("l1",
			&syncproto.FileEntry{Path: "l1", Mode: fs.ModeSymlink | 0o777, Symlink: "../../../../etc"}),
		"symlink abs": rawItem("l2",
			&syncproto.FileEntry{Path: "l2", Mode: fs.ModeSymlink | 0o777, Symlink: outside}),
		"id mismatch": func() syncproto.Item {
			it := fileItem(t, a, "../evil2", data)
			it.Sync.ID = "harmless"
			return it
		}(),
	}
	for name, it := range cases {
		err := b.f.Apply(context.Background(), []syncproto.Item{it})
		if !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%s: Apply = %v, want ErrUnsafePath", name, err)
		}
	}
	after := tree(t, outside)
	if len(after) != len(before) || after["keep"] != before["keep"] {
		t.Errorf("outside directory changed: %v -> %v", before, after)
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(b.root), "evil")); err == nil {
		t.Error("file written beside the root")
	}
	if st := b.f.Status(); len(st.Skipped) == 0 {
		t.Error("refusals not reported in Status")
	}
}

// TestCaseCollision: on a case-insensitive filesystem (forced here), a name
// differing only in case from an existing one is refused.
func TestCaseCollision(t *testing.T) {
	a := newNode(t, devA, nil)
	b := newNode(t, devB, func(c *Config) { c.FoldCase = true })
	b.fetch.peers = append(b.fetch.peers, a.st)
	b.write("Readme.md", []byte("mine"), 0o644)
	b.scan()
	err := b.f.Apply(context.Background(), []syncproto.Item{fileItem(t, a, "README.md", []byte("theirs"))})
	if !errors.Is(err, ErrCaseCollision) {
		t.Fatalf("Apply = %v, want ErrCaseCollision", err)
	}
	if got := readFile(t, b.path("Readme.md")); string(got) != "mine" {
		t.Errorf("Readme.md = %q", got)
	}
}

// TestConflict: concurrent edits on A and B: both keep the winner under the
// name and the loser as the same conflict copy; resolving removes it.
func TestConflict(t *testing.T) {
	a, b := editedOnBoth(t, "notes.txt")
	a.mustPull(b)
	b.mustPull(a)
	sameTree(t, a, b)
	it, _ := a.obj.Item("notes.txt")
	if len(it.Sync.Conflicts) != 1 {
		t.Fatalf("conflicts: %d", len(it.Sync.Conflicts))
	}
	loser := it.Sync.Conflicts[0]
	name := conflictName("notes.txt", loser)
	if !strings.HasPrefix(name, "notes.conflict-") || !strings.HasSuffix(name, ".txt") {
		t.Errorf("conflict name %q", name)
	}
	winner := "edited on A"
	if it.Sync.Top().By == devB {
		winner = "edited on B, longer"
	}
	loserData := map[string]string{"edited on A": "edited on B, longer", "edited on B, longer": "edited on A"}[winner]
	for _, n := range []*testNode{a, b} {
		if got := readFile(t, n.path("notes.txt")); string(got) != winner {
			t.Errorf("%s: notes.txt = %q, want %q", n.self[8:13], got, winner)
		}
		if got := readFile(t, n.path(name)); string(got) != loserData {
			t.Errorf("%s: %s = %q, want %q", n.self[8:13], name, got, loserData)
		}
	}
	// Conflict copies are not items, and rescans leave them alone.
	headA := a.obj.Head()
	a.scan()
	if _, ok := a.obj.Item(syncproto.ItemID(name)); ok || a.obj.Head() != headA {
		t.Errorf("conflict copy reported as a local change")
	}
	if st := a.f.Status(); st.Conflicts != 1 {
		t.Errorf("status conflicts = %d", st.Conflicts)
	}
	// Resolve on A; both drop the unedited copy.
	if _, err := a.obj.Resolve("notes.txt"); err != nil {
		t.Fatal(err)
	}
	if err := a.f.Apply(context.Background(), a.obj.Items()); err != nil {
		t.Fatal(err)
	}
	b.mustPull(a)
	for _, n := range []*testNode{a, b} {
		if _, err := os.Lstat(n.path(name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: conflict copy still there after resolve: %v", n.self[8:13], err)
		}
	}
}

// TestEditBeforeRemoteApplied: B edits a file (offline, or between two
// scans) while A edits it too, and A's change reaches B's replica before
// B's scan has seen the edit. B's edit started from the older version, so
// it must end as a conflict with A's on both devices, whether Apply (which
// scans the file before replacing it) or a scan finds it first. A touch on
// B is not an edit to keep (A's change wins), and neither is a delete on B
// (A's change is written back, as Syncthing does).
func TestEditBeforeRemoteApplied(t *testing.T) {
	setup := func(t *testing.T) (a, b *testNode) {
		a, b = pair(t)
		a.write("notes.txt", []byte("v1"), 0o644)
		a.scan()
		b.mustPull(a)
		a.write("notes.txt", []byte("edited on A"), 0o644)
		a.scan()
		return a, b
	}
	// scanFirst puts A's items into B's replica without applying them, then
	// scans B and applies what the scan left to apply.
	scanFirst := func(t *testing.T, a, b *testNode) {
		t.Helper()
		for _, it := range a.obj.Items() {
			if _, _, err := b.obj.Apply(it); err != nil {
				t.Fatal(err)
			}
		}
		b.scan()
		if err := b.f.ApplyPending(context.Background()); err != nil {
			t.Fatal(err)
		}
		a.mustPull(b)
		sameTree(t, a, b)
	}
	// applyFirst has B apply A's items (Apply scans the file it would
	// replace), then A B's.
	applyFirst := func(t *testing.T, a, b *testNode) {
		t.Helper()
		if err := b.pull(a); err != nil {
			t.Fatalf("apply with a local edit pending: %v", err)
		}
		a.mustPull(b)
		sameTree(t, a, b)
	}
	checkConflict := func(t *testing.T, a, b *testNode) {
		t.Helper()
		it, _ := b.obj.Item("notes.txt")
		if len(it.Sync.Conflicts) != 1 {
			t.Fatalf("want A's and B's edits as a conflict, got %d conflicts (winner by %s)", len(it.Sync.Conflicts), it.Sync.Top().By[8:13])
		}
		got := map[string]bool{string(readFile(t, b.path("notes.txt"))): true,
			string(readFile(t, b.path(conflictName("notes.txt", it.Sync.Conflicts[0])))): true}
		if !got["edited on A"] || !got["edited on B, longer"] {
			t.Fatalf("the two edits are not both on disk: %v", got)
		}
	}
	t.Run("apply first", func(t *testing.T) {
		a, b := setup(t)
		b.write("notes.txt", []byte("edited on B, longer"), 0o644)
		applyFirst(t, a, b)
		checkConflict(t, a, b)
	})
	t.Run("scan first", func(t *testing.T) {
		a, b := setup(t)
		b.write("notes.txt", []byte("edited on B, longer"), 0o644)
		scanFirst(t, a, b)
		checkConflict(t, a, b)
	})
	t.Run("touch", func(t *testing.T) {
		a, b := setup(t)
		if err := os.Chtimes(b.path("notes.txt"), time.Time{}, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		scanFirst(t, a, b)
		it, _ := b.obj.Item("notes.txt")
		if len(it.Sync.Conflicts) != 0 || it.Sync.Top().By != devA {
			t.Fatalf("a touch made a change: %d conflicts, winner by %s", len(it.Sync.Conflicts), it.Sync.Top().By[8:13])
		}
		if got := readFile(t, b.path("notes.txt")); string(got) != "edited on A" {
			t.Fatalf("notes.txt on B = %q", got)
		}
	})
	t.Run("delete", func(t *testing.T) {
		a, b := setup(t)
		if err := os.Remove(b.path("notes.txt")); err != nil {
			t.Fatal(err)
		}
		scanFirst(t, a, b)
		it, _ := b.obj.Item("notes.txt")
		if it.Sync.Deleted {
			t.Fatal("the delete won over A's edit it never saw")
		}
		if got := readFile(t, b.path("notes.txt")); string(got) != "edited on A" {
			t.Fatalf("notes.txt on B = %q", got)
		}
	})
	t.Run("deleted there", func(t *testing.T) {
		a, b := pair(t)
		a.write("notes.txt", []byte("v1"), 0o644)
		a.scan()
		b.mustPull(a)
		if err := os.Remove(a.path("notes.txt")); err != nil {
			t.Fatal(err)
		}
		a.scan()
		b.write("notes.txt", []byte("edited on B, longer"), 0o644)
		applyFirst(t, a, b)
		it, _ := b.obj.Item("notes.txt")
		if it.Sync.Deleted || len(it.Sync.Conflicts) != 0 {
			t.Fatalf("the edit should win over the delete, without a conflict: deleted %v, %d conflicts", it.Sync.Deleted, len(it.Sync.Conflicts))
		}
		if got := readFile(t, a.path("notes.txt")); string(got) != "edited on B, longer" {
			t.Fatalf("notes.txt on A = %q", got)
		}
	})
	t.Run("created on both", func(t *testing.T) {
		a, b := pair(t)
		a.write("new.txt", []byte("from A"), 0o644)
		a.scan()
		b.write("new.txt", []byte("from B, longer"), 0o644)
		applyFirst(t, a, b)
		if it, _ := b.obj.Item("new.txt"); len(it.Sync.Conflicts) != 1 {
			t.Fatalf("want a conflict, got %d", len(it.Sync.Conflicts))
		}
	})
}

// TestHistoryRestore: replaced versions are kept on the receiver, listed,
// and a restore is a new change that syncs back.
func TestHistoryRestore(t *testing.T) {
	a, b := pair(t)
	a.write("doc.txt", []byte("version one"), 0o644)
	a.scan()
	b.mustPull(a)
	a.write("doc.txt", []byte("version two!"), 0o644)
	a.scan()
	b.mustPull(a)
	vs, err := b.f.History("doc.txt")
	if err != nil || len(vs) != 1 {
		t.Fatalf("history: %+v, %v", vs, err)
	}
	if vs[0].N != 1 || vs[0].Size != int64(len("version one")) || vs[0].By != devA {
		t.Errorf("version: %+v", vs[0])
	}
	if err := b.f.Restore(context.Background(), "doc.txt", 7); !errors.Is(err, ErrNoVersion) {
		t.Errorf("restore of a missing version: %v", err)
	}
	if err := b.f.Restore(context.Background(), "doc.txt", 1); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, b.path("doc.txt")); string(got) != "version one" {
		t.Fatalf("restored: %q", got)
	}
	if vs, _ := b.f.History("doc.txt"); len(vs) != 2 {
		t.Errorf("history after restore: %d versions", len(vs))
	}
	a.mustPull(b)
	if got := readFile(t, a.path("doc.txt")); string(got) != "version one" {
		t.Fatalf("A after restore: %q", got)
	}
	sameTree(t, a, b)

	// Retention: versions older than it expire.
	now := time.Now()
	b.f.now = func() time.Time { return now.Add(31 * 24 * time.Hour) }
	if err := b.f.ExpireVersions(context.Background()); err != nil {
		t.Fatal(err)
	}
	if vs, _ := b.f.History("doc.txt"); len(vs) != 0 {
		t.Errorf("%d versions after expiry", len(vs))
	}
}

// TestIgnore: ignored paths are neither sent nor overwritten.
func TestIgnore(t *testing.T) {
	a, b := pair(t)
	a.write(IgnoreFile, []byte("*.log\nbuild/\n"), 0o644)
	a.write("keep.txt", []byte("k"), 0o644)
	a.write("x.log", []byte("log"), 0o644)
	a.write("sub/y.log", []byte("log"), 0o644)
	a.write("build/out.o", []byte("obj"), 0o644)
	a.scan()
	for _, id := range []syncproto.ItemID{"x.log", "sub/y.log", "build", "build/out.o"} {
		if _, ok := a.obj.Item(id); ok {
			t.Errorf("ignored %s is an item", id)
		}
	}
	if _, ok := a.obj.Item("keep.txt"); !ok {
		t.Error("keep.txt not an item")
	}
	b.mustPull(a)
	b.write("local.log", []byte("B's log"), 0o644)
	err := b.f.Apply(context.Background(), []syncproto.Item{fileItem(t, a, "local.log", []byte("remote"))})
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, b.path("local.log")); string(got) != "B's log" {
		t.Errorf("ignored file overwritten: %q", got)
	}
}

// TestCrashSafety: Apply interrupted at random points many times, then
// completed: files identical, no temporary file visible, no verified chunk
// fetched twice.
func TestCrashSafety(t *testing.T) {
	a, b := pair(t)
	for i := range 4 {
		a.write("big"+itoa(i)+".bin", randBytes(uint64(10+i), 2<<20+i*700<<10), 0o644)
	}
	a.write("small.txt", []byte("small"), 0o644)
	a.scan()
	var changed []syncproto.Item
	for _, it := range a.obj.Items() {
		_, res, err := b.obj.Apply(it)
		if err != nil {
			t.Fatal(err)
		}
		changed = append(changed, res)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := randBytes(seed, 64)
	var tries int
	for ; tries < 60; tries++ {
		ctx, cancel := context.WithCancel(context.Background())
		k := int64(r[tries%len(r)] % 4)
		var n atomic.Int64
		b.fetch.onChunk = func() error {
			if n.Add(1) > k {
				cancel()
				return context.Canceled
			}
			return nil
		}
		err := b.f.Apply(ctx, changed)
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("apply: %v", err)
		}
		noTemps := func() {
			for rel, v := range tree(t, b.root) {
				_ = v
				if strings.HasPrefix(filepath.Base(rel), ".meshwork-tmp-") {
					t.Errorf("own temporary file left: %s", rel)
				}
			}
		}
		noTemps()
		// Simulate a restart now and then.
		if tries%5 == 4 {
			b.f.Close()
			b.open(nil)
		}
	}
	b.fetch.onChunk = nil
	if err := b.f.Apply(context.Background(), changed); err != nil {
		t.Fatal(err)
	}
	sameTree(t, a, b)
	noTemps(t, b.root)
	for id, n := range b.fetch.requests {
		if n > 1 {
			t.Errorf("chunk %v fetched %d times", id, n)
		}
	}
	t.Logf("%d interrupted applies, %d chunks fetched", tries, b.fetch.chunks.Load())
	headB := b.obj.Head()
	b.scan()
	if b.obj.Head() != headB {
		t.Error("scan after the interrupted applies reported changes")
	}
}

func TestBlobRefForm(t *testing.T) {
	_, ref, err := blobs.Split(strings.NewReader("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ir := ItemBlobRef(ref)
	if !strings.HasPrefix(ir.String(), "mwblob1-") {
		t.Fatalf("form %q", ir)
	}
	back, err := BlobRefOf(ir)
	if err != nil || back != ref {
		t.Fatalf("round trip: %v %v", back, err)
	}
	if _, err := BlobRefOf(syncproto.BlobRef{}); err != nil {
		t.Fatal(err)
	}
}

func TestCheckRel(t *testing.T) {
	for _, ok := range []string{"a", "a/b.txt", "dir/.hidden", "é"} {
		if err := checkRel(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/a", "a/", "a//b", "./a", "a/..", "..", "a\\b", "a\x00", ".meshwork", ".MeshWork/x",
		"d/.meshwork-x", "e\u0301", "a\nb"} {
		if err := checkRel(bad); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%q accepted", bad)
		}
	}
	for tg, ok := range map[string]bool{"b": true, "../x": false, "sub/../../x": false, "/etc": false, "d/../e": true, ".meshwork/versions": false} {
		if err := checkSymlinkTarget("a", tg); (err == nil) != ok {
			t.Errorf("target %q: %v", tg, err)
		}
	}
	if err := checkSymlinkTarget("d/l", "../x"); err != nil {
		t.Errorf("d/l -> ../x: %v", err)
	}
}

// batchingFeed counts batches and the updates made outside of one.
type batchingFeed struct {
	*syncproto.Object
	batches, loose int
	inBatch        bool
}

func (b *batchingFeed) UpdateFrom(id syncproto.ItemID, base syncproto.History, c syncproto.Content) (syncproto.Item, error) {
	if !b.inBatch {
		b.loose++
	}
	return b.Object.UpdateFrom(id, base, c)
}

func (b *batchingFeed) Batch(fn func(Feed) error) error {
	b.batches++
	b.inBatch = true
	defer func() { b.inBatch = false }()
	return fn(b)
}

// TestScanBatches: a scan of many new files reports them in one batch when
// the Feed can batch (one save and one push in the daemon).
func TestScanBatches(t *testing.T) {
	var bf *batchingFeed
	n := newNode(t, devA, func(c *Config) {
		if bf == nil {
			bf = &batchingFeed{Object: c.Feed.(*syncproto.Object)}
		}
		c.Feed = bf
	})
	for i := range 50 {
		n.write("many/f"+itoa(i), []byte(itoa(i)), 0o644)
	}
	before := bf.batches
	n.scan()
	if got := len(n.obj.Items()); got < 50 {
		t.Fatalf("%d items after the scan, want at least 50", got)
	}
	if bf.batches != before+1 || bf.loose != 0 {
		t.Fatalf("scan used %d batches and %d loose updates, want 1 and 0", bf.batches-before, bf.loose)
	}
}

// TestVersionSep: a version key's timestamp may contain zero bytes; the
// separator is found by position, not by searching for a zero.
func TestVersionSep(t *testing.T) {
	rel := []byte("dir/notes.txt")
	ts := []byte{0x18, 0x00, 0x9a, 0x00, 0x00, 0x01, 0x00, 0x00} // zeros inside
	k := append(append(append([]byte{}, rel...), 0), ts...)
	if i := versionSep(k); i != len(rel) || string(k[:i]) != string(rel) {
		t.Fatalf("separator at %d, want %d", i, len(rel))
	}
	if versionSep([]byte("short")) != -1 || versionSep(append([]byte("x"), ts...)) != -1 {
		t.Fatal("malformed keys not rejected")
	}
}
