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
	r := &runLoop{f: f, ctx: ctx, w: w, watched: make(map[string]bool), dirty: make(map[string]bool)}
	defer r.again.stop()
	r.full()
	if err := f.ExpireVersions(ctx); err != nil && ctx.Err() == nil {
		f.log.Warn("expire versions", "err", err)
	}

	rescan := time.NewTicker(f.cfg.RescanInterval)
	defer rescan.Stop()
	expire := time.NewTicker(min(time.Hour, max(time.Minute, f.cfg.Retention/10)))
	defer expire.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-rescan.C:
			r.full()
		case <-r.again.c():
			r.applyAll()
		case <-expire.C:
			if err := f.ExpireVersions(ctx); err != nil && ctx.Err() == nil {
				f.log.Warn("expire versions", "err", err)
			}
		case rel := <-events:
			r.event(rel)
		case <-r.debounce:
			r.scanDirty()
		}
	}
}

// runLoop is the state of Run's loop, owned by Run's goroutine (Run keeps
// the deferred stops and waits itself, so that they run when it returns).
type runLoop struct {
	f       *Folder
	ctx     context.Context
	w       *fsnotify.Watcher // nil: none (rescans only)
	watched map[string]bool   // directories w watches
	again   applyRetry

	debounce <-chan time.Time
	taken    uint64 // events received from watch
	first    time.Time
	dirty    map[string]bool
}

// addWatches watches the dirs not watched yet and returns those it added.
func (r *runLoop) addWatches(dirs []string) (added []string) {
	if r.w == nil {
		return nil
	}
	for _, d := range dirs {
		if r.watched[d] {
			continue
		}
		if err := r.w.Add(r.f.abs(d)); err != nil {
			r.f.log.Warn("watch directory", "path", d, "err", err)
			continue
		}
		r.watched[d] = true
		added = append(added, d)
	}
	return added
}

// scanWatch scans scopes, watches the directories it saw, and scans
// the newly watched ones again: what was written in them after the
// first scan looked and before their watch existed has no event.
// Indexing holds throughout.
func (r *runLoop) scanWatch(scopes []string) error {
	f := r.f
	f.scans.Add(1)
	defer f.scans.Add(-1)
	dirs, err := f.scan(r.ctx, scopes)
	if added := r.addWatches(dirs); len(added) > 0 && err == nil {
		more, err2 := f.scan(r.ctx, added)
		r.addWatches(more)
		err = err2
	}
	return err
}

func (r *runLoop) applyAll() {
	err := r.f.Apply(r.ctx, r.f.feed.Items())
	if err != nil && r.ctx.Err() == nil {
		r.f.log.Info("apply pending items", "err", err, "retry_in", r.again.after(err))
	} else {
		r.again.after(nil)
	}
}

func (r *runLoop) full() {
	if err := r.scanWatch([]string{""}); err != nil && r.ctx.Err() == nil {
		r.f.log.Warn("scan", "err", err)
	}
	if r.ctx.Err() == nil {
		r.applyAll()
	}
}

// event notes the watcher's event for rel: dirty, to be scanned after a
// debounce, unless it needs no scan.
func (r *runLoop) event(rel string) {
	f := r.f
	r.taken++ // events arrive in the order watch numbered them
	if len(r.dirty) == 0 && f.settled(rel) {
		// Nothing to index, and every earlier event was scanned.
		f.cover(r.taken)
		return
	}
	if len(r.dirty) == 0 {
		r.first = time.Now()
	}
	r.dirty[rel] = true
	// Wait for a quiet Debounce, but never more than 4 of them
	// after the first event.
	wait := f.cfg.Debounce
	if left := 4*f.cfg.Debounce - time.Since(r.first); left < wait {
		wait = max(left, 0)
	}
	r.debounce = time.After(wait)
}

// scanDirty scans the dirty paths once the debounce is over, and then
// applies what the scan left to apply.
func (r *runLoop) scanDirty() {
	f := r.f
	r.debounce = nil
	rels := make([]string, 0, len(r.dirty))
	for rel := range r.dirty {
		rels = append(rels, rel)
	}
	clear(r.dirty)
	for _, rel := range rels {
		if rel == "" {
			r.watched = make(map[string]bool) // overflow: re-add all
		}
	}
	upto := r.taken
	err := r.scanWatch(rels)
	f.cover(upto) // (a failed scan too: the next event or rescan retries)
	if err != nil && r.ctx.Err() == nil && !errors.Is(err, ErrClosed) {
		f.log.Warn("incremental scan", "err", err)
	}
	if f.pendingApply() {
		if err := f.ApplyPending(r.ctx); err != nil && r.ctx.Err() == nil {
			f.log.Info("apply concurrent changes", "err", err, "retry_in", r.again.after(err))
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
