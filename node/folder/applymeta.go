package folder

// Apply's bookkeeping: whether a version is still current, an edit made
// during a commit, metadata fixes, intents and partial files.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshwork/meshwork/blobs/store"
	"github.com/meshwork/meshwork/syncproto"
)

// currentLocked reports whether by (the topmost history record of the
// version being applied) is still the current version of item rel. An
// apply run works from the items as they were when it began; a version
// merged or indexed since (a local chmod found by a scan while the run
// fetched other files) must not be undone by writing the older one (soak
// seed 991: a device's own chmod was reverted on it, while every replica
// had it). Callers hold f.mu.
func (f *Folder) currentLocked(rel string, by syncproto.History) bool {
	cur, ok := f.feed.Item(syncproto.ItemID(rel))
	return ok && !cur.Sync.Deleted && cur.Sync.Top() == by
}

// editedDuringApply handles a commit that found rel edited after Apply
// checked it (store.ErrTargetChanged): nothing replaced the edit, and the
// scan indexes it now (the watcher's scan may have skipped rel while this
// Apply held it), so the next Apply writes the remote version beside it as
// a conflict, or after it. The intent and the partial file of this Apply go.
func (f *Folder) editedDuringApply(ctx context.Context, rel string, p *store.Partial, cause error) error {
	f.mu.Lock()
	delete(f.applying, rel)
	_, serr := f.scanLocked(ctx, []string{rel})
	f.mu.Unlock()
	f.abortPartial(ctx, rel, p) // its intent and its partial file go: no later run may come to drop them
	f.log.Info("local edit during apply kept", "path", rel, "err", cause)
	return errors.Join(fmt.Errorf("path %q: %w", rel, ErrLocalChange), cause, serr)
}

// noteDirCreated records a parent directory Apply created, so the scanner
// does not report it. Callers hold f.mu.
func (f *Folder) noteDirCreated(rel string, fi fs.FileInfo) {
	if err := f.setState(rel, &fileState{Kind: kindDir, Perm: perm(fi)}); err != nil {
		f.log.Warn("record directory", "path", rel, "err", err)
	}
}

// setMetaLocked gives the file at rel the mode and mtime of its item and
// records its state. The file must still be as its state records (the
// caller checked it, but the user does not take the folder's lock): a
// file edited since, or while its metadata is set, is left to the scan
// (ErrLocalChange) instead of being recorded with its new size and the
// old content's blob, which hid the edit from every later scan (chaos soak
// seed 217: an append on a device never left it). Callers hold f.mu.
func (f *Folder) setMetaLocked(rel string, perm fs.FileMode, mtime time.Time, by syncproto.History, conflict bool) error {
	st := *f.states[rel]
	name := filepath.FromSlash(rel)
	pre, err := f.rootFS.Lstat(name)
	if err != nil {
		return err
	}
	if !statMatches(&st, pre) {
		return fmt.Errorf("path %q: %w", rel, ErrLocalChange)
	}
	if st.Perm != perm {
		if err := f.rootFS.Chmod(name, perm); err != nil {
			return err
		}
	}
	if st.MTime != mtime.UnixNano() {
		if err := f.rootFS.Chtimes(name, time.Time{}, mtime); err != nil {
			return err
		}
	}
	fi, err := f.rootFS.Lstat(name)
	if err != nil {
		return err
	}
	wantMTime := pre.ModTime()
	if st.MTime != mtime.UnixNano() {
		wantMTime = mtime
	}
	if fi.Size() != pre.Size() || inode(fi) != inode(pre) || !fi.ModTime().Equal(wantMTime) {
		return fmt.Errorf("path %q: changed while its metadata was set: %w", rel, ErrLocalChange)
	}
	st.Perm, st.Size, st.MTime, st.Inode = fi.Mode().Perm(), fi.Size(), fi.ModTime().UnixNano(), inode(fi)
	st.setVersion(by)
	st.Conflict = conflict
	return f.setState(rel, &st)
}

// intent returns the recorded Apply in progress at rel.
func (f *Folder) intent(rel string) (fileState, bool) {
	v, ok, err := f.getRecord(f.key(kIntent, []byte(rel)))
	if err != nil || !ok {
		return fileState{}, false
	}
	st, err := decodeState(v)
	return st, err == nil
}

// finishIntent gives the freshly renamed file at rel its mode and mtime and
// records its state in states; the intent is then dropped. Callers hold f.mu.
func (f *Folder) finishIntent(rel string, in *fileState, states map[string]*fileState) error {
	st, err := f.intentDone(rel, in)
	if err != nil {
		return err
	}
	if err := f.setState(rel, st); err != nil {
		return err
	}
	states[rel] = st
	return f.deleteRecord(f.key(kIntent, []byte(rel)))
}

// intentDone gives the file at rel the intent's mode and mtime and returns
// its state as it now is on disk (not recorded yet).
func (f *Folder) intentDone(rel string, in *fileState) (*fileState, error) {
	name := filepath.FromSlash(rel)
	if err := f.rootFS.Chmod(name, in.Perm); err != nil {
		return nil, err
	}
	if err := f.rootFS.Chtimes(name, time.Time{}, time.Unix(0, in.MTime)); err != nil {
		return nil, err
	}
	fi, err := f.rootFS.Lstat(name)
	if err != nil {
		return nil, err
	}
	st := *in
	st.Size, st.MTime, st.Inode, st.Perm = fi.Size(), fi.ModTime().UnixNano(), inode(fi), perm(fi)
	return &st, nil
}

// recordedPartials returns the absolute names of the partial files this
// folder opened and has not completed.
func (f *Folder) recordedPartials() map[string]bool {
	out := make(map[string]bool)
	err := f.scanKeys(f.key(kPartial), func(k, _ []byte) error {
		if i := bytes.IndexByte(k, 0); i >= 0 {
			out[string(k[i+1:])] = true
		}
		return nil
	})
	if err != nil {
		f.log.Warn("list partial files", "err", err)
	}
	return out
}

// forgetPartials deletes the partial files recorded for rel except keep
// (absolute), and their records.
func (f *Folder) forgetPartials(ctx context.Context, rel, keep string) {
	pfx := f.key(kPartial, []byte(rel), []byte{0})
	var names []string
	_ = f.scanKeys(pfx, func(k, _ []byte) error {
		names = append(names, string(k))
		return nil
	})
	f.dropOtherPartials(ctx, names, keep)
	for _, n := range names {
		_ = f.deleteRecord(append(pfx[:len(pfx):len(pfx)], n...))
	}
}

// removeTemps removes the temporary files in directory rel, so that an
// otherwise empty directory can be removed.
func (f *Folder) removeTemps(ctx context.Context, rel string) {
	ents, err := os.ReadDir(f.abs(rel))
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) && e.Type().IsRegular() {
			child := path.Join(rel, e.Name())
			_ = f.st.RemoveFile(ctx, f.abs(child))
			_ = os.Remove(f.abs(child))
		}
	}
}
