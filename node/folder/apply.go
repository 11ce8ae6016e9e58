package folder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/store"
	"github.com/meshwork/meshwork/syncproto"
)

// applyWorkers is how many files Apply writes at once.
const applyWorkers = 16

// job is one item for Apply to write.
type job struct {
	it syncproto.Item
	fe *syncproto.FileEntry
}

// Apply makes the directory match the given items (typically those a merge
// changed; all of Feed.Items() is always safe): files are fetched into the
// store's partial files and renamed into place, deleted and replaced files
// are kept in the version history, and losing versions of conflicting items
// are written beside them as conflict copies. Items with unsafe paths are
// refused (ErrUnsafePath, ErrCaseCollision) and nothing is written for
// them; ignored paths are left alone. Apply goes on after an item fails and
// returns the failures joined. It is idempotent and resumes interrupted
// transfers without fetching verified chunks again.
//
// A file edited here since the last scan is not overwritten: Apply scans
// it first, and the scan reports the edit (UpdateFrom), as a conflict with
// the remote change when the edit started from an older version. Apply
// then writes the items of such paths again, with the conflict, before it
// returns; so does an Apply with no items after a scan that found such
// edits (ApplyPending).
func (f *Folder) Apply(ctx context.Context, items []syncproto.Item) error {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	err := f.apply(ctx, items)
	for range 3 { // a path edited again while being written waits for the next
		f.mu.Lock()
		ids := make([]syncproto.ItemID, 0, len(f.reapply))
		for rel := range f.reapply {
			ids = append(ids, syncproto.ItemID(rel))
		}
		clear(f.reapply)
		f.mu.Unlock()
		if len(ids) == 0 || ctx.Err() != nil {
			break
		}
		var again []syncproto.Item
		for _, id := range ids {
			if it, ok := f.feed.Item(id); ok {
				again = append(again, it)
			}
		}
		err = errors.Join(err, f.apply(ctx, again))
	}
	return err
}

// pendingApply reports whether a scan left paths for ApplyPending.
func (f *Folder) pendingApply() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reapply) > 0
}

// ApplyPending writes the items of paths a scan found edited concurrently
// with a remote change (see Apply).
func (f *Folder) ApplyPending(ctx context.Context) error { return f.Apply(ctx, nil) }

// apply is one apply run: it writes items and then settles the folder's
// failures (applyerr.go) of their paths.
func (f *Folder) apply(ctx context.Context, items []syncproto.Item) error {
	f.beginFailures()
	err := f.applyItems(ctx, items)
	if ctx.Err() == nil {
		f.settleFailures(items)
	}
	return err
}

// applyItems writes items: directories, then files (in parallel), then
// deletions, then conflict copies. It stops when ctx is done and returns
// the failures joined (with ctx's error then).
func (f *Folder) applyItems(ctx context.Context, items []syncproto.Item) error {
	if items = f.filterApply(items); len(items) == 0 {
		return nil
	}
	if _, err := f.ign.reload(); err != nil {
		f.log.Warn("read ignore file", "err", err)
	}
	live, dels, errs := f.jobsOf(items)
	// Directories in order (parents first), then files and links on a few
	// workers: each file's fetch is a network round trip or more, and its
	// commit an fsync, so one at a time leaves the pipe and the disk idle
	// (an initial sync of 10,000 small files was bound by exactly that).
	var files []job
	for _, j := range live {
		if !j.fe.Mode.IsDir() {
			files = append(files, j)
			continue
		}
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if err := f.applyLive(ctx, j.it, j.fe); failed(err) {
			f.noteFailure(j.fe.Path, err)
			errs = append(errs, err)
		}
	}
	f.prefetchManifests(ctx, files)
	defer func() {
		f.pmu.Lock()
		f.prefetched = nil
		f.pmu.Unlock()
	}()
	errs = append(errs, f.applyFiles(ctx, files)...)
	if err := ctx.Err(); err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, j := range dels {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if err := f.applyDelete(ctx, j.it, j.fe); failed(err) {
			f.noteFailure(j.fe.Path, err)
			errs = append(errs, err)
		}
	}
	errs, err := f.applyConflicts(ctx, live, errs)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := f.dropResolvedConflicts(ctx); err != nil {
		errs = append(errs, err)
	}
	f.dropStalePartials(ctx)
	return errors.Join(errs...)
}

