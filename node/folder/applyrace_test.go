package folder

// Apply racing the user: scans, edits and deletions while a file is being
// applied.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/hlc"
)

// TestScansDuringApply: scans running while files are applied in parallel
// (as the watcher's do) never take an applied file for a local change, and
// leave the state Apply records intact: B's replica gains no version of its
// own, and a scan afterwards finds nothing to report.
func TestScansDuringApply(t *testing.T) {
	a, b := pair(t)
	for i := range 300 {
		a.write(fmt.Sprintf("d%d/f%03d.bin", i%7, i), randBytes(uint64(100+i), 1+i*97), 0o644)
	}
	a.scan()
	stop := make(chan struct{})
	scans := make(chan int)
	go func() {
		n := 0
		defer func() { scans <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := b.f.Scan(context.Background()); err != nil {
				t.Errorf("scan during apply: %v", err)
				return
			}
			n++
		}
	}()
	err := b.pull(a)
	close(stop)
	n := <-scans
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d scans ran during the apply", n)
	if n == 0 {
		t.Fatal("no scan ran during the apply")
	}
	sameTree(t, a, b)
	for _, it := range b.obj.Items() {
		if by := it.Sync.Top().By; by == devB {
			t.Errorf("item %s: a scan during the apply recorded a local change on B", it.Sync.ID)
		}
	}
	head := b.obj.Head()
	b.scan()
	if b.obj.Head() != head {
		t.Errorf("B's scan after the apply moved its head %d -> %d: its own writes were taken for changes", head, b.obj.Head())
	}
}

// TestEditDuringCommitKept: a file written here after Apply last checked
// the path, and before its commit, is not replaced: the commit fails with
// the edit untouched, the edit is indexed, and the remote version lands
// beside it as a conflict (soak seed 951: a file written on a device that
// had just joined, while its initial sync wrote the same path, was lost).
func TestEditDuringCommitKept(t *testing.T) {
	a, b := pair(t)
	a.write("new.txt", []byte("from A"), 0o644)
	a.scan()
	edited := false
	b.f.commitHook = func(rel string) {
		if rel == "new.txt" && !edited {
			edited = true
			b.write("new.txt", []byte("written on B meanwhile"), 0o644)
		}
	}
	if err := b.pull(a); err != nil {
		t.Fatalf("apply with an edit during its commit: %v", err)
	}
	if !edited {
		t.Fatal("the commit hook never ran")
	}
	if err := b.f.ApplyPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.mustPull(b)
	b.mustPull(a)
	sameTree(t, a, b)
	got := map[string]string{}
	for p := range tree(t, b.root) {
		got[p] = string(readFile(t, b.path(p)))
	}
	var copies []string
	for p := range got {
		if strings.Contains(p, ".conflict-") {
			copies = append(copies, p)
		}
	}
	if got["new.txt"] != "written on B meanwhile" || len(copies) != 1 || got[copies[0]] != "from A" {
		t.Fatalf("B's tree %q: want B's edit as new.txt and A's version as its one conflict copy", got)
	}
	noTemps(t, b.root) // the refused commit's partial file went with it
}

