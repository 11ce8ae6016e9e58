package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/meshwork/meshwork/syncproto"
)

// testFolder is a localFolder with just what the set reads: its conf and
// its cancel.
func testFolder(i int) (*localFolder, context.Context) {
	ctx, cancel := context.WithCancel(context.Background())
	id := syncproto.ObjectID(fmt.Sprintf("folder-%d", i))
	return &localFolder{conf: folderConf{ID: id, Name: fmt.Sprintf("f%d", i)}, cancel: cancel}, ctx
}

func TestFolderSet(t *testing.T) {
	s := newFolderSet()
	const n = 8
	// Add concurrently (for -race), each folder's goroutine running until
	// its folder is cancelled.
	var wg sync.WaitGroup
	exited := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lf, ctx := testFolder(i)
			s.add(lf, func() { <-ctx.Done(); exited <- lf.conf.Name })
			if got := s.get(lf.conf.ID); got != lf {
				t.Errorf("get(%q) right after add = %v, want the folder added", lf.conf.ID, got)
			}
		}()
	}
	wg.Wait()
	names := func() []string {
		var out []string
		for _, lf := range s.list() {
			out = append(out, lf.conf.Name)
		}
		slices.Sort(out)
		return out
	}
	if got := names(); len(got) != n {
		t.Fatalf("list() after %d adds = %q", n, got)
	}
	if got := s.find(func(lf *localFolder) bool { return lf.conf.Name == "f3" }); got == nil || got.conf.ID != "folder-3" {
		t.Fatalf("find(name f3) = %v, want folder-3", got)
	}
	if got := s.get("folder-none"); got != nil {
		t.Fatalf("get(folder-none) = %v, want nil", got)
	}

	lf := s.take(func(lf *localFolder) bool { return lf.conf.Name == "f3" })
	if lf == nil || lf.conf.ID != "folder-3" {
		t.Fatalf("take(name f3) = %v, want folder-3", lf)
	}
	if got := s.get("folder-3"); got != nil {
		t.Fatalf("get(folder-3) after take = %v, want nil", got)
	}
	if got := s.take(func(lf *localFolder) bool { return lf.conf.Name == "f3" }); got != nil {
		t.Fatalf("second take(name f3) = %v, want nil", got)
	}
	if got := names(); len(got) != n-1 || slices.Contains(got, "f3") {
		t.Fatalf("list() after take(f3) = %q, want the other %d", got, n-1)
	}

	// stopAll cancels the folders still in the set and waits for every
	// goroutine, the taken folder's too: cancel that one as its remover
	// would, or stopAll would wait for it for ever.
	lf.cancel()
	s.stopAll()
	close(exited)
	var out []string
	for name := range exited {
		out = append(out, name)
	}
	if len(out) != n {
		t.Fatalf("goroutines returned by the end of stopAll: %q, want all %d", out, n)
	}
}

func TestFolderSetLockAdds(t *testing.T) {
	s := newFolderSet()
	unlock := s.lockAdds()
	// The set's other methods do not need the add lock: an add can look
	// at the set while it holds it (refuseOverlap).
	if got := s.list(); len(got) != 0 {
		t.Fatalf("list() of a new set = %v", got)
	}
	if s.addMu.TryLock() {
		t.Fatal("the add lock was free while lockAdds held it")
	}
	unlock()
	if !s.addMu.TryLock() {
		t.Fatal("the add lock was still held after lockAdds' unlock")
	}
	s.addMu.Unlock()
}