// jobsOf sorts items into the live and the deleted ones to write, in the
// order they are written, and refuses those with unsafe paths (errs).
func (f *Folder) jobsOf(items []syncproto.Item) (live, dels []job, errs []error) {
	for _, it := range items {
		fe, ok := it.Body.(*syncproto.FileEntry)
		if !ok || fe == nil {
			continue
		}
		if err := checkRel(fe.Path); err != nil {
			f.refused(fe.Path, err)
			err = fmt.Errorf("apply item %q: %w", it.Sync.ID, err)
			if !it.Sync.Deleted { // a deleted refused item: nothing to write
				f.noteFailure(fe.Path, err)
			}
			errs = append(errs, err)
			continue
		}
		if string(it.Sync.ID) != fe.Path {
			err := fmt.Errorf("apply item %q: path %q differs from the item ID: %w", it.Sync.ID, fe.Path, ErrUnsafePath)
			f.refused(fe.Path, err)
			if !it.Sync.Deleted {
				f.noteFailure(fe.Path, err)
			}
			errs = append(errs, err)
			continue
		}
		if it.Sync.Deleted {
			dels = append(dels, job{it, fe})
		} else {
			live = append(live, job{it, fe})
		}
	}
	// Directories before what is in them, files before deletions (so that a
	// renamed file's content is still there), deletions deepest first.
	sort.SliceStable(live, func(i, j int) bool {
		di, dj := live[i].fe.Mode.IsDir(), live[j].fe.Mode.IsDir()
		if di != dj {
			return di
		}
		return live[i].fe.Path < live[j].fe.Path
	})
	sort.SliceStable(dels, func(i, j int) bool { return dels[i].fe.Path > dels[j].fe.Path })
	return live, dels, errs
}

// applyFiles writes files (and links) on applyWorkers workers until ctx is
// done, and returns their failures.
func (f *Folder) applyFiles(ctx context.Context, files []job) []error {
	var errs []error
	var emu sync.Mutex
	eachOn(ctx, applyWorkers, files, func(j job) {
		if err := f.applyLive(ctx, j.it, j.fe); failed(err) {
			f.noteFailure(j.fe.Path, err)
			emu.Lock()
			errs = append(errs, err)
			emu.Unlock()
		}
	})
	return errs
}

// applyConflicts writes the conflict copies of the live items, appending
// their failures to errs; it stops with ctx's error when ctx is done.
func (f *Folder) applyConflicts(ctx context.Context, live []job, errs []error) ([]error, error) {
	for _, j := range live {
		if err := ctx.Err(); err != nil {
			return errs, err
		}
		if len(j.it.Sync.Conflicts) > 0 && f.superseded(j.it) {
			continue // its current version is applied again (reapplyCurrent), with its copies
		}
		for _, c := range j.it.Sync.Conflicts {
			if err := f.applyConflict(ctx, j.fe.Path, c); err != nil {
				if ErrorKind(err) == KindUnavailable {
					f.noteUnavailCopy(j.fe.Path, conflictName(j.fe.Path, c))
				} else {
					f.noteFailure(j.fe.Path, err)
				}
				errs = append(errs, err)
			}
		}
	}
	return errs, nil
}

// failed reports whether applying an item failed: an item not applied
// because its path was edited here (ErrLocalChange) has not, as the edit
// is in the Feed now, superseding it or as a conflict with it that Apply
// writes next.
func failed(err error) bool {
	return err != nil && !errors.Is(err, ErrLocalChange)
}

func (f *Folder) refused(rel string, err error) {
	f.log.Warn("refused remote item", "path", rel, "err", err)
	f.skip(rel, err.Error())
}

// statMatches reports whether fi is what st recorded.
func statMatches(st *fileState, fi fs.FileInfo) bool {
	if st == nil {
		return false
	}
	switch m := fi.Mode(); {
	case m.IsDir():
		return st.Kind == kindDir
	case m&fs.ModeSymlink != 0:
		return st.Kind == kindSymlink
	case m.IsRegular():
		return st.Kind == kindFile && st.Size == fi.Size() && st.MTime == fi.ModTime().UnixNano() &&
			st.Inode == inode(fi) && st.Perm == perm(fi)
	}
	return false
}

