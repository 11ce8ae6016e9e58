package folder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/store"
	"github.com/meshwork/meshwork/blobs/transfer"
	"github.com/meshwork/meshwork/syncproto"
)

// Sentinel errors; the wrapping error names the path at fault.
var (
	// ErrUnsafePath reports a path or symlink target that would leave the
	// folder, touch its internal directory, or is otherwise refused.
	ErrUnsafePath = errors.New("unsafe path refused")
	// ErrCaseCollision reports a name that differs only in case from an
	// existing different name on a case-insensitive filesystem.
	ErrCaseCollision = errors.New("name collides case-insensitively")
	// ErrNoVersion reports an unknown version in History or Restore.
	ErrNoVersion = errors.New("no such version")
	// ErrLocalChange reports a remote change not applied because the file
	// changed locally since the last scan; the scan reports the local
	// change, which supersedes the remote one.
	ErrLocalChange = errors.New("file changed locally")
	// ErrClosed reports use of a closed Folder.
	ErrClosed = errors.New("folder closed")
	// ErrMalformedItem reports a file item that cannot be written as it
	// is (its size is not its blob's, its blob reference does not parse):
	// refused, like an unsafe path, until a new version of it comes.
	ErrMalformedItem = errors.New("malformed file item")
)

// errChangedWhileHashed: a scan found a file changed while it hashed it.
var errChangedWhileHashed = errors.New("changed while hashed")

// Feed is what the folder needs from its synced object. *syncproto.Object
// implements it.
type Feed interface {
	Item(id syncproto.ItemID) (syncproto.Item, bool)
	Items() []syncproto.Item
	// UpdateFrom is a local edit that started from the item version whose
	// topmost record is base (zero: from nothing); see
	// syncproto.Object.UpdateFrom.
	UpdateFrom(id syncproto.ItemID, base syncproto.History, c syncproto.Content) (syncproto.Item, error)
	Delete(id syncproto.ItemID) (syncproto.Item, error)
}

// Batcher is an optional ability of a Feed: Batch runs fn with a Feed whose
// changes are persisted and announced together when fn returns (the
// daemon's sync engine saves a whole replica per change, so a scan of many
// files must not change it file by file). fn's Feed is valid only during fn.
type Batcher interface {
	Batch(fn func(Feed) error) error
}

// Fetcher gets blobs from peers; the daemon implements it with
// transfer.Service and the object's online members.
type Fetcher interface {
	// FetchManifest returns the manifest of ref, verified against it.
	FetchManifest(ctx context.Context, ref blobs.BlobRef) (blobs.Manifest, error)
	// FetchInto writes the chunks of m that the store does not have into
	// sink (a *store.Partial), as transfer.Service.FetchInto does.
	FetchInto(ctx context.Context, m blobs.Manifest, sink transfer.Sink, progress func(blobs.Progress)) error
}

// ManifestBatcher is a Fetcher that can also fetch many manifests at once
// (transfer.Service.FetchManifests); Apply then fetches the manifests of a
// batch of files in a few round trips instead of one per file.
type ManifestBatcher interface {
	FetchManifests(ctx context.Context, refs []blobs.BlobRef) (map[blobs.BlobRef]blobs.Manifest, error)
}

// Config is what a Folder needs.
type Config struct {
	Root  string       // the synced directory (created if missing)
	Name  string       // for logs
	Store *store.Store // the device's chunk index
	// DB and Prefix hold the folder's own state (scan cache, version
	// index); DB stays owned by the caller and must be Store's database (a
	// received file's state commits in the store's transaction). Prefix
	// must be distinct per folder and from the store's.
	DB      *badger.DB
	Prefix  []byte
	Feed    Feed
	Fetcher Fetcher            // nil: only blobs available locally are written
	Self    syncproto.DeviceID // this device, author of local changes
	Logger  *slog.Logger       // nil discards
	Clock   func() time.Time   // nil: time.Now
	// Retention is how long replaced and deleted versions are kept
	// (default 30 days; negative keeps none).
	Retention time.Duration
	// RescanInterval is the period of full rescans (default 1 hour).
	RescanInterval time.Duration
	// Debounce is how long the watcher waits for more events before an
	// incremental scan (default 100 ms).
	Debounce time.Duration
	// FoldCase refuses names that differ only in case from an existing
	// name even on a case-sensitive filesystem (a case-insensitive one is
	// detected).
	FoldCase bool
	// Mode is how the folder syncs here (mode.go); "" is ModeFull.
	Mode Mode
	// OnError, if set, is called when the folder's apply error appears (e
	// is LastError) and when it clears (e nil): once each, not per failing
	// file. It runs on the goroutine of Apply, which waits for it.
	OnError func(e *ApplyError)
}

