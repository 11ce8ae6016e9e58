package folder

import (
	"context"
	"testing"
	"time"

	"github.com/meshwork/meshwork/syncproto"
)

// TestIndexing: Indexing is true before the first scan, while a scan
// hashes, and from a watcher event until a scan looked at it; when it turns
// false after an event, the change is in the Feed.
func TestIndexing(t *testing.T) {
	a := newNode(t, devA, func(c *Config) { c.Debounce = 300 * time.Millisecond })
	if !a.f.Indexing() {
		t.Fatal("Indexing false before the first scan")
	}
	a.scan()
	if a.f.Indexing() {
		t.Fatal("Indexing true after a scan with nothing pending")
	}
	a.write("x.txt", []byte("x"), 0o644)
	var during []bool
	a.f.hashHook = func(string) { during = append(during, a.f.Indexing()) }
	a.scan()
	a.f.hashHook = nil
	if len(during) != 1 || !during[0] {
		t.Fatalf("Indexing while hashing: %v, want [true]", during)
	}
	if a.f.Indexing() {
		t.Fatal("Indexing true after the scan")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.f.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	// Watches are added just after Run's first scan: write probe files
	// until one reaches the Feed, then the root is watched.
	for i := 0; ; i++ {
		if i == 300 {
			t.Fatal("root not watched after 300 probe files")
		}
		name := "probe" + itoa(i) + ".txt"
		a.write(name, []byte("p"), 0o644)
		waitFor(t, 30*time.Second, func() bool { return !a.f.Indexing() })
		if _, ok := a.obj.Item(syncproto.ItemID(name)); ok {
			break
		}
	}
	for i := range 5 {
		name := "w" + itoa(i) + ".txt"
		a.write(name, []byte(name), 0o644)
		// The event reaches the watcher soon; from then on Indexing holds
		// until the debounced scan has put the file in the Feed.
		// (The debounce is long enough that this poll sees it.)
		waitFor(t, 30*time.Second, a.f.Indexing)
		waitFor(t, 30*time.Second, func() bool { return !a.f.Indexing() })
		if _, ok := a.obj.Item(syncproto.ItemID(name)); !ok {
			t.Fatalf("%s: Indexing turned false but the file is not in the Feed", name)
		}
	}
}
