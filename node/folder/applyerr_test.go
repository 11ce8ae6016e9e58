package folder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/meshwork/meshwork/blobs/transfer"
	"github.com/meshwork/meshwork/syncproto"
)

func TestErrorKind(t *testing.T) {
	pathErr := func(op string, errno syscall.Errno) error {
		return fmt.Errorf("apply file %q: partial x: write chunk: %w", "a.txt", &fs.PathError{Op: op, Path: "/mnt/a.txt", Err: errno})
	}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"cancelled", fmt.Errorf("apply: %w", context.Canceled), ""},
		{"closed", fmt.Errorf("apply: %w", ErrClosed), ""},
		{"local change", fmt.Errorf("path %q: %w", "a", ErrLocalChange), ""},
		{"ENOSPC", pathErr("write", syscall.ENOSPC), KindDiskFull},
		{"EDQUOT", pathErr("write", syscall.EDQUOT), KindQuota},
		{"EACCES", pathErr("open", syscall.EACCES), KindPermission},
		{"EPERM", pathErr("chmod", syscall.EPERM), KindPermission},
		{"ErrPermission", fmt.Errorf("x: %w", os.ErrPermission), KindPermission},
		{"EROFS", pathErr("open", syscall.EROFS), KindReadOnly},
		{"EIO", pathErr("fsync", syscall.EIO), KindIO},
		{"EMFILE", pathErr("open", syscall.EMFILE), KindTooManyFiles},
		{"ENFILE", pathErr("open", syscall.ENFILE), KindTooManyFiles},
		{"ENAMETOOLONG", pathErr("open", syscall.ENAMETOOLONG), KindNameTooLong},
		{"unsafe path", fmt.Errorf("apply item %q: %w", "../x", ErrUnsafePath), KindBlocked},
		{"case collision", fmt.Errorf("apply %q: %w", "A", ErrCaseCollision), KindBlocked},
		{"no peer", unavailable(errors.New("fetch x: no member online")), KindUnavailable},
		{"no peer, wrapped", fmt.Errorf("apply file %q: %w", "a", unavailable(transfer.ErrUnavailable)), KindUnavailable},
		// A fetch fails when the chunk cannot be written here: the disk is
		// the cause, not the peers.
		{"fetch failed by disk", unavailable(fmt.Errorf("store chunk: %w", pathErr("write", syscall.ENOSPC))), KindDiskFull},
		{"joined", errors.Join(unavailable(errors.New("peer gone")), pathErr("write", syscall.ENOSPC)), KindDiskFull},
		{"other", errors.New("something else"), KindOther},
	} {
		if got := ErrorKind(c.err); got != c.want {
			t.Errorf("%s: ErrorKind(%v) = %q, want %q", c.name, c.err, got, c.want)
		}
	}
	// The marker does not change the text.
	if e := unavailable(errors.New("fetch x: no member online")); e.Error() != "fetch x: no member online" {
		t.Errorf("unavailable changed the text: %q", e.Error())
	}
}

// errorLog records Config.OnError calls.
type errorLog struct {
	mu    sync.Mutex
	calls []*ApplyError
}

func (l *errorLog) on(e *ApplyError) {
	l.mu.Lock()
	l.calls = append(l.calls, e)
	l.mu.Unlock()
}

func (l *errorLog) get() []*ApplyError {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*ApplyError(nil), l.calls...)
}

// TestApplyErrorLifecycle: chunks that cannot be written (disk full) make
// the folder's error, reported once however many files and retries fail,
// with the path and the kind; a good file whose update fails keeps its
// content; content missing for a while (no peer) keeps the error; when
// the files are written the error clears, reported once.
func TestApplyErrorLifecycle(t *testing.T) {
	var log errorLog
	a := newNode(t, devA, nil)
	b := newNode(t, devB, func(c *Config) { c.OnError = log.on })
	a.fetch.peers = append(a.fetch.peers, b.st)
	b.fetch.peers = append(b.fetch.peers, a.st)
	ctx := context.Background()

	good := randBytes(1, 300_000)
	a.write("good.bin", good, 0o644)
	a.scan()
	b.mustPull(a)
	if st := b.f.Status(); st.Error != nil || len(log.get()) != 0 {
		t.Fatalf("error after a good sync: %+v, calls %v", st.Error, log.get())
	}

	full := &fs.PathError{Op: "write", Path: b.path("x.partial"), Err: syscall.ENOSPC}
	b.fetch.onChunk = func() error { return full }
	a.write("good.bin", randBytes(2, 400_000), 0o644)
	for i := range 3 {
		a.write(fmt.Sprintf("new/%d.bin", i), randBytes(uint64(10+i), 200_000), 0o644)
	}
	a.scan()
	err := b.pull(a)
	if ErrorKind(err) != KindDiskFull {
		t.Fatalf("Apply with a full disk = %v, want a disk-full error", err)
	}
	st := b.f.Status()
	if st.Error == nil || st.Error.Kind != KindDiskFull || st.Error.Files != 4 || st.Error.Time.IsZero() ||
		!strings.Contains(st.Error.Err, "no space left on device") {
		t.Fatalf("Status.Error = %+v, want disk full for 4 files with the error text", st.Error)
	}
	if p := st.Error.Path; p != "good.bin" && !strings.HasPrefix(p, "new/") {
		t.Fatalf("Status.Error.Path = %q, want one of the failing files", p)
	}
	if got := readFile(t, b.path("good.bin")); !bytes.Equal(got, good) {
		t.Fatal("a failed update changed the good file's content")
	}
	// Retries that fail again, then fail for want of a peer: still the one
	// error, not reported again.
	if err := b.f.Apply(ctx, b.obj.Items()); err == nil {
		t.Fatal("Apply with a full disk succeeded")
	}
	b.fetch.onChunk = func() error { return transfer.ErrUnavailable }
	if err := b.f.Apply(ctx, b.obj.Items()); err == nil {
		t.Fatal("Apply with no peer succeeded")
	}
	if e := b.f.LastError(); e == nil || e.Kind != KindDiskFull || e.Files != 4 {
		t.Fatalf("after retries LastError = %+v, want disk full for 4 files", e)
	}
	if calls := log.get(); len(calls) != 1 || calls[0] == nil || calls[0].Kind != KindDiskFull {
		t.Fatalf("OnError calls = %v, want one disk-full", calls)
	}

	b.fetch.onChunk = nil
	if err := b.f.Apply(ctx, b.obj.Items()); err != nil {
		t.Fatalf("Apply after space was freed: %v", err)
	}
	if e := b.f.Status().Error; e != nil {
		t.Fatalf("error not cleared after recovery: %+v", e)
	}
	if calls := log.get(); len(calls) != 2 || calls[1] != nil {
		t.Fatalf("OnError calls = %v, want the error then its clearing (nil)", calls)
	}
	sameTree(t, a, b)
}