// DefaultRetention is how long kept versions live by default.
const DefaultRetention = 30 * 24 * time.Hour

// Folder syncs one directory with a Feed. It is safe for concurrent use.
type Folder struct {
	cfg      Config
	root     string
	rootFS   *os.Root
	st       *store.Store
	db       *badger.DB
	prefix   []byte
	feed     Feed
	log      *slog.Logger
	now      func() time.Time
	foldCase bool
	ign      *ignorer

	applyMu sync.Mutex // one Apply or Restore at a time
	// partialMu is held for reading while Apply creates and records a
	// partial file (the store creates the file before the record), and
	// for writing while a scan removes the partial files no record names
	// (dropMovedPartials): so it never removes one being opened.
	partialMu sync.RWMutex

	mu       sync.Mutex // the tree and the states: scans and Apply's writes
	states   map[string]*fileState
	applying map[string]bool // files an Apply is committing: scans leave them alone
	// reapply holds paths whose item Apply must write again: local changes
	// a scan found concurrent with remote ones (conflicts now), and local
	// touches and deletes the remote change wins over (under mu).
	reapply map[string]bool
	scanned bool // an initial scan has run
	// Indexing state (indexing.go), read without mu: scans running or
	// waiting for mu, watcher events numbered as sent (evSent) and the
	// number up to which scans have covered them (evCovered), and whether
	// a full scan has completed.
	scans      atomic.Int32
	evSent     atomic.Uint64
	evCovered  atomic.Uint64
	firstReady atomic.Bool
	closed     bool
	hashHook   func(rel string) // tests: called before a file is hashed
	commitHook func(rel string) // tests: called after Apply's last check of rel, before its commit

	tmu       sync.Mutex
	transfers map[string]blobs.Progress
	skipped   map[string]string   // paths not synced, and why
	failing   map[string]*failure // paths Apply failed to write, and why (applyerr.go)
	unavail   map[string]*unavail // items whose content no peer had (unavail.go)
	applyGen  uint64              // counts apply runs
	hadErr    bool                // failing was not empty after the last run

	pmu        sync.Mutex
	prefetched map[blobs.BlobRef]blobs.Manifest // by Apply's batch fetch, until used
	fetching   map[string]bool                  // metadata mode: paths being fetched (under mu)
}

// Open opens the folder at cfg.Root, creating it and its internal
// directory if missing, and loads its state. Leftover temporary files of
// this package are removed; the store's partial files are kept so that
// transfers resume.
func Open(cfg Config) (*Folder, error) {
	if cfg.Store == nil || cfg.DB == nil || cfg.Feed == nil || cfg.Root == "" {
		return nil, errors.New("open folder: Root, Store, DB and Feed are required")
	}
	if cfg.Store.DB() != cfg.DB {
		// Apply records a file's state in the store's transaction.
		return nil, errors.New("open folder: DB must be the database Store keeps its index in")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("open folder %s: %w", cfg.Root, err)
	}
	if err := os.MkdirAll(filepath.Join(root, internalDir, "versions"), 0o755); err != nil {
		return nil, fmt.Errorf("open folder %s: %w", root, err)
	}
	if root, err = filepath.EvalSymlinks(root); err != nil {
		return nil, fmt.Errorf("open folder %s: %w", cfg.Root, err)
	}
	rfs, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("open folder %s: %w", root, err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.RescanInterval <= 0 {
		cfg.RescanInterval = time.Hour
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = 100 * time.Millisecond
	}
	f := &Folder{
		cfg: cfg, root: root, rootFS: rfs, st: cfg.Store, db: cfg.DB,
		prefix: append([]byte(nil), cfg.Prefix...), feed: cfg.Feed,
		log: cfg.Logger.With("folder", cfg.Name), now: cfg.Clock,
		ign:       &ignorer{path: filepath.Join(root, IgnoreFile)},
		transfers: make(map[string]blobs.Progress),
		skipped:   make(map[string]string),
		failing:   make(map[string]*failure),
		unavail:   make(map[string]*unavail),
		fetching:  make(map[string]bool),
		applying:  make(map[string]bool),
		reapply:   make(map[string]bool),
	}
	if _, err := ParseMode(string(cfg.Mode)); err != nil {
		rfs.Close()
		return nil, fmt.Errorf("open folder %s: %w", root, err)
	}
	f.foldCase = cfg.FoldCase || probeFoldCase(filepath.Join(root, internalDir))
	if f.states, err = f.loadStates(); err != nil {
		rfs.Close()
		return nil, fmt.Errorf("open folder %s: %w", root, err)
	}
	if _, err := f.ign.reload(); err != nil {
		f.log.Warn("read ignore file", "err", err)
	}
	return f, nil
}

// Root returns the folder's absolute root directory.
func (f *Folder) Root() string { return f.root }

// Close releases the folder. It does not close the DB or the store. Run
// must have returned. Safe to call more than once.
func (f *Folder) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	return f.rootFS.Close()
}