// settleLocked makes sure the recorded state of rel reflects the disk
// before Apply replaces or removes it: an unrecorded or changed path is
// scanned first. It returns ErrLocalChange when that scan found a local
// change (the Feed now has it, superseding the remote item being applied).
// Callers hold f.mu and have checked rel's parents (checkParents), so a
// plain lstat follows no symlink.
func (f *Folder) settleLocked(ctx context.Context, rel string) (fs.FileInfo, error) {
	fi, err := os.Lstat(f.abs(rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stat %q: %w", rel, err)
	}
	st := f.states[rel]
	if statMatches(st, fi) {
		return fi, nil
	}
	res, err := f.scanLocked(ctx, []string{rel})
	if err != nil {
		return nil, err
	}
	if res.updated[rel] {
		return nil, fmt.Errorf("path %q: %w", rel, ErrLocalChange)
	}
	fi, err = os.Lstat(f.abs(rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stat %q: %w", rel, err)
	}
	if !statMatches(f.states[rel], fi) {
		return nil, fmt.Errorf("path %q: %w", rel, ErrLocalChange)
	}
	return fi, nil
}

func (f *Folder) applyLive(ctx context.Context, it syncproto.Item, fe *syncproto.FileEntry) error {
	rel := fe.Path
	isDir := fe.Mode.IsDir()
	if f.ign.ignored(rel, isDir) {
		return nil
	}
	by := it.Sync.Top()
	if f.superseded(it) {
		f.reapplyCurrent(rel)
		return nil
	}
	switch {
	case isDir:
		return f.applyDir(ctx, rel, fe, by)
	case fe.Mode&fs.ModeSymlink != 0:
		return f.applySymlink(ctx, rel, fe, by)
	case fe.Mode.Type() == 0:
		return f.applyFile(ctx, rel, fe, by, false)
	}
	err := fmt.Errorf("apply %q: unsupported mode %v: %w", rel, fe.Mode, ErrUnsafePath)
	f.refused(rel, err)
	return err
}

// superseded reports whether the Feed's version of it differs from the
// one given (a newer one: the items come from the same replica): an
// Apply's items are read before it waits for the apply lock, and the run
// before it may have applied a newer version meanwhile (a deletion).
// Writing the stale one then recreated what that run had removed: a
// directory, or the parent directories of a file, stayed on one device
// while its replica said deleted (chaos soak seed 1124), and a stale
// deletion could remove a newer file. Items the Feed does not hold are
// not superseded (they are checked where they are written).
func (f *Folder) superseded(it syncproto.Item) bool {
	cur, ok := f.feed.Item(it.Sync.ID)
	return ok && cur.Sync.Top() != it.Sync.Top()
}

// reapplyCurrent has Apply write the Feed's current version of rel before
// it returns (its reapply rounds), in place of a superseded one: the run
// that applied the newer version may not have written it here (a file
// Fetch asked for in metadata mode, which no other run writes).
func (f *Folder) reapplyCurrent(rel string) {
	f.mu.Lock()
	f.reapply[rel] = true
	f.mu.Unlock()
}

// clearLocked moves whatever is at rel out of the way before something of
// another kind is written there: a file into the version history, a
// symlink removed, an empty directory removed. Callers hold f.mu and have
// settled rel.
func (f *Folder) clearLocked(ctx context.Context, rel string, fi fs.FileInfo) error {
	switch m := fi.Mode(); {
	case m.IsRegular():
		return f.keepVersionLocked(ctx, rel, true)
	case m.IsDir():
		f.removeTemps(ctx, rel)
		if err := f.rootFS.Remove(filepath.FromSlash(rel)); err != nil {
			return fmt.Errorf("remove directory %q: %w", rel, err)
		}
	default:
		if err := f.rootFS.Remove(filepath.FromSlash(rel)); err != nil {
			return fmt.Errorf("remove %q: %w", rel, err)
		}
	}
	return f.setState(rel, nil)
}

func (f *Folder) applyDir(ctx context.Context, rel string, fe *syncproto.FileEntry, by syncproto.History) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return fmt.Errorf("apply directory %q: %w", rel, err) }
	if err := f.checkParents(rel, true); err != nil {
		f.refused(rel, err)
		return fail(err)
	}
	fi, err := f.settleLocked(ctx, rel)
	if err != nil {
		return fail(err)
	}
	want := fe.Mode.Perm()
	if want == 0 {
		want = 0o755
	}
	if fi != nil && !fi.IsDir() {
		if err := f.clearLocked(ctx, rel, fi); err != nil {
			return fail(err)
		}
		fi = nil
	}
	if fi == nil {
		if err := f.rootFS.Mkdir(filepath.FromSlash(rel), want); err != nil && !errors.Is(err, fs.ErrExist) {
			return fail(err)
		}
	}
	if err := f.rootFS.Chmod(filepath.FromSlash(rel), want); err != nil {
		return fail(err)
	}
	fi, err = f.rootFS.Lstat(filepath.FromSlash(rel))
	if err != nil {
		return fail(err)
	}
	if !fi.IsDir() {
		return fail(fmt.Errorf("not a directory after mkdir: %w", ErrUnsafePath))
	}
	f.unskip(rel)
	return f.setState(rel, &fileState{Kind: kindDir, Perm: perm(fi), By: by.By, Seq: by.Sequence})
}

