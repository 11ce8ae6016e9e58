package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
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
// that creates, writes and removes a small file in the store directory, as
// a flush must (check: at most once a second, from the status API and the
// store loop).
type storeHealth struct {
	dir string
	log *slog.Logger

	mu         sync.Mutex
	err        string    // "" while the store works
	since      time.Time // when err was first seen
	lastBadger time.Time // badger's last logged error
	lastProbe  time.Time
}

const (
	storeProbeEvery = time.Second      // at most one probe per this
	storeLoopEvery  = 5 * time.Second  // the store loop's probe period
	storeQuietFor   = 5 * time.Second  // no badger error for this long (and a good probe) clears the error
	storeProbeName  = ".meshd-probe-*" // in the store directory; removed right away
)

func newStoreHealth(dir string, log *slog.Logger) *storeHealth {
	return &storeHealth{dir: dir, log: log}
}

// fail records a store error; the first one after a working period is
// logged at ERROR.
func (h *storeHealth) fail(msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != "" {
		return
	}
	h.err, h.since = msg, time.Now().UTC()
	h.log.Error("store error: "+msg, "store", h.dir)
}

// badgerError records an error badger logged (a failed flush, compaction,
// value log write, ...).
func (h *storeHealth) badgerError(msg string) {
	h.mu.Lock()
	h.lastBadger = time.Now()
	h.mu.Unlock()
	h.fail(fmt.Sprintf("badger store %s: %s", h.dir, msg))
}

// check probes the store directory unless it was probed within the last
// second, and sets or clears the error.
func (h *storeHealth) check() {
	h.mu.Lock()
	now := time.Now()
	if now.Sub(h.lastProbe) < storeProbeEvery {
		h.mu.Unlock()
		return
	}
	h.lastProbe = now
	h.mu.Unlock()
	if err := probeDir(h.dir); err != nil {
		h.fail(fmt.Sprintf("badger store %s cannot write files: %v", h.dir, err))
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != "" && time.Since(h.lastBadger) > storeQuietFor {
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

// probeDir creates a one-byte file in dir and removes it.
func probeDir(dir string) error {
	f, err := os.CreateTemp(dir, storeProbeName)
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte{0})
	cerr := f.Close()
	rerr := os.Remove(f.Name())
	for _, e := range []error{werr, cerr, rerr} {
		if e != nil {
			return e
		}
	}
	return nil
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