// Transfer is a file being received.
type Transfer struct {
	Path  string
	Done  int64
	Total int64
}

// Status is a snapshot of the folder's sync state.
type Status struct {
	Items        int     // live items (files, directories, symlinks)
	Bytes        int64   // total size of the live file items
	LocalBytes   int64   // of which present here with the item's content
	InSync       float64 // LocalBytes/Bytes (by items when Bytes is 0)
	NeedFiles    int     // regular files this copy must hold (not metadata-only, not send-only)
	SyncedFiles  int     // of which present here with the item's content
	NeedBytes    int64   // the total size of the items this copy must hold (LocalBytes counts what is here of it)
	Transferring []Transfer
	Conflicts    int               // items with unresolved conflicts
	Skipped      map[string]string // paths not synced here, and why
	Error        *ApplyError       // the last apply error while paths fail to be written; nil when none
}

// Status returns the folder's sync state.
func (f *Folder) Status() Status {
	var s Status
	items := f.feed.Items()
	f.tmu.Lock()
	refused := make(map[string]bool, len(f.skipped))
	for p := range f.skipped {
		refused[p] = true
	}
	f.tmu.Unlock()
	f.mu.Lock()
	var syncedItems, neededItems int
	var neededBytes int64
	onDemand, sendOnly := f.mode() == ModeMetadata, f.mode() == ModeSendOnly
	for _, it := range items {
		if len(it.Sync.Conflicts) > 0 {
			s.Conflicts++
		}
		fe, ok := it.Body.(*syncproto.FileEntry)
		if it.Sync.Deleted || !ok {
			continue
		}
		if refused[fe.Path] || refused[string(it.Sync.ID)] {
			continue // refused here (unsafe, colliding): not part of this copy
		}
		s.Items++
		s.Bytes += fe.Size
		st, present := f.states[fe.Path]
		if (onDemand && !present) || sendOnly {
			continue // metadata: only what is here must be in sync; send-only: nothing is received
		}
		neededItems++
		neededBytes += fe.Size
		regular := fe.Mode.IsRegular()
		if regular {
			s.NeedFiles++
		}
		if present && f.matches(st, fe) {
			s.LocalBytes += fe.Size
			syncedItems++
			if regular {
				s.SyncedFiles++
			}
		}
	}
	f.mu.Unlock()
	s.NeedBytes = neededBytes
	switch {
	case neededBytes > 0:
		s.InSync = float64(s.LocalBytes) / float64(neededBytes)
	case neededItems > 0:
		s.InSync = float64(syncedItems) / float64(neededItems)
	default:
		s.InSync = 1
	}
	f.tmu.Lock()
	for p, pr := range f.transfers {
		s.Transferring = append(s.Transferring, Transfer{Path: p, Done: pr.DoneBytes, Total: pr.TotalBytes})
	}
	if len(f.skipped) > 0 {
		s.Skipped = make(map[string]string, len(f.skipped))
		for k, v := range f.skipped {
			s.Skipped[k] = v
		}
	}
	s.Error = f.lastErrorLocked()
	f.tmu.Unlock()
	return s
}

// matches reports whether the recorded state st holds the content of fe.
func (f *Folder) matches(st *fileState, fe *syncproto.FileEntry) bool {
	switch {
	case fe.Mode.IsDir():
		return st.Kind == kindDir
	case fe.Mode&os.ModeSymlink != 0:
		return st.Kind == kindSymlink && st.Target == fe.Symlink
	}
	ref, err := BlobRefOf(fe.Blob)
	return err == nil && st.Kind == kindFile && !st.Conflict && st.Blob == ref
}

func (f *Folder) skip(rel, why string) {
	f.tmu.Lock()
	f.skipped[rel] = why
	f.tmu.Unlock()
}

func (f *Folder) unskip(rel string) {
	f.tmu.Lock()
	delete(f.skipped, rel)
	f.tmu.Unlock()
}
