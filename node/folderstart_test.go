package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// TestAwaitFolderStart: wait on a folder joined here that has not started
// yet (meshd just started) waits until it starts instead of saying this
// device does not sync it; a folder never joined here is that error at
// once. BenchmarkScaleFiles hit the first case: `mesh wait` right after a
// restart failed.
func TestAwaitFolderStart(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	n := &Node{db: db, folders: newFolderSet()}
	conf := folderConf{ID: "folder-x", Name: "docs", Path: t.TempDir()}
	if err := n.saveFolderConf(conf); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type result struct {
		lf  *localFolder
		err error
	}
	got := make(chan result, 1)
	go func() {
		lf, err := n.awaitFolderStart(ctx, "docs")
		got <- result{lf, err}
	}()
	select {
	case r := <-got:
		t.Fatalf("returned before the folder started: %v", r.err)
	case <-time.After(200 * time.Millisecond): // a negative check: it must still be waiting
	}
	lf := &localFolder{conf: conf, cancel: func() {}}
	n.folders.add(lf, func() {})
	select {
	case r := <-got:
		if r.err != nil || r.lf != lf {
			t.Fatalf("after the folder started: %v, %v", r.lf, r.err)
		}
	case <-ctx.Done():
		t.Fatal("still waiting after the folder started")
	}
	if _, err := n.awaitFolderStart(ctx, "nosuch"); err == nil || !strings.Contains(err.Error(), "does not sync that folder") {
		t.Fatalf("a folder never joined here: %v", err)
	}
	n.folders.stopAll()
}