func (f *Folder) applySymlink(ctx context.Context, rel string, fe *syncproto.FileEntry, by syncproto.History) error {
	fail := func(err error) error { return fmt.Errorf("apply symlink %q: %w", rel, err) }
	if err := checkSymlinkTarget(rel, fe.Symlink); err != nil {
		f.refused(rel, err)
		return fail(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkParents(rel, true); err != nil {
		f.refused(rel, err)
		return fail(err)
	}
	fi, err := f.settleLocked(ctx, rel)
	if err != nil {
		return fail(err)
	}
	if fi != nil {
		if st := f.states[rel]; st != nil && st.Kind == kindSymlink && st.Target == fe.Symlink {
			if st.By == by.By && st.Seq == by.Sequence {
				return nil
			}
			nst := *st
			nst.setVersion(by)
			return f.setState(rel, &nst)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if err := f.clearLocked(ctx, rel, fi); err != nil {
				return fail(err)
			}
		}
	}
	// Create under a temporary name and rename over rel: atomic.
	tmp := path.Join(path.Dir(rel), ownTmpPrefx+randHex())
	if err := f.rootFS.Symlink(filepath.FromSlash(fe.Symlink), filepath.FromSlash(tmp)); err != nil {
		return fail(err)
	}
	if err := f.rootFS.Rename(filepath.FromSlash(tmp), filepath.FromSlash(rel)); err != nil {
		f.rootFS.Remove(filepath.FromSlash(tmp))
		return fail(err)
	}
	f.unskip(rel)
	return f.setState(rel, &fileState{Kind: kindSymlink, Perm: 0o777, Target: fe.Symlink, By: by.By, Seq: by.Sequence})
}

func randHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// manifest returns the manifest of ref: from the store, from a kept version
// with that content (indexed on demand, so a move sends no content), or
// from peers.
func (f *Folder) manifest(ctx context.Context, ref blobs.BlobRef) (blobs.Manifest, error) {
	f.pmu.Lock()
	m, ok := f.prefetched[ref]
	delete(f.prefetched, ref)
	f.pmu.Unlock()
	if ok {
		return m, nil // fetched by Apply's batch, verified against ref
	}
	if m, err := f.st.Manifest(ctx, ref); err == nil {
		return m, nil
	}
	if m, ok := f.manifestFromVersions(ctx, ref); ok {
		return m, nil
	}
	if f.cfg.Fetcher == nil {
		return blobs.Manifest{}, unavailable(fmt.Errorf("manifest of %v: %w", ref, store.ErrNoBlob))
	}
	m, err := f.cfg.Fetcher.FetchManifest(ctx, ref)
	if err != nil {
		return blobs.Manifest{}, unavailable(err)
	}
	if err := m.Verify(ref); err != nil {
		return blobs.Manifest{}, fmt.Errorf("manifest of %v: %w", ref, err)
	}
	return m, nil
}

// prefetchManifests fetches, in a few pipelined round trips, the
// manifests of the files in jobs whose content is not held here (one
// request per file otherwise). Failures are left to the per-file path.
func (f *Folder) prefetchManifests(ctx context.Context, jobs []job) {
	mb, ok := f.cfg.Fetcher.(ManifestBatcher)
	if !ok || len(jobs) < 2 {
		return
	}
	seen := map[blobs.BlobRef]bool{}
	var refs []blobs.BlobRef
	for _, j := range jobs {
		ref, err := BlobRefOf(j.fe.Blob)
		if err != nil || ref.IsZero() || seen[ref] || j.fe.Symlink != "" {
			continue
		}
		seen[ref] = true
		if _, err := f.st.Manifest(ctx, ref); err == nil {
			continue
		}
		refs = append(refs, ref)
	}
	if len(refs) < 2 {
		return
	}
	got, err := mb.FetchManifests(ctx, refs)
	if err != nil {
		f.log.Debug("batch manifest fetch", "refs", len(refs), "got", len(got), "err", err)
	}
	f.pmu.Lock()
	f.prefetched = got
	f.pmu.Unlock()
}
