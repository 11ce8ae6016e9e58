// Package folder is the folder engine: it turns a directory into the items
// of a syncproto folder object (one item per path) and makes the directory
// match the items it is given back, writing every file atomically.
//
// # Items
//
// The item ID of a path is the path itself, relative to the root,
// slash-separated and NFC-normalised (a local name that is not NFC, or
// longer than syncproto.MaxIDLen bytes, is reported in Status.Skipped and
// not synced). The item's Body is a *syncproto.FileEntry: Path (= the ID),
// Mode (fs.ModeDir or fs.ModeSymlink for those kinds, plus the permission
// bits, among them the executable bits), ModTime (files only), Size, Blob
// and Symlink. Blob is the file's blobs.BlobRef in syncproto's text form,
// "mwblob1-" + hex(manifest hash[32] ‖ size u64 big-endian) (ItemBlobRef,
// BlobRefOf); that form is permanent. Directory mtimes are not synced.
// A rename or move is a delete of the old path and a create of the new one
// whose blob is already local: the receiver copies the chunks from the old
// file (still there, because Apply writes files before it applies
// deletions, or from the version history, indexed on demand), so nothing is
// transferred.
//
// # Scanning
//
// The folder's own state, kept in the badger DB passed in (under
// Config.Prefix, layout in state.go), records for every path what was last
// scanned or written there: kind, mode, size, mtime, inode, blob, author.
// A scan walks the tree with lstat only and hashes (store.AddFile, on
// GOMAXPROCS workers) just the files whose size, mtime, inode or mode
// changed, so a rescan of unchanged files reads none of them. A changed
// path whose content differs from its item becomes Feed.Update; a recorded
// path gone from disk becomes Feed.Delete. Because Apply records what it
// writes, its own writes are never reported back as local changes. Run adds
// an fsnotify watcher on every directory (new ones as they appear): events
// are debounced (Config.Debounce, 100 ms; at most 4× that after the first
// event) into an incremental scan of the paths concerned, and a full
// rescan every Config.RescanInterval catches what the watcher missed.
//
// # Applying remote items
//
// Apply writes a file through the store's resumable partial file
// (store.OpenPartial): chunks not available locally are fetched into it
// (Fetcher.FetchInto), Commit verifies every chunk, fsyncs and renames it
// over the target; then the item's mode and mtime are set. An intent
// record written before the rename lets a scan after a crash finish the
// metadata instead of reporting the file as a local change. A crash at any
// moment leaves the old or the new content at the path, never a mix; a
// transfer resumes from the partial file without fetching verified chunks
// again.
//
// Temporary files: store.OpenPartial does not let the caller choose where
// the partial file goes; it is a hidden ".meshwork-<blob>-<target>.partial"
// beside its target, on the same filesystem so the final rename is atomic.
// It exists only while a transfer is unfinished (and across a crash, to
// resume); Apply removes partials it no longer needs, and the first scan
// after Open removes partials of no recorded transfer and this package's
// own ".meshwork-tmp-*" files (symlinks and restores are created under
// such names and renamed into place). The scanner and watcher never report
// ".meshwork-*" names, and remote items may not use them. So once a sync
// has completed the user's tree holds no temporary file.
//
// Replaced and deleted files are kept, not unlinked: before a file is
// replaced it is hard-linked, and when deleted it is renamed, into
// ROOT/.meshwork/versions/<path>/<unix-nanos>-<device> (no data copied).
// History lists them (N = 1 is the most recent), Restore copies one back
// atomically as a new local change, and versions older than
// Config.Retention (default 30 days) are deleted by Run.
//
// # Safety
//
// A remote item is refused, with an error wrapping ErrUnsafePath that
// names the path, when its path is empty, absolute, not NFC, contains "."
// or ".." components, NUL, a backslash or control characters, lies in
// .meshwork/, uses the temporary-file prefix, differs from its item ID, or
// when a parent on disk is a symlink or not a directory (checked with
// Lstat on every component, creating missing ones one by one). A symlink
// item whose target is absolute or leaves the folder is refused; symlinks
// are created as links and never followed. Writes go through an os.Root of
// the folder, which cannot leave it. On a case-insensitive filesystem
// (detected at Open, or Config.FoldCase) a name that differs only in case
// from an existing different name is refused with ErrCaseCollision. Only
// the store's partial files are opened by plain path (package store takes
// paths); their parents are re-checked right before the rename.
//
// .meshignore at the root holds gitignore patterns
// (github.com/sabhiram/go-gitignore): ignored paths are neither scanned nor
// written; .meshwork/ is always ignored. .meshignore itself syncs.
//
// # Conflicts
//
// For an item with conflicts (syncproto Merge keeps the losing versions in
// Sync.Conflicts), the winner keeps the name and each losing file version
// is written beside it as NAME.conflict-<device>-<YYYYMMDD-HHMMSS>.EXT,
// where device is the first seven characters of the loser's topmost `by`
// after the common "12D3KooW" peer-ID prefix and the date is its topmost
// `when` in UTC: every device picks the same name. Conflict copies are not
// items; an edited copy becomes one. When the conflict is resolved,
// unedited copies move into the version history.
//
// A local edit is an update of the version it was made to: each state
// record keeps the topmost history record of the item version on disk
// (fileState.Seq and By), and the scan reports an edit with UpdateFrom
// that version. An edit found after a remote change to the same path was
// merged into the Feed but before Apply wrote it (a file edited offline,
// found by the scan on restart after the peers' changes arrived) is thus a
// conflict with that change, not a silent successor of it. A local touch
// (same content) or delete of such a path gives way to the remote change,
// and a local edit wins over a remote delete, as in Syncthing.
//
// # Errors
//
// A path that Apply fails to write is kept with its failure (applyerr.go):
// the time, the path, a short kind (ErrorKind: KindDiskFull for ENOSPC,
// KindQuota, KindPermission for EACCES/EPERM, KindReadOnly, KindIO,
// KindTooManyFiles, KindNameTooLong, KindBlocked for a refused item,
// KindOther) and the error text. Status.Error and LastError return the most
// recent one with the number of paths failing; Config.OnError hears when
// the first path fails and when the last one is written (an Apply run that
// includes a path and does not fail it again clears it). Content no peer
// can provide (KindUnavailable) is not a failure of the folder: it is not
// kept, but it keeps an earlier failure of the path. A failed write never
// reaches the path (the partial file is renamed only after Commit verified
// it), and a full disk is retried like any failure: the folder completes
// once space is freed.
//
// # Modes
//
// Config.Mode (mode.go): ModeFull (default); ModeMetadata, where Apply
// writes only paths present here or being fetched (Fetch), Evict removes a
// file's local copy and its recorded state without reporting a deletion,
// and Status.InSync counts only what is here; ModeSendOnly, where Apply
// writes nothing; ModeReceiveOnly, where a scan reports nothing to the Feed.
// A new mode is a constant and a case of ParseMode in mode.go, what Apply
// (apply.go, applyfile.go) and the scan (scan.go) do differently for it,
// and the --mode help of 'mesh folder join' (node/cli/folder.go).
//
// # Limits
//
// Directory mtimes, owners,
// extended attributes and special files are not synced. A directory
// deleted remotely that still holds non-item files (ignored or new) is
// kept.
package folder
