package folder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/store"
	"github.com/meshwork/meshwork/syncproto"
)

// applyFile writes the blob of fe at rel. With conflict, rel is a conflict
// copy: recorded as such, never reported as a local change while unedited.
//
// Its parts take and release f.mu themselves (fileInPlaceLocked runs
// wholly under the lock taken here); the deferred calls stay here, so that
// they run when applyFile returns: p.Close last, the transfer's end before
// it, and the release of rel from applying first.
func (f *Folder) applyFile(ctx context.Context, rel string, fe *syncproto.FileEntry, by syncproto.History, conflict bool) error {
	fail := func(err error) error { return fmt.Errorf("apply file %q: %w", rel, err) }
	ref, err := BlobRefOf(fe.Blob)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrMalformedItem, err)
		f.refused(rel, err)
		return fail(err)
	}
	if ref.IsZero() || ref.Size != fe.Size {
		err := fmt.Errorf("size %d does not match blob %v: %w (%w)", fe.Size, ref, ErrMalformedItem, blobs.ErrMalformed)
		f.refused(rel, err)
		return fail(err)
	}
	wantPerm := fe.Mode.Perm()
	mtime := fe.ModTime

	// Already there? Then only the metadata may need fixing.
	f.mu.Lock()
	if err := f.checkParents(rel, true); err != nil {
		f.mu.Unlock()
		f.refused(rel, err)
		return fail(err)
	}
	done, err := f.fileInPlaceLocked(ctx, rel, ref, wantPerm, mtime, by, conflict)
	f.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	if done {
		return nil
	}

	m, err := f.manifest(ctx, ref)
	if err != nil {
		return fail(err)
	}
	// The partial file is recorded as rel's, and the intent of this Apply
	// (what rel will be), in the store's own transaction. The intent covers
	// a crash between the rename and the state record below: the restart
	// scan finds rel holding the intent's blob and completes it.
	intent := fileState{Kind: kindFile, Perm: wantPerm, MTime: mtime.UnixNano(), Blob: ref, By: by.By, Seq: by.Sequence, Conflict: conflict}
	p, err := f.openPartial(ctx, rel, m, &intent)
	if err != nil {
		return fail(err)
	}
	defer p.Close()
	fetching, err := f.fetchMissing(ctx, rel, m, p, conflict)
	if fetching {
		defer f.endTransfer(rel) // here, not in fetchMissing: the transfer lasts until applyFile returns
	}
	if err != nil {
		return fail(err)
	}

	if err := f.claimForCommit(ctx, rel, by, conflict, p); err != nil {
		return fail(err)
	}
	defer func() {
		f.mu.Lock()
		delete(f.applying, rel)
		f.mu.Unlock()
	}()
	// The commit (verify, mode and mtime, fsync, rename) runs without the
	// folder lock, so that files being applied in parallel do not wait for
	// each other's fsync; scans leave rel alone meanwhile (applying). Its
	// index transaction also records rel's state and drops the intent and
	// rel's partial records: one transaction after the rename.
	st, partials, err := f.commitFile(ctx, rel, m, p, intent, wantPerm, mtime)
	if err != nil {
		return fail(err)
	}
	// Partial files of earlier attempts at rel (another blob) go; the one
	// just committed was renamed and the store forgot it.
	f.dropOtherPartials(ctx, partials, p.Path())
	f.mu.Lock()
	f.states[rel] = &st
	delete(f.applying, rel)
	f.mu.Unlock()
	f.unskip(rel)
	return nil
}

// fileInPlaceLocked settles rel before applyFile fetches anything. done
// reports that nothing is to be written: the item was superseded, or rel
// holds its blob already and only the metadata was fixed (err says whether
// that failed). Otherwise whatever at rel is not a regular file is cleared.
// Callers hold f.mu and have checked rel's parents.
func (f *Folder) fileInPlaceLocked(ctx context.Context, rel string, ref blobs.BlobRef, wantPerm fs.FileMode,
	mtime time.Time, by syncproto.History, conflict bool) (done bool, err error) {
	fi, err := f.settleLocked(ctx, rel)
	if err != nil {
		return false, err
	}
	if !conflict && !f.currentLocked(rel, by) {
		return true, nil // superseded since this run began: the newer version is applied (or is the one here)
	}
	if st := f.states[rel]; fi != nil && st != nil && st.Kind == kindFile && st.Blob == ref {
		if !conflict && st.Conflict {
			// The name was a conflict copy; it is an item's file now.
			st.Conflict = false
		}
		return true, f.setMetaLocked(rel, wantPerm, mtime, by, st.Conflict)
	}
	if fi != nil && !fi.Mode().IsRegular() {
		if err := f.clearLocked(ctx, rel, fi); err != nil {
			return false, err
		}
	}
	return false, nil
}

