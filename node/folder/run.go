package folder

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Run keeps the folder in sync until ctx is done: an initial full scan
// (its directories then watched and scanned once more, for what changed
// before their watch existed), then the items of the Feed applied (to finish anything pending from
// before a restart), then incremental scans triggered by a filesystem
// watcher (debounced), a full rescan and re-apply every RescanInterval,
// and expiry of old versions. It returns after every goroutine it started
// has exited, with nil when ctx was cancelled.
func (f *Folder) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		f.log.Warn("filesystem watcher unavailable, relying on rescans", "err", err)
		w = nil
	}
	var wg sync.WaitGroup
	events := make(chan string, 1024)
	if w != nil {
		defer wg.Wait()
		defer w.Close()
		wg.Go(func() { f.watch(ctx, w, events) })
	}
	watched := make(map[string]bool)
	addWatches := func(dirs []string) (added []string) {
		if w == nil {
			return nil
		}
		for _, d := range dirs {
			if watched[d] {
				continue
			}
			if err := w.Add(f.abs(d)); err != nil {
				f.log.Warn("watch directory", "path", d, "err", err)
				continue
			}
			watched[d] = true
			added = append(added, d)
		}
		return added
	}
	// scanWatch scans scopes, watches the directories it saw, and scans
	// the newly watched ones again: what was written in them after the
	// first scan looked and before their watch existed has no event.
	// Indexing holds throughout.
	scanWatch := func(scopes []string) error {
		f.scans.Add(1)
		defer f.scans.Add(-1)
		dirs, err := f.scan(ctx, scopes)
		if added := addWatches(dirs); len(added) > 0 && err == nil {
			more, err2 := f.scan(ctx, added)
			addWatches(more)
			err = err2
		}
		return err
	}
	var again applyRetry
	defer again.stop()
	applyAll := func() {
		err := f.Apply(ctx, f.feed.Items())
		if err != nil && ctx.Err() == nil {
			f.log.Info("apply pending items", "err", err, "retry_in", again.after(err))
		} else {
			again.after(nil)
		}
	}
	full := func() {
		if err := scanWatch([]string{""}); err != nil && ctx.Err() == nil {
			f.log.Warn("scan", "err", err)
		}
		if ctx.Err() == nil {
			applyAll()
		}
	}
	full()
	if err := f.ExpireVersions(ctx); err != nil && ctx.Err() == nil {
		f.log.Warn("expire versions", "err", err)
	}

	rescan := time.NewTicker(f.cfg.RescanInterval)
	defer rescan.Stop()
	expire := time.NewTicker(min(time.Hour, max(time.Minute, f.cfg.Retention/10)))
	defer expire.Stop()
	var debounce <-chan time.Time
	var taken uint64 // events received from watch
	var first time.Time
	dirty := make(map[string]bool)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-rescan.C:
			full()
		case <-again.c():
			applyAll()
		case <-expire.C:
			if err := f.ExpireVersions(ctx); err != nil && ctx.Err() == nil {
				f.log.Warn("expire versions", "err", err)
			}
		case rel := <-events:
			taken++ // events arrive in the order watch numbered them
			if len(dirty) == 0 && f.settled(rel) {
				// Nothing to index, and every earlier event was scanned.
				f.cover(taken)
				continue
			}
			if len(dirty) == 0 {
				first = time.Now()
			}
			dirty[rel] = true
			// Wait for a quiet Debounce, but never more than 4 of them
			// after the first event.
			wait := f.cfg.Debounce
			if left := 4*f.cfg.Debounce - time.Since(first); left < wait {
				wait = max(left, 0)
			}
			debounce = time.After(wait)
		case <-debounce:
			debounce = nil
			rels := make([]string, 0, len(dirty))
			for r := range dirty {
				rels = append(rels, r)
			}
			clear(dirty)
			for _, r := range rels {
				if r == "" {
					watched = make(map[string]bool) // overflow: re-add all
				}
			}
			upto := taken
			err := scanWatch(rels)
			f.cover(upto) // (a failed scan too: the next event or rescan retries)
			if err != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed) {
				f.log.Warn("incremental scan", "err", err)
			}
			if f.pendingApply() {
				if err := f.ApplyPending(ctx); err != nil && ctx.Err() == nil {
					f.log.Info("apply concurrent changes", "err", err, "retry_in", again.after(err))
				}
			}
		}
	}
}

// settled reports whether the event for rel needs no scan: a file on disk
// exactly as recorded, or nothing where nothing is recorded — typically
// Apply's own write or delete, which would otherwise keep Indexing true
// for a debounce. A directory always needs one (a new one must be
// watched), and so does anything while mu is busy (it does not wait).
func (f *Folder) settled(rel string) bool {
	if rel == "" {
		return false
	}
	fi, err := os.Lstat(f.abs(rel))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if !f.mu.TryLock() {
		return false
	}
	defer f.mu.Unlock()
	st := f.states[rel]
	switch {
	case fi == nil:
		return st == nil
	case fi.IsDir():
		return false
	}
	return statMatches(st, fi)
}

// watch turns watcher events into relative paths on events until ctx is
// done or the watcher is closed. "" asks for a full scan (events lost).
func (f *Folder) watch(ctx context.Context, w *fsnotify.Watcher, events chan<- string) {
	send := func(rel string) {
		f.evSent.Add(1) // Indexing: from the event until a scan covers it
		select {
		case events <- rel:
		case <-ctx.Done():
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			rel, err := filepath.Rel(f.root, ev.Name)
			if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
				continue
			}
			rel = filepath.ToSlash(rel)
			if first, _, _ := strings.Cut(rel, "/"); first == internalDir {
				continue
			}
			if strings.HasPrefix(filepath.Base(rel), tmpPrefix) {
				continue
			}
			send(rel)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			f.log.Warn("filesystem watcher", "err", err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				send("")
			}
		}
	}
}
