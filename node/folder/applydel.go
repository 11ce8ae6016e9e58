package folder

// Apply's deletions and conflict copies.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/syncproto"
)

func (f *Folder) applyDelete(ctx context.Context, it syncproto.Item, fe *syncproto.FileEntry) error {
	rel := fe.Path
	if f.ign.ignored(rel, fe.Mode.IsDir()) {
		return nil
	}
	if f.superseded(it) { // written again since: that version, not this deletion
		f.reapplyCurrent(rel)
		return nil
	}
	fail := func(err error) error { return fmt.Errorf("apply delete %q: %w", rel, err) }
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgetPartials(ctx, rel, "")
	if err := f.checkParents(rel, false); err != nil {
		f.refused(rel, err)
		return fail(err)
	}
	fi, err := f.settleLocked(ctx, rel)
	if err != nil {
		return fail(err)
	}
	if fi == nil {
		if err := f.setState(rel, nil); err != nil {
			return err
		}
		// Gone already (its content never came, or the user removed it):
		// its deleted parents, kept while it was in them or created for
		// it, go now that they are empty (soak seed 1101: a file written
		// under a directory deleted remotely, an edit that won over the
		// delete, was parked for its content and then deleted; the
		// directories created for it stayed on five devices).
		f.pruneDeletedParentsLocked(rel)
		return nil
	}
	if st := f.states[rel]; st != nil && st.Conflict {
		return nil // a conflict copy, not this item
	}
	if fi.IsDir() {
		f.removeTemps(ctx, rel)
		if err := f.rootFS.Remove(filepath.FromSlash(rel)); err != nil {
			// Not empty: files here that are not items (ignored, or
			// new and not yet scanned). Keep the directory.
			f.log.Info("directory deleted remotely kept: not empty", "path", rel)
			return nil
		}
		if err := f.setState(rel, nil); err != nil {
			return err
		}
		f.pruneDeletedParentsLocked(rel)
		return nil
	}
	if err := f.clearLocked(ctx, rel, fi); err != nil {
		return err
	}
	// A parent directory whose deletion was kept while this file was in
	// it goes now that it is empty (chaos soak seed 221: an empty
	// directory stayed on one device, deleted in every replica).
	f.pruneDeletedParentsLocked(rel)
	return nil
}

// hasCopy reports whether the losing version c gets a conflict copy: a
// file's content (a deleted version, a directory or a link gets none).
func hasCopy(c syncproto.Item) bool {
	fe, ok := c.Body.(*syncproto.FileEntry)
	return !c.Sync.Deleted && ok && fe != nil && fe.Mode.Type() == 0
}

// applyConflict writes the losing version c of the item at rel beside it.
func (f *Folder) applyConflict(ctx context.Context, rel string, c syncproto.Item) error {
	if !hasCopy(c) {
		return nil
	}
	fe := c.Body.(*syncproto.FileEntry)
	name := conflictName(rel, c)
	if err := checkRel(name); err != nil {
		return fmt.Errorf("conflict copy of %q: %w", rel, err)
	}
	if f.ign.ignored(name, false) {
		return nil
	}
	f.mu.Lock()
	st := f.states[name]
	f.mu.Unlock()
	if st != nil && !st.Conflict {
		return nil // the user's own file (an edited copy): leave it
	}
	cfe := *fe
	cfe.Path = name
	return f.applyFile(ctx, name, &cfe, c.Sync.Top(), true)
}

// dropResolvedConflicts removes unedited conflict copies whose conflict is
// gone (resolved on some device), keeping them in the version history.
func (f *Folder) dropResolvedConflicts(ctx context.Context) error {
	f.mu.Lock()
	any := false
	for _, st := range f.states {
		if st.Conflict {
			any = true
			break
		}
	}
	f.mu.Unlock()
	if !any {
		return nil
	}
	want := make(map[string]bool)
	for _, it := range f.feed.Items() {
		fe, ok := it.Body.(*syncproto.FileEntry)
		if !ok || it.Sync.Deleted {
			continue
		}
		for _, c := range it.Sync.Conflicts {
			// A deleted losing version has no copy, and its name may be
			// that of an earlier version of the same device in the same
			// second, whose copy must go (soak seed 954: a device's
			// version lost, it then deleted the file while a third device
			// edited it; the deletion, now the conflict, kept the earlier
			// version's copy on two devices under its name).
			if hasCopy(c) {
				want[conflictName(fe.Path, c)] = true
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for rel, st := range f.states {
		if !st.Conflict || want[rel] {
			continue
		}
		fi, err := f.rootFS.Lstat(filepath.FromSlash(rel))
		if err != nil || !statMatches(st, fi) {
			continue // edited: the scanner makes it an item
		}
		if err := f.keepVersionLocked(ctx, rel, true); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := f.setState(rel, nil); err != nil {
			errs = append(errs, err)
		}
		f.pruneDeletedParentsLocked(rel)
	}
	return errors.Join(errs...)
}

func (f *Folder) progress(rel string, pr blobs.Progress) {
	f.tmu.Lock()
	f.transfers[rel] = pr
	f.tmu.Unlock()
}

func (f *Folder) endTransfer(rel string) {
	f.tmu.Lock()
	delete(f.transfers, rel)
	f.tmu.Unlock()
}

// DropResolvedConflicts removes the unedited conflict copies whose
// conflict is gone, keeping them in the version history; call it after
// resolving a conflict locally.
func (f *Folder) DropResolvedConflicts(ctx context.Context) error {
	return f.dropResolvedConflicts(ctx)
}