// TestApplyErrorPartial: of several failing files, the error stays while
// one still fails, with the count of those; a permission error is its
// kind.
func TestApplyErrorPartial(t *testing.T) {
	var log errorLog
	a := newNode(t, devA, nil)
	b := newNode(t, devB, func(c *Config) { c.OnError = log.on })
	b.fetch.peers = append(b.fetch.peers, a.st)
	for i := range 2 {
		a.write(fmt.Sprintf("f%d", i), randBytes(uint64(20+i), 100_000), 0o644)
	}
	a.scan()
	b.fetch.onChunk = func() error { return &fs.PathError{Op: "open", Path: "x", Err: syscall.EACCES} }
	if err := b.pull(a); ErrorKind(err) != KindPermission {
		t.Fatalf("Apply = %v, want permission denied", err)
	}
	if e := b.f.LastError(); e == nil || e.Kind != KindPermission || e.Files != 2 {
		t.Fatalf("LastError = %+v, want permission denied for 2 files", e)
	}
	b.fetch.onChunk = nil
	it, _ := b.obj.Item("f0")
	if err := b.f.Apply(context.Background(), []syncproto.Item{it}); err != nil {
		t.Fatal(err)
	}
	if e := b.f.LastError(); e == nil || e.Files != 1 || e.Path != "f1" {
		t.Fatalf("with f1 still failing LastError = %+v, want f1, 1 file", e)
	}
	if len(log.get()) != 1 {
		t.Fatalf("OnError calls = %v, want 1", log.get())
	}
	if err := b.f.Apply(context.Background(), b.obj.Items()); err != nil {
		t.Fatal(err)
	}
	if e := b.f.LastError(); e != nil || len(log.get()) != 2 {
		t.Fatalf("after recovery LastError = %+v, calls %v", e, log.get())
	}
}

// TestApplyErrorBlocked: a refused item is the folder's error (blocked)
// until it is deleted; an unavailable peer alone is no error.
func TestApplyErrorBlocked(t *testing.T) {
	var log errorLog
	a := newNode(t, devA, nil)
	b := newNode(t, devB, func(c *Config) { c.OnError = log.on })
	ctx := context.Background()
	bad := rawItem("l1", &syncproto.FileEntry{Path: "l1", Mode: fs.ModeSymlink | 0o777, Symlink: "../../../../etc"})
	if err := b.f.Apply(ctx, []syncproto.Item{bad}); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("Apply = %v, want ErrUnsafePath", err)
	}
	if e := b.f.LastError(); e == nil || e.Kind != KindBlocked || e.Path != "l1" {
		t.Fatalf("LastError = %+v, want blocked l1", e)
	}
	del := bad
	del.Sync.Deleted = true
	del.Sync.Updates++
	if err := b.f.Apply(ctx, []syncproto.Item{del}); err != nil {
		t.Fatalf("Apply of the deletion: %v", err)
	}
	if e := b.f.LastError(); e != nil {
		t.Fatalf("LastError after the refused item was deleted = %+v", e)
	}

	// No peer has the content: not the folder's failure.
	a.write("x", randBytes(30, 1000), 0o644)
	a.scan()
	if err := b.pull(a); err == nil {
		t.Fatal("Apply without a peer succeeded")
	}
	if e := b.f.LastError(); e != nil {
		t.Fatalf("content unavailable made an error: %+v", e)
	}
	if calls := log.get(); len(calls) != 2 || calls[0] == nil || calls[1] != nil {
		t.Fatalf("OnError calls = %v, want blocked then cleared", calls)
	}
}

// TestSettleFailuresNoAlloc: with nothing failing, ending an apply run
// allocates nothing.
func TestSettleFailuresNoAlloc(t *testing.T) {
	n := newNode(t, devA, nil)
	items := []syncproto.Item{rawItem("a", &syncproto.FileEntry{Path: "a"})}
	if allocs := testing.AllocsPerRun(100, func() {
		n.f.beginFailures()
		n.f.settleFailures(items)
	}); allocs != 0 {
		t.Fatalf("settleFailures allocates %v times per run", allocs)
	}
}
