package folder

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/meshwork/meshwork/syncproto"
)

// dropStalePartials removes the partial files of transfers that no item
// wants any more, and their records: a conflict copy whose conflict was
// resolved (or superseded) before its content could be fetched, or an
// older version of a path that has changed since to content that needed
// no transfer. Apply removes a path's other partials only when it commits
// that path again, so such a partial would otherwise stay visible in the
// user's tree for good (found by the chaos harness, seed 8). A partial of
// the version an item still wants is kept: its transfer resumes. Callers
// hold applyMu, so no Apply is opening a partial meanwhile.
func (f *Folder) dropStalePartials(ctx context.Context) {
	type rec struct{ rel, path string }
	var recs []rec
	_ = f.scanKeys(f.key(kPartial), func(k, _ []byte) error {
		if i := bytes.IndexByte(k, 0); i >= 0 {
			recs = append(recs, rec{string(k[:i]), string(k[i+1:])})
		}
		return nil
	})
	if len(recs) == 0 {
		return
	}
	// want[rel] starts the name of the partial file of the content rel
	// should hold (store.OpenPartialWith: ".meshwork-<blob hash[:8]>-").
	want := make(map[string]string)
	tag := func(r syncproto.BlobRef) string {
		ref, err := BlobRefOf(r)
		if err != nil || ref.IsZero() {
			return ""
		}
		return tmpPrefix + hex.EncodeToString(ref.Hash[:8]) + "-"
	}
	for _, it := range f.feed.Items() {
		fe, ok := it.Body.(*syncproto.FileEntry)
		if !ok || fe == nil || it.Sync.Deleted {
			continue
		}
		want[fe.Path] = tag(fe.Blob)
		for _, c := range it.Sync.Conflicts {
			if cfe, ok := c.Body.(*syncproto.FileEntry); ok && cfe != nil && !c.Sync.Deleted {
				want[conflictName(fe.Path, c)] = tag(cfe.Blob)
			}
		}
	}
	for _, r := range recs {
		if t := want[r.rel]; t != "" && strings.HasPrefix(filepath.Base(r.path), t) {
			continue
		}
		if err := f.st.RemoveFile(ctx, r.path); err != nil {
			f.log.Warn("forget stale partial", "path", r.path, "err", err)
		}
		if err := os.Remove(r.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			f.log.Warn("remove stale partial", "path", r.path, "err", err)
		}
		if err := f.deleteRecord(f.key(kPartial, []byte(r.rel), []byte{0}, []byte(r.path))); err != nil {
			f.log.Warn("forget stale partial record", "path", r.path, "err", err)
		}
		f.log.Debug("removed stale partial", "path", r.rel, "partial", r.path)
		f.mu.Lock()
		f.pruneDeletedParentsLocked(r.rel)
		f.mu.Unlock()
	}
}

// pruneDeletedParentsLocked removes the directories above rel that are
// deleted items and now empty: a directory deleted remotely is kept while
// it holds files that are not items (applyDelete), and a conflict copy or
// a partial file that goes afterwards (resolved, or no longer wanted) left
// it behind on this device alone for good (chaos harness, seed 9). Callers
// hold f.mu.
func (f *Folder) pruneDeletedParentsLocked(rel string) {
	for d := path.Dir(rel); d != "." && d != "/" && d != ""; d = path.Dir(d) {
		it, ok := f.feed.Item(syncproto.ItemID(d))
		if !ok || !it.Sync.Deleted {
			return
		}
		if err := f.rootFS.Remove(filepath.FromSlash(d)); err != nil {
			return // not empty, or already gone
		}
		if err := f.setState(d, nil); err != nil {
			f.log.Warn("forget removed directory", "path", d, "err", err)
		}
		f.log.Debug("removed directory deleted remotely, now empty", "path", d)
	}
}
