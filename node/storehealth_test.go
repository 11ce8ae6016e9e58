package node

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func testStoreHealth(t *testing.T) *storeHealth {
	dir := filepath.Join(t.TempDir(), "db")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	h := newStoreHealth(dir, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	h.check()
	if msg, _ := h.state(); msg != "" {
		t.Fatalf("working store reported %q", msg)
	}
	return h
}

// reprobe runs a check that probes (not skipped by the once-a-second bound)
// and returns the error it leaves.
func reprobe(h *storeHealth) (string, time.Time) {
	h.lastProbe = time.Time{}
	h.check()
	return h.state()
}

// TestStoreHealthDirGone: a store directory that goes away is an error with
// its path and since when.
func TestStoreHealthDirGone(t *testing.T) {
	h := testStoreHealth(t)
	if err := os.RemoveAll(h.dir); err != nil {
		t.Fatal(err)
	}
	msg, since := reprobe(h)
	if !strings.Contains(msg, h.dir) || !strings.Contains(msg, "no such file") || since.IsZero() {
		t.Fatalf("removed store dir: got %q since %v", msg, since)
	}
}

// TestStoreHealthDirReplaced: a directory made again at the store's path is
// an error (badger's files are gone); the original coming back clears it.
func TestStoreHealthDirReplaced(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the inode check is linux only")
	}
	h := testStoreHealth(t)
	aside := h.dir + ".aside"
	if err := os.Rename(h.dir, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(h.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if msg, _ := reprobe(h); !strings.Contains(msg, "made again") {
		t.Fatalf("replaced store dir: got %q", msg)
	}
	if err := os.Remove(h.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, h.dir); err != nil {
		t.Fatal(err)
	}
	if msg, _ := reprobe(h); msg != "" {
		t.Fatalf("store dir back, error stays: %q", msg)
	}
}

// TestStoreHealthBadgerError: an error badger logs is a store error until
// badger has been quiet for storeQuietFor and a probe is good.
func TestStoreHealthBadgerError(t *testing.T) {
	h := testStoreHealth(t)
	h.badgerError("error flushing memtable to disk: open x.sst: no such file or directory, retrying")
	if msg, _ := reprobe(h); !strings.Contains(msg, "flushing memtable") || !strings.Contains(msg, h.dir) {
		t.Fatalf("badger error not kept: %q", msg)
	}
	h.mu.Lock()
	h.lastBadger = time.Now().Add(-2 * storeQuietFor)
	h.mu.Unlock()
	if msg, _ := reprobe(h); msg != "" {
		t.Fatalf("badger quiet and probe good, error stays: %q", msg)
	}
	if ents, _ := os.ReadDir(h.dir); len(ents) != 0 {
		t.Fatalf("probe left files: %v", ents)
	}
}
