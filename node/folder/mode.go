package folder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/meshwork/meshwork/syncproto"
)

// Mode is how a folder syncs on this device (Config.Mode).
type Mode string

// Folder modes, as Syncthing's folder types plus on-demand content.
const (
	// ModeFull: every item's content is kept here (the default).
	ModeFull Mode = "full"
	// ModeMetadata: every item (names, sizes, history) is in the Feed, but
	// content is written here only for paths fetched with Fetch (and kept
	// up to date while present); Evict drops it again. Status.InSync counts
	// only the paths present here.
	ModeMetadata Mode = "metadata"
	// ModeSendOnly: local changes are reported to the Feed; remote items
	// are never applied here (Status.InSync is 1: nothing is to be received).
	ModeSendOnly Mode = "send-only"
	// ModeReceiveOnly: remote items are applied; local changes are never
	// reported to the Feed (they stay here, and a remote change to the same
	// path overwrites them, keeping the local version in the history).
	ModeReceiveOnly Mode = "receive-only"
)

// ParseMode parses a mode name; "" is ModeFull.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return ModeFull, nil
	case ModeFull, ModeMetadata, ModeSendOnly, ModeReceiveOnly:
		return m, nil
	}
	return "", fmt.Errorf("folder mode %q: want full, metadata, send-only or receive-only", s)
}

// ErrNotOnDemand: Fetch or Evict on a folder not in ModeMetadata.
var ErrNotOnDemand = errors.New("the folder is not in metadata mode (join it with --mode metadata)")

func (f *Folder) mode() Mode {
	if f.cfg.Mode == "" {
		return ModeFull
	}
	return f.cfg.Mode
}

// filterApply returns the items Apply may write in this mode. f.applyMu is
// held.
func (f *Folder) filterApply(items []syncproto.Item) []syncproto.Item {
	switch f.mode() {
	case ModeSendOnly:
		return nil
	case ModeMetadata:
		f.mu.Lock()
		defer f.mu.Unlock()
		var out []syncproto.Item
		for _, it := range items {
			fe, ok := it.Body.(*syncproto.FileEntry)
			if !ok || fe == nil {
				continue
			}
			if f.states[fe.Path] != nil || f.fetching[fe.Path] {
				out = append(out, it)
			}
		}
		return out
	}
	return items
}

// Fetch writes the content of the file item at rel here (metadata mode);
// from then on the path is kept up to date like in a full folder.
func (f *Folder) Fetch(ctx context.Context, rel string) error {
	if f.mode() != ModeMetadata {
		return fmt.Errorf("fetch %q: %w", rel, ErrNotOnDemand)
	}
	it, ok := f.feed.Item(syncproto.ItemID(rel))
	fe, isFile := it.Body.(*syncproto.FileEntry)
	if !ok || it.Sync.Deleted || !isFile || fe == nil {
		return fmt.Errorf("fetch %q: no such file in the folder", rel)
	}
	if fe.Mode.IsDir() {
		return fmt.Errorf("fetch %q: a directory: fetch the files in it", rel)
	}
	f.mu.Lock()
	f.fetching[rel] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.fetching, rel)
		f.mu.Unlock()
	}()
	if err := f.Apply(ctx, []syncproto.Item{it}); err != nil {
		return fmt.Errorf("fetch %q: %w", rel, err)
	}
	return nil
}

// Evict removes the local copy of the file at rel (metadata mode) without
// reporting a deletion: the item, its name and history stay in the Feed.
func (f *Folder) Evict(ctx context.Context, rel string) error {
	if f.mode() != ModeMetadata {
		return fmt.Errorf("evict %q: %w", rel, ErrNotOnDemand)
	}
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.states[rel]
	if st == nil {
		return fmt.Errorf("evict %q: its content is not here", rel)
	}
	if st.Kind != kindFile {
		return fmt.Errorf("evict %q: not a file", rel)
	}
	if it, ok := f.feed.Item(syncproto.ItemID(rel)); !ok || it.Sync.Deleted {
		return fmt.Errorf("evict %q: not an item of the folder (a local file not synced yet?)", rel)
	}
	if err := f.rootFS.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("evict %q: %w", rel, err)
	}
	if err := f.setState(rel, nil); err != nil {
		return fmt.Errorf("evict %q: %w", rel, err)
	}
	if err := f.st.RemoveFile(ctx, f.abs(rel)); err != nil {
		return fmt.Errorf("evict %q: %w", rel, err)
	}
	return nil
}

// Present reports whether the file at rel has content here.
func (f *Folder) Present(rel string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.states[rel] != nil
}
