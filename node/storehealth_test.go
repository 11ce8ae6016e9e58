package node

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStoreHealth: a store directory that goes away is an error (with its
// path and since when); a badger error is one too; both clear once the
// directory works again and badger has been quiet.
func TestStoreHealth(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	h := newStoreHealth(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.check()
	if msg, _ := h.state(); msg != "" {
		t.Fatalf("working store reported %q", msg)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	h.lastProbe = time.Time{} // the next check probes
	h.check()
	msg, since := h.state()
	if !strings.Contains(msg, dir) || !strings.Contains(msg, "no such file") || since.IsZero() {
		t.Fatalf("removed store dir: got %q since %v", msg, since)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	h.lastProbe = time.Time{}
	h.check()
	if msg, _ := h.state(); msg != "" {
		t.Fatalf("store dir back, error stays: %q", msg)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("probe left files: %v", ents)
	}

	h.badgerError("error flushing memtable to disk: open x.sst: no such file or directory, retrying")
	h.lastProbe = time.Time{}
	h.check() // badger failed just now: the error stays
	if msg, _ := h.state(); !strings.Contains(msg, "flushing memtable") {
		t.Fatalf("badger error not kept: %q", msg)
	}
	h.lastBadger = time.Now().Add(-2 * storeQuietFor)
	h.lastProbe = time.Time{}
	h.check()
	if msg, _ := h.state(); msg != "" {
		t.Fatalf("badger quiet and probe good, error stays: %q", msg)
	}
}