// openPartial opens the store's partial file of m for rel, recording it as
// rel's, and intent, in the store's transaction. It holds f.partialMu for
// reading meanwhile (see Folder.partialMu).
func (f *Folder) openPartial(ctx context.Context, rel string, m blobs.Manifest, intent *fileState) (*store.Partial, error) {
	abs := f.abs(rel)
	f.partialMu.RLock()
	p, err := f.st.OpenPartialWith(ctx, m, abs, func(txn *badger.Txn, path string) error {
		if err := txn.Set(f.key(kPartial, []byte(rel), []byte{0}, []byte(path)), nil); err != nil {
			return err
		}
		return txn.Set(f.key(kIntent, []byte(rel)), intent.encode())
	})
	f.partialMu.RUnlock()
	return p, err
}

// fetchMissing fetches from peers into p the chunks of m that the store
// does not have. fetching reports that a transfer of rel began (progress
// is recorded): the caller ends it with endTransfer when it is done with
// rel, whether or not err is nil.
func (f *Folder) fetchMissing(ctx context.Context, rel string, m blobs.Manifest, p *store.Partial, conflict bool) (fetching bool, err error) {
	missing, err := f.st.Missing(ctx, m)
	if err != nil {
		return false, err
	}
	if len(missing) == 0 {
		return false, nil
	}
	if f.cfg.Fetcher == nil {
		return false, unavailable(fmt.Errorf("%d chunks: %w", len(missing), store.ErrMissing))
	}
	if err := f.cfg.Fetcher.FetchInto(ctx, m, p, func(pr blobs.Progress) { f.progress(rel, pr) }); err != nil {
		err = unavailable(err)
		if conflict && ErrorKind(err) == KindUnavailable {
			f.abortPartial(ctx, rel, p) // superseded content no peer has: none stays visible
		}
		return true, err
	}
	return true, nil
}

// claimForCommit checks rel again once its content is fetched, and then
// claims rel for the commit (f.applying; the caller releases it).
func (f *Folder) claimForCommit(ctx context.Context, rel string, by syncproto.History, conflict bool, p *store.Partial) error {
	superseded, err := f.recheckAndClaim(ctx, rel, by, conflict, p)
	if err != nil {
		// Nothing of this Apply reached rel: its intent goes, and the
		// partial file of a superseded version too (no later run may
		// come to drop it: a visible temporary file).
		if superseded {
			f.abortPartial(ctx, rel, p)
		} else if derr := f.deleteRecord(f.key(kIntent, []byte(rel))); derr != nil {
			f.log.Warn("forget intent", "path", rel, "err", derr)
		}
	}
	return err
}

// recheckAndClaim is claimForCommit's part under f.mu (taken and released
// here, before claimForCommit cleans up). superseded reports that the item
// is not current any more (err is then ErrLocalChange).
func (f *Folder) recheckAndClaim(ctx context.Context, rel string, by syncproto.History, conflict bool, p *store.Partial) (superseded bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkParents(rel, false); err != nil {
		f.refused(rel, err)
		return false, err
	}
	fi, err := f.settleLocked(ctx, rel)
	if err != nil {
		return false, err
	}
	if !conflict && !f.currentLocked(rel, by) {
		return true, fmt.Errorf("path %q: superseded while its content was fetched: %w", rel, ErrLocalChange)
	}
	if fi != nil && fi.Mode().IsRegular() && !conflict {
		if err := f.keepVersionLocked(ctx, rel, false); err != nil {
			return false, err
		}
	} else if fi != nil && !fi.Mode().IsRegular() {
		if err := f.clearLocked(ctx, rel, fi); err != nil {
			return false, err
		}
		fi = nil
	}
	// What rel is now (as indexed, or absent) is what the rename may
	// replace: an edit made from here on is not renamed over (soak
	// seed 951: a file written on a device that had just joined, while
	// the initial sync wrote the same path, was lost).
	p.ExpectTarget(fi)
	// From here until the state is recorded, scans leave rel to this
	// Apply, so the database writes below run without the folder lock
	// (they were most of its hold time when many small files were
	// applied in parallel).
	f.applying[rel] = true
	return false, nil
}

