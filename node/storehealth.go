package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// storeHealth tracks whether the badger store still works at run time. A
// store whose directory went away, turned read-only or filled up keeps
// answering reads and buffering writes in its memtable, and badger retries a
// failed memtable flush every second forever; storeHealth turns that into
// a status error (Status.StoreError), logged once at ERROR, and clears it
// when the store works again.
//
// Two sources feed it: every error badger logs (badgerLogger), and a probe
// of the store directory (check: at most once a second, from the status API
// and the store loop; probe_linux.go, probe_other.go): is it still there,
// the same directory, writable, with space left, as a flush needs.
type storeHealth struct {
	dir string
	log *slog.Logger
	now func() time.Time // the node's clock (Config.Now)

	mu         sync.Mutex
	err        string    // "" while the store works
	since      time.Time // when err was first seen
	lastBadger time.Time // badger's last logged error
	lastProbe  time.Time

	probeMu sync.Mutex
	ino     uint64 // the directory's inode at the first good probe (linux), 0 before; under probeMu
}

const (
	storeProbeEvery = time.Second     // at most one probe per this
	storeLoopEvery  = 5 * time.Second // the store loop's probe period
	storeQuietFor   = 5 * time.Second // no badger error for this long (and a good probe) clears the error
)

func newStoreHealth(dir string, log *slog.Logger, now func() time.Time) *storeHealth {
	return &storeHealth{dir: dir, log: log, now: now}
}

// fail records a store error; the first one after a working period is
// logged at ERROR.
func (h *storeHealth) fail(msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != "" {
		return
	}
	h.err, h.since = msg, h.now().UTC()
	h.log.Error("store error: "+msg, "store", h.dir)
}

// badgerError records an error badger logged (a failed flush, compaction,
// value log write, ...).
func (h *storeHealth) badgerError(msg string) {
	h.mu.Lock()
	h.lastBadger = h.now()
	h.mu.Unlock()
	h.fail(fmt.Sprintf("badger store %s: %s", h.dir, msg))
}

// check probes the store directory unless it was probed within the last
// second, and sets or clears the error.
func (h *storeHealth) check() {
	h.mu.Lock()
	now := h.now()
	if now.Sub(h.lastProbe) < storeProbeEvery {
		h.mu.Unlock()
		return
	}
	h.lastProbe = now
	h.mu.Unlock()
	h.probeMu.Lock() // probe owns h.ino
	err := h.probe()
	h.probeMu.Unlock()
	if err != nil {
		h.fail(fmt.Sprintf("badger store %s cannot write: %v", h.dir, err))
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != "" && h.now().Sub(h.lastBadger) > storeQuietFor {
		h.log.Info("store works again", "store", h.dir, "failing_since", h.since, "was", h.err)
		h.err, h.since = "", time.Time{}
	}
}

// state returns the current error and since when, or "".
func (h *storeHealth) state() (string, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err, h.since
}

// storeLoop probes the store every storeLoopEvery, so that a failing store
// is logged even when nobody asks for the status.
func (n *Node) storeLoop(ctx context.Context) {
	t := time.NewTicker(storeLoopEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.health.check()
		}
	}
}