// TestStaleApplyKeepsNewerLocal: an apply run that began before a local
// change was indexed does not write the older version over it (soak seed
// 991: a device's own chmod was reverted on it, while every replica had
// the chmod): the run's item is no longer the current version.
func TestStaleApplyKeepsNewerLocal(t *testing.T) {
	a, b := pair(t)
	a.write("f.bin", []byte("content"), 0o644)
	a.scan()
	old, _ := a.obj.Item("f.bin")
	b.mustPull(a)
	if err := os.Chmod(b.path("f.bin"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.scan() // b's chmod is the current version now
	if cur, _ := b.obj.Item("f.bin"); cur.Sync.Top().By != devB {
		t.Fatalf("b's chmod is not the current version: by %s", cur.Sync.Top().By)
	}
	if err := b.f.Apply(context.Background(), []syncproto.Item{old}); err != nil {
		t.Fatalf("a stale apply: %v", err)
	}
	fi, err := os.Stat(b.path("f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("b's file is %v after a stale apply, want its own chmod 0600 kept", fi.Mode().Perm())
	}
	a.mustPull(b)
	if fi, _ := os.Stat(a.path("f.bin")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("a's file is %v, want b's chmod", fi.Mode().Perm())
	}
}

// TestSetMetaKeepsEdit: fixing a file's mode and mtime never records a file
// edited since Apply checked it as the old content (soak seed 217: an
// append on a device was recorded with the old blob, and no later scan
// saw it): the edit is left to the scan, which indexes it.
func TestSetMetaKeepsEdit(t *testing.T) {
	a, b := pair(t)
	a.write("f.txt", []byte("v1"), 0o644)
	a.scan()
	b.mustPull(a)
	it, _ := b.obj.Item("f.txt")
	f, err := os.OpenFile(b.path("f.txt"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(", appended on B"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b.f.mu.Lock()
	err = b.f.setMetaLocked("f.txt", 0o640, time.Unix(1_700_000_000, 0), it.Sync.Top(), false)
	b.f.mu.Unlock()
	if !errors.Is(err, ErrLocalChange) {
		t.Fatalf("metadata set on a file edited since the check: %v, want ErrLocalChange", err)
	}
	b.scan()
	cur, _ := b.obj.Item("f.txt")
	if cur.Sync.Top().By != devB {
		t.Fatalf("B's append was not indexed: current version by %s", cur.Sync.Top().By)
	}
	a.mustPull(b)
	if got := string(readFile(t, a.path("f.txt"))); got != "v1, appended on B" {
		t.Fatalf("A has %q, want B's append", got)
	}
}

// TestDeletedDirGoesWhenEmptied: a directory whose deletion arrives while
// a file in it is still an item is kept, and goes once that file's own
// deletion is applied in a later run (chaos soak seed 221: an empty
// directory stayed on one device, deleted in every replica).
func TestDeletedDirGoesWhenEmptied(t *testing.T) {
	a, b := pair(t)
	a.write("d/f.txt", []byte("in d"), 0o644)
	a.scan()
	b.mustPull(a)
	if err := os.RemoveAll(a.path("d")); err != nil {
		t.Fatal(err)
	}
	a.scan()
	var dir, file syncproto.Item
	for _, it := range a.obj.Items() {
		switch it.Sync.ID {
		case "d":
			dir = it
		case "d/f.txt":
			file = it
		}
	}
	if !dir.Sync.Deleted || !file.Sync.Deleted {
		t.Fatalf("a's scan did not delete both: dir %v, file %v", dir.Sync.Deleted, file.Sync.Deleted)
	}
	for _, it := range []syncproto.Item{dir, file} { // the directory's deletion first, in a run of its own
		if _, _, err := b.obj.Apply(it); err != nil {
			t.Fatal(err)
		}
		if err := b.f.Apply(context.Background(), []syncproto.Item{it}); err != nil {
			t.Fatalf("apply %q: %v", it.Sync.ID, err)
		}
	}
	if _, err := os.Lstat(b.path("d")); !os.IsNotExist(err) {
		t.Fatalf("b still has the deleted directory d (lstat: %v)", err)
	}
	sameTree(t, a, b)
}

// TestLocalChunkGoneBeforeCommit: chunks that another local file held when
// Apply began, and that are gone by its commit (that file was truncated
// meanwhile), are fetched from the peer and the file is written (soak
// seed 975: a just-joined device truncated its copy of a file whose chunks
// a conflict copy reused; the conflict copy failed for good with "chunks
// missing locally" while the device said it was in sync).
func TestLocalChunkGoneBeforeCommit(t *testing.T) {
	a, b := pair(t)
	data := randBytes(975, 3<<20)
	b.write("copy.bin", data, 0o644)
	b.scan() // b's store locates data's chunks in copy.bin
	a.write("new.bin", data, 0o644)
	a.scan()
	truncated := false
	b.f.commitHook = func(rel string) {
		if rel == "new.bin" && !truncated {
			truncated = true
			if err := os.Truncate(b.path("copy.bin"), 10); err != nil {
				t.Error(err)
			}
		}
	}
	if err := b.pull(a); err != nil {
		t.Fatalf("apply after the local copy of its chunks was truncated: %v", err)
	}
	if !truncated {
		t.Fatal("the commit hook never ran")
	}
	if got := readFile(t, b.path("new.bin")); !bytes.Equal(got, data) {
		t.Fatalf("new.bin on B: %d bytes, want A's %d", len(got), len(data))
	}
	if n := b.fetch.chunks.Load(); n == 0 {
		t.Fatal("no chunk was fetched from A: the commit cannot have found its chunks")
	}
	noTemps(t, b.root)
}

// TestStaleApplyAfterDelete: items read for an Apply that then waited for
// the apply lock while another run applied newer versions (a directory and
// its file deleted, another file written again) write nothing: the
// directory is not recreated, neither as an item nor as a parent, and the
// newer file is not deleted by a stale deletion (chaos soak seed 1124: an
// empty directory stayed on one device, deleted in every replica).
func TestStaleApplyAfterDelete(t *testing.T) {
	a, b := pair(t)
	a.write("d/f.txt", []byte("in d"), 0o644)
	a.write("g.txt", []byte("first"), 0o644)
	a.scan()
	if err := os.Remove(a.path("g.txt")); err != nil {
		t.Fatal(err)
	}
	a.scan()
	// Snapshot of a's items now: d and d/f.txt live, g.txt deleted.
	var stale []syncproto.Item
	for _, it := range a.obj.Items() {
		if _, _, err := b.obj.Apply(it); err != nil {
			t.Fatal(err)
		}
		stale = append(stale, it)
	}
	if err := b.f.Apply(context.Background(), stale); err != nil {
		t.Fatal(err)
	}
	// Newer versions: d goes, g.txt comes back.
	if err := os.RemoveAll(a.path("d")); err != nil {
		t.Fatal(err)
	}
	a.write("g.txt", []byte("written again"), 0o644)
	a.scan()
	b.mustPull(a)
	if _, err := os.Lstat(b.path("d")); !os.IsNotExist(err) {
		t.Fatalf("b kept the deleted directory d (lstat: %v)", err)
	}
	if got := string(readFile(t, b.path("g.txt"))); got != "written again" {
		t.Fatalf("b's g.txt = %q, want the newer version", got)
	}
	// The run that waited with the old snapshot.
	if err := b.f.Apply(context.Background(), stale); err != nil {
		t.Fatalf("stale apply: %v", err)
	}
	if _, err := os.Lstat(b.path("d")); !os.IsNotExist(err) {
		t.Fatalf("a stale apply recreated the deleted directory d (lstat: %v)", err)
	}
	if got, err := os.ReadFile(b.path("g.txt")); err != nil || string(got) != "written again" {
		t.Fatalf("a stale deletion touched the newer g.txt: %q %v", got, err)
	}
	sameTree(t, a, b)
}

// TestDeletedDirGoesAfterAbsentFile: a directory deleted remotely and kept
// because a file was in it goes when that file's deletion is applied even
// if the file is already gone from the disk (soak seed 1101: the file's
// content had never come; its directories stayed).
func TestDeletedDirGoesAfterAbsentFile(t *testing.T) {
	a, b := pair(t)
	a.write("d/e/f.txt", []byte("in d/e"), 0o644)
	a.scan()
	b.mustPull(a)
	if err := os.RemoveAll(a.path("d")); err != nil {
		t.Fatal(err)
	}
	a.scan()
	items := map[syncproto.ItemID]syncproto.Item{}
	for _, it := range a.obj.Items() {
		if !it.Sync.Deleted {
			t.Fatalf("%q not deleted by a's scan", it.Sync.ID)
		}
		if _, _, err := b.obj.Apply(it); err != nil {
			t.Fatal(err)
		}
		items[it.Sync.ID] = it
	}
	// The directories' deletions first, while the file is still there.
	if err := b.f.Apply(context.Background(), []syncproto.Item{items["d"], items["d/e"]}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(b.path("d/e")); err != nil {
		t.Fatalf("d/e should be kept while f.txt is in it: %v", err)
	}
	if err := os.Remove(b.path("d/e/f.txt")); err != nil {
		t.Fatal(err)
	}
	if err := b.f.Apply(context.Background(), []syncproto.Item{items["d/e/f.txt"]}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(b.path("d")); !os.IsNotExist(err) {
		t.Fatalf("b kept the deleted directory d after its last file's deletion (lstat: %v)", err)
	}
}

// TestMalformedItemRefused: a file item whose size is not its blob's (a
// scan that raced a truncate, or a hostile member) is refused with
// ErrMalformedItem, a refused kind (KindBlocked, not retried by Run),
// reported in Status and left out of in-sync; nothing is written, and a
// good version of the same path is applied afterwards (soak seed 233:
// every device retried such an item every 2 s and never went idle).
func TestMalformedItemRefused(t *testing.T) {
	a, b := pair(t)
	good := fileItem(t, a, "f.bin", []byte("3,597 bytes, say"))
	bad := good
	fe := *good.Body.(*syncproto.FileEntry)
	fe.Size = 0
	bad.Content.Body = &fe
	err := b.f.Apply(context.Background(), []syncproto.Item{bad})
	if !errors.Is(err, ErrMalformedItem) || ErrorKind(err) != KindBlocked || !OnlyRefused(err) || retriable(err) {
		t.Fatalf("Apply of a malformed item = %v (kind %q, only refused %v, retriable %v), want ErrMalformedItem, blocked, not retriable",
			err, ErrorKind(err), OnlyRefused(err), retriable(err))
	}
	if _, err := os.Lstat(b.path("f.bin")); !os.IsNotExist(err) {
		t.Fatalf("a malformed item wrote f.bin: %v", err)
	}
	if st := b.f.Status(); st.Skipped["f.bin"] == "" {
		t.Fatalf("refusal not reported: skipped %v", st.Skipped)
	}
	w := good.Sync.History[0].When
	good.Sync.History = []syncproto.History{{Sequence: 2, When: hlc.Timestamp{Wall: w.Wall + 1}, By: devA}}
	good.Sync.Updates = 2
	if _, _, err := b.obj.Apply(good); err != nil {
		t.Fatal(err)
	}
	if err := b.f.Apply(context.Background(), []syncproto.Item{good}); err != nil {
		t.Fatalf("Apply of the good version: %v", err)
	}
	if got := string(readFile(t, b.path("f.bin"))); got != "3,597 bytes, say" {
		t.Fatalf("f.bin = %q", got)
	}
	if st := b.f.Status(); st.Skipped["f.bin"] != "" {
		t.Fatalf("still reported refused after a good version: %q", st.Skipped["f.bin"])
	}
}

// TestTruncatedWhileHashed: a file truncated between the scan's walk and
// its hashing is not reported with the walk's size and the hashed blob
// (an entry every receiver refuses, soak seed 233); the next scan reports
// it as it is.
func TestTruncatedWhileHashed(t *testing.T) {
	a := newNode(t, devA, nil)
	a.write("f.bin", randBytes(7, 4000), 0o644)
	once := false
	a.f.hashHook = func(rel string) {
		if !once {
			once = true
			if err := os.WriteFile(a.path(rel), randBytes(8, 1000), 0o644); err != nil {
				t.Error(err)
			}
		}
	}
	a.scan()
	check := func() (syncproto.Item, bool) {
		it, ok := a.obj.Item("f.bin")
		if !ok || it.Sync.Deleted {
			return it, false
		}
		fe := it.Body.(*syncproto.FileEntry)
		ref, err := BlobRefOf(fe.Blob)
		if err != nil || ref.Size != fe.Size {
			t.Fatalf("item f.bin: size %d, blob %v (%v): an entry receivers refuse", fe.Size, ref, err)
		}
		return it, true
	}
	check()
	a.scan() // the write's own scan, as the watcher's would be
	if it, ok := check(); !ok || it.Body.(*syncproto.FileEntry).Size != 1000 {
		t.Fatalf("after the next scan: item %v present %v, want 1,000 bytes", it.Body, ok)
	}
}

// itemsFeed is a Feed whose items the test sets (the rest is the real one).
type itemsFeed struct {
	Feed
	items []syncproto.Item
}

func (f itemsFeed) Items() []syncproto.Item { return f.items }
func (f itemsFeed) Item(id syncproto.ItemID) (syncproto.Item, bool) {
	for _, it := range f.items {
		if it.Sync.ID == id {
			return it, true
		}
	}
	return syncproto.Item{}, false
}

// TestDeletedConflictKeepsNoCopy: a conflict copy goes when its version is
// no longer a conflict, even if the conflict now is a deletion by the same
// device in the same second, whose name is the same (soak seed 954).
func TestDeletedConflictKeepsNoCopy(t *testing.T) {
	a, b := pair(t)
	when := hlc.FromTime(time.Date(2026, 12, 2, 17, 31, 24, 285e6, time.UTC))
	loser := fileItem(t, a, "f.md", []byte("the losing version"))
	loser.Sync.History = []syncproto.History{{Sequence: 3, When: when, By: devA}}
	if err := b.f.applyConflict(context.Background(), "f.md", loser); err != nil {
		t.Fatal(err)
	}
	name := conflictName("f.md", loser)
	if _, err := os.Lstat(b.path(name)); err != nil {
		t.Fatalf("conflict copy %s not written: %v", name, err)
	}
	deletion := loser
	deletion.Sync.Deleted = true
	deletion.Sync.History = []syncproto.History{{Sequence: 4, When: hlc.Timestamp{Wall: when.Wall + 500}, By: devA}, loser.Sync.History[0]}
	if conflictName("f.md", deletion) != name {
		t.Fatal("test setup: the deletion's conflict name differs")
	}
	winner := fileItem(t, a, "f.md", []byte("the winner"))
	winner.Sync.Conflicts = []syncproto.Item{deletion}
	b.f.feed = itemsFeed{Feed: b.f.feed, items: []syncproto.Item{winner}}
	if err := b.f.dropResolvedConflicts(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(b.path(name)); !os.IsNotExist(err) {
		t.Fatalf("the copy of a version that is no longer a conflict stayed (lstat: %v)", err)
	}
}