// commitFile commits p as rel (commitRefetching) without f.mu, after the
// test hook. Its index transaction records rel's state (intent with what
// the commit wrote) and drops the intent and rel's partial records; it
// returns that state and the partial files those records named. A commit
// that found rel edited (store.ErrTargetChanged) keeps the edit
// (editedDuringApply); the partial file of a conflict copy whose content
// is unavailable goes.
func (f *Folder) commitFile(ctx context.Context, rel string, m blobs.Manifest, p *store.Partial, intent fileState,
	wantPerm fs.FileMode, mtime time.Time) (st fileState, partials []string, err error) {
	if f.commitHook != nil {
		f.commitHook(rel)
	}
	pfx := f.key(kPartial, []byte(rel), []byte{0})
	err = f.commitRefetching(ctx, rel, m, p, wantPerm, mtime, func(txn *badger.Txn, fi fs.FileInfo) error {
		st = intent
		st.Size, st.MTime, st.Inode, st.Perm = fi.Size(), fi.ModTime().UnixNano(), inode(fi), perm(fi)
		if err := txn.Set(f.key(kState, []byte(rel)), st.encode()); err != nil {
			return err
		}
		if err := txn.Delete(f.key(kIntent, []byte(rel))); err != nil {
			return err
		}
		partials = partials[:0]
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx})
		for it.Rewind(); it.Valid(); it.Next() {
			partials = append(partials, string(it.Item().Key()[len(pfx):]))
		}
		it.Close()
		for _, n := range partials {
			if err := txn.Delete(append(pfx[:len(pfx):len(pfx)], n...)); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrTargetChanged) {
		return st, nil, f.editedDuringApply(ctx, rel, p, err)
	}
	if err != nil && intent.Conflict && ErrorKind(err) == KindUnavailable {
		f.abortPartial(ctx, rel, p)
	}
	return st, partials, err
}

// dropOtherPartials removes the partial files (and the store's records of
// them) that a commit found recorded for its path, except keep.
func (f *Folder) dropOtherPartials(ctx context.Context, partials []string, keep string) {
	for _, n := range partials {
		if n != keep {
			if err := f.st.RemoveFile(ctx, n); err != nil {
				f.log.Warn("forget partial", "path", n, "err", err)
			}
			if err := os.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
				f.log.Warn("remove partial", "path", n, "err", err)
			}
		}
	}
}

// commitRefetches bounds how often commitRefetching fetches again the
// chunks a commit found missing.
const commitRefetches = 2

// commitRefetching commits p (CommitWith with extra). Chunks that were
// available locally when the fetch began may be gone by the commit: the
// other file that held them was truncated, rewritten or deleted meanwhile,
// and the store dropped their stale locations. Commit then fails with
// store.ErrMissing, and those chunks are fetched from peers and the commit
// tried again, a bounded number of times (soak seed 975: a device that
// had just joined truncated its copy of a file whose chunks a conflict
// copy was to reuse; the conflict copy failed for good, while the device
// said it was in sync). A fetch that fails is KindUnavailable.
func (f *Folder) commitRefetching(ctx context.Context, rel string, m blobs.Manifest, p *store.Partial,
	perm fs.FileMode, mtime time.Time, extra func(txn *badger.Txn, fi fs.FileInfo) error) error {
	_, err := p.CommitWith(ctx, perm, mtime, extra)
	for try := 0; try < commitRefetches && errors.Is(err, store.ErrMissing) && f.cfg.Fetcher != nil; try++ {
		f.log.Info("chunks held locally went before the commit: fetching them", "path", rel, "blob", m.Ref(), "err", err)
		ferr := f.cfg.Fetcher.FetchInto(ctx, m, p, func(pr blobs.Progress) { f.progress(rel, pr) })
		f.endTransfer(rel)
		if ferr != nil {
			return unavailable(fmt.Errorf("%w; fetching them again: %w", err, ferr))
		}
		_, err = p.CommitWith(ctx, perm, mtime, extra)
	}
	return err
}
