package folder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOwnApplyRetried: an item that the folder's own apply (at start)
// failed to write, for a reason that passes, is written by a retry within
// seconds, not at the hourly rescan (the daemon retries only the changes
// peers send; soak seed 975 waited for good).
func TestOwnApplyRetried(t *testing.T) {
	a, b := pair(t)
	a.write("doc.txt", []byte("from A"), 0o644)
	a.scan()
	for _, it := range a.obj.Items() { // in B's replica, not yet written
		if _, _, err := b.obj.Apply(it); err != nil {
			t.Fatal(err)
		}
	}
	var failed atomic.Bool
	b.f.commitHook = func(rel string) {
		if rel != "doc.txt" || failed.Swap(true) {
			return
		}
		// The first commit fails: its partial file is gone from under it.
		tmps, _ := filepath.Glob(filepath.Join(b.root, tmpPrefix+"*"))
		for _, p := range tmps {
			if err := os.Remove(p); err != nil {
				t.Error(err)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.f.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	waitFor(t, 30*time.Second, func() bool { // RescanInterval is an hour
		got, err := os.ReadFile(b.path("doc.txt"))
		return err == nil && string(got) == "from A"
	})
	if !failed.Load() {
		t.Fatal("the first commit did not fail: nothing was retried")
	}
	noTemps(t, b.root)
}

func TestRetriable(t *testing.T) {
	other := errors.New("rename: no such file")
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{other, true},
		{unavailable(other), false},
		{fmt.Errorf("x: %w", ErrUnsafePath), false},
		{errors.Join(unavailable(other), fmt.Errorf("y: %w", ErrCaseCollision)), false},
		{errors.Join(unavailable(other), other), true},
		{context.Canceled, false},
	} {
		if got := retriable(c.err); got != c.want {
			t.Errorf("retriable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	var r applyRetry
	defer r.stop()
	var waits []string
	for range 8 {
		waits = append(waits, r.after(other).String())
	}
	if got := strings.Join(waits, " "); got != "2s 4s 8s 16s 32s 1m0s 1m0s 1m0s" {
		t.Errorf("backoff %s", got)
	}
	if r.after(nil) != 0 || r.after(other) != retryFirst {
		t.Error("a success does not reset the backoff")
	}
}

// TestEachOn: every element is handed out once, on at most n goroutines at
// a time; once ctx is done no further element is handed out.
func TestEachOn(t *testing.T) {
	items := make([]int, 100)
	for i := range items {
		items[i] = i
	}
	var mu sync.Mutex
	seen := map[int]int{}
	running, most := 0, 0
	eachOn(context.Background(), 4, items, func(i int) {
		mu.Lock()
		seen[i]++
		running++
		most = max(most, running)
		mu.Unlock()
		mu.Lock()
		running--
		mu.Unlock()
	})
	if len(seen) != len(items) {
		t.Fatalf("%d of %d elements handed out", len(seen), len(items))
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("element %d handed out %d times", i, n)
		}
	}
	if most > 4 {
		t.Fatalf("%d calls at once, want at most 4", most)
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	eachOn(ctx, 1, items, func(int) {
		calls++
		if calls == 3 {
			cancel()
		}
	})
	if calls > 4 { // the element being handed out when ctx ended may still run
		t.Fatalf("%d calls after ctx was done at the third", calls)
	}
}
