package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/node/folder"
	"github.com/meshwork/meshwork/node/internal/kv"
	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/exchange"
)

// Folders: a shared directory is a folder object (syncproto, type folder)
// defined in the catalog; each device that joined it keeps a local
// folder.Folder bound to its replica. Local config (which folders this
// device syncs, where) is kept in badger under node/folders/OBJECTID.

var prefixFolders = []byte("node/folders/")

type folderConf struct {
	ID   syncproto.ObjectID `json:"id"`
	Name string             `json:"name"`
	Path string             `json:"path"`
	Mode folder.Mode        `json:"mode,omitempty"` // "" is full (modes.go)
}

// localFolder is one folder this device syncs.
type localFolder struct {
	conf   folderConf
	f      *folder.Folder
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	pending map[syncproto.ItemID]bool // items changed by peers, not yet applied
	all     bool                      // apply every item (a member came online)
	kick    chan struct{}
	busy    bool // an Apply is running
	// parked are items whose content no online member had (the fetch ended
	// ErrUnavailable): retried with backoff (parkWait), when a member comes
	// online (memberOnline) and when a new version arrives (queue), but
	// not pending: they do not keep the folder busy.
	parked   map[syncproto.ItemID]bool
	parkWait time.Duration

	flushMu sync.Mutex // folder-wait scans, one at a time (insync.go)
	flushed time.Time  // start of the last completed one

	rate rateTracker // Progress.Rate (progress.go)
}

// queueAll asks for every item to be applied again (idempotent): content
// that could not be fetched while no member was online is fetched now.
func (lf *localFolder) queueAll() {
	lf.mu.Lock()
	lf.all = true
	lf.mu.Unlock()
	select {
	case lf.kick <- struct{}{}:
	default:
	}
}

func (lf *localFolder) queue(items []syncproto.Item) {
	lf.mu.Lock()
	for _, it := range items {
		lf.pending[it.Sync.ID] = true
	}
	lf.mu.Unlock()
	select {
	case lf.kick <- struct{}{}:
	default:
	}
}

// idle reports whether nothing received waits to be applied.
func (lf *localFolder) idle() bool {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	return len(lf.pending) == 0 && !lf.all && !lf.busy
}

// memberOnline re-drives folders that are not fully present here.
func (n *Node) memberOnline() {
	// Status takes the folder's lock, and a scan holding that lock asks
	// the folder set for the folder's name (folderNews): call into folders
	// only from a copy (list), never under the set's lock.
	for _, lf := range n.folders.list() {
		if lf.f.Status().InSync < 1 {
			lf.queueAll()
		} else if lf.hasParked() {
			lf.unpark(true) // it may have the content
		}
	}
}

// feedAdapter binds a folder to its replica in the engine: local changes go
// through the engine (persisted, then pushed at once).
type feedAdapter struct {
	n  *Node
	id syncproto.ObjectID
}

func (a feedAdapter) read(fn func(*syncproto.Object)) {
	_ = a.n.sync.View(a.id, func(o *syncproto.Object) error { fn(o); return nil })
}

func (a feedAdapter) Item(id syncproto.ItemID) (it syncproto.Item, ok bool) {
	a.read(func(o *syncproto.Object) { it, ok = o.Item(id) })
	return
}

func (a feedAdapter) Items() (items []syncproto.Item) {
	a.read(func(o *syncproto.Object) { items = o.Items() })
	return
}

func (a feedAdapter) UpdateFrom(id syncproto.ItemID, base syncproto.History, c syncproto.Content) (syncproto.Item, error) {
	it, err := a.n.sync.UpdateFrom(a.id, id, base, c)
	if err == nil {
		a.n.folderNews(a.id, []string{string(id)}, nil)
	}
	return it, err
}

func (a feedAdapter) Delete(id syncproto.ItemID) (syncproto.Item, error) {
	it, err := a.n.sync.Delete(a.id, id)
	if err == nil {
		a.n.folderNews(a.id, nil, []string{string(id)})
	}
	return it, err
}

// recordingFeed notes what a batch changes, for one news entry per batch.
type recordingFeed struct {
	*syncproto.Object
	changed, deleted []string
}

func (r *recordingFeed) UpdateFrom(id syncproto.ItemID, base syncproto.History, c syncproto.Content) (syncproto.Item, error) {
	it, err := r.Object.UpdateFrom(id, base, c)
	if err == nil {
		r.changed = append(r.changed, string(id))
	}
	return it, err
}

func (r *recordingFeed) Delete(id syncproto.ItemID) (syncproto.Item, error) {
	it, err := r.Object.Delete(id)
	if err == nil {
		r.deleted = append(r.deleted, string(id))
	}
	return it, err
}

func (a feedAdapter) Batch(fn func(folder.Feed) error) error {
	var rec *recordingFeed
	err := a.n.sync.Change(a.id, func(o *syncproto.Object) error {
		rec = &recordingFeed{Object: o}
		return fn(rec)
	})
	if rec != nil && err == nil {
		a.n.folderNews(a.id, rec.changed, rec.deleted)
	}
	return err
}

// folderNews writes one news entry for local changes of a folder.
func (n *Node) folderNews(id syncproto.ObjectID, changed, deleted []string) {
	if len(changed)+len(deleted) == 0 {
		return
	}
	name := string(id)
	if lf := n.folders.get(id); lf != nil {
		name = lf.conf.Name
	}
	me := n.deviceName(n.id)
	summary := func(verb string, paths []string) string {
		switch len(paths) {
		case 0:
			return ""
		case 1:
			return fmt.Sprintf("device %s %s %s in folder %s", me, verb, paths[0], name)
		default:
			return fmt.Sprintf("device %s %s %d files in folder %s (%s, …)", me, verb, len(paths), name, paths[0])
		}
	}
	if s := summary("changed", changed); s != "" {
		n.objs.news("changed", "", s)
	}
	if s := summary("deleted", deleted); s != "" {
		n.objs.news("deleted", "", s)
	}
}

// fetcher pulls a folder's blobs from the online members holding it (the
// blob service), else from a storage peer (the storage client); its
// methods are in storage_fetch.go.
type fetcher struct {
	n      *Node
	folder syncproto.ObjectID
}

// startFolder opens a folder and runs it and its apply loop until ctx ends
// or it is removed.
func (n *Node) startFolder(ctx context.Context, conf folderConf) error {
	if n.folders.get(conf.ID) != nil {
		return nil
	}
	f, err := folder.Open(folder.Config{
		Root:    conf.Path,
		Name:    conf.Name,
		Store:   n.blobStore,
		DB:      n.db,
		Prefix:  folderPrefix(conf.ID),
		Feed:    feedAdapter{n, conf.ID},
		Fetcher: fetcher{n, conf.ID},
		Self:    syncproto.DeviceID(n.id.String()),
		Logger:  n.log.With("folder", conf.Name),
		Mode:    conf.Mode,
		OnError: func(e *folder.ApplyError) { n.folderErrorNews(conf.Name, e) },
	})
	if err != nil {
		return fmt.Errorf("open folder %q: %w", conf.Name, err)
	}
	fctx, cancel := context.WithCancel(ctx)
	lf := &localFolder{conf: conf, f: f, cancel: cancel, done: make(chan struct{}),
		pending: map[syncproto.ItemID]bool{}, kick: make(chan struct{}, 1)}
	n.folders.add(lf, func() {
		defer close(lf.done)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.Run(fctx); err != nil && fctx.Err() == nil {
				n.log.Error("folder stopped", "folder", conf.Name, "err", err)
			}
		}()
		n.applyLoop(fctx, lf)
		wg.Wait()
		_ = f.Close()
	})
	n.log.Info("syncing folder", "folder", conf.Name, "path", conf.Path, "id", string(conf.ID))
	return nil
}

// applyLoop applies items received from peers, coalescing bursts.
func (n *Node) applyLoop(ctx context.Context, lf *localFolder) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lf.kick:
		case <-retry.C:
			lf.unpark(false)
			continue
		}
		lf.mu.Lock()
		ids, all := lf.pending, lf.all
		lf.pending, lf.all = map[syncproto.ItemID]bool{}, false
		lf.busy = true
		for id := range ids {
			delete(lf.parked, id) // a new version, or its retry
		}
		if all {
			clear(lf.parked)
		}
		lf.mu.Unlock()
		var items []syncproto.Item
		_ = n.sync.View(lf.conf.ID, func(o *syncproto.Object) error {
			if all {
				items = o.Items()
				return nil
			}
			for id := range ids {
				if it, ok := o.Item(id); ok {
					items = append(items, it)
				}
			}
			return nil
		})
		err := lf.f.Apply(ctx, items)
		switch {
		case ctx.Err() != nil:
		case err != nil && folder.OnlyRefused(err):
			// Refused as they are (soak seed 233: a malformed item from a
			// member was retried every 2 s on every device, which never
			// went idle): a new version of them comes through queue.
			n.log.Warn("remote changes refused", "folder", lf.conf.Name, "items", len(items), "err", err)
		case err != nil && folder.AwaitsNews(err):
			if wait := lf.park(items); wait > 0 {
				n.log.Info("content unavailable from every online member: parked", "folder", lf.conf.Name,
					"items", len(items), "retry_in", wait, "err", err)
				retry.Reset(wait)
			}
		case err == nil:
			lf.mu.Lock()
			if len(lf.parked) == 0 {
				lf.parkWait = 0
			}
			lf.mu.Unlock()
		case err != nil:
			n.log.Warn("apply remote changes", "folder", lf.conf.Name, "items", len(items), "err", err)
			lf.requeue(items)
			select { // retry once things may have changed (a peer came online)
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
				lf.queue(nil)
			}
		}
		lf.mu.Lock()
		lf.busy = false
		lf.mu.Unlock()
	}
}

// startJoinedFolders starts the folders of the local config not running yet.
func (n *Node) startJoinedFolders(ctx context.Context) {
	n.eachJoined(func(c folderConf) bool {
		if n.sync.Object(c.ID) == nil {
			return true // its replica appears once the catalog has it
		}
		if err := n.startFolder(ctx, c); err != nil {
			n.log.Warn("start folder", "folder", c.Name, "err", err)
		}
		return true
	})
}

// eachJoined calls do with each folder of the local config (joined or
// added on this device, running or not) until do returns false.
func (n *Node) eachJoined(do func(c folderConf) bool) {
	stop := errors.New("stop")
	_ = kv.Scan(n.db, prefixFolders, func(_, v []byte) error {
		var c folderConf
		if json.Unmarshal(v, &c) != nil {
			return nil
		}
		if !do(c) {
			return stop
		}
		return nil
	})
}

func (n *Node) saveFolderConf(c folderConf) error {
	b, _ := json.Marshal(c)
	return dbPut(n.db, append(append([]byte{}, prefixFolders...), c.ID...), b)
}

func cleanDir(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", err
	}
	return filepath.Clean(abs), nil
}

// AddFolder shares a directory as a new folder object.
func (n *Node) AddFolder(ctx context.Context, path, name string) (folderConf, error) {
	l := n.membership()
	if l == nil {
		return folderConf{}, errNoMesh
	}
	if err := n.refuseOnStorage("add folder"); err != nil {
		return folderConf{}, err
	}
	unlock := n.folders.lockAdds()
	defer unlock()
	if err := n.refuseOverlap("add folder", path); err != nil {
		return folderConf{}, err
	}
	abs, err := cleanDir(path)
	if err != nil {
		return folderConf{}, fmt.Errorf("add folder %q: %w", path, err)
	}
	if name == "" {
		name = filepath.Base(abs)
	}
	if _, err := syncproto.ParseItemID("folder/" + name); err != nil || strings.ContainsAny(name, "/\\") {
		return folderConf{}, fmt.Errorf("add folder: name %q: use letters, digits, dots, dashes", name)
	}
	if _, exists := n.catalog()[name]; exists {
		return folderConf{}, fmt.Errorf("add folder: the mesh already has a folder %q: join it with 'mesh folder join %s PATH' or pick another --name", name, name)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	def := folderDef{ID: syncproto.ObjectID("folder-" + hex.EncodeToString(rnd[:])), Name: name, Owner: syncproto.DeviceID(n.id.String()), Created: n.now().UTC()}
	obj, err := syncproto.NewObject(def.ID, syncproto.TypeFolder, folderRoles(l, def), n.sync.ObjectConfig())
	if err != nil {
		return folderConf{}, fmt.Errorf("add folder %q: %w", name, err)
	}
	if err := n.sync.Add(obj); err != nil {
		return folderConf{}, fmt.Errorf("add folder %q: %w", name, err)
	}
	if err := n.putFolderDef(def); err != nil {
		return folderConf{}, fmt.Errorf("add folder %q: %w", name, err)
	}
	conf := folderConf{ID: def.ID, Name: name, Path: abs}
	if err := n.saveFolderConf(conf); err != nil {
		return folderConf{}, err
	}
	n.objs.news("folder-added", "", fmt.Sprintf("device %s shared folder %s", n.deviceName(n.id), name))
	return conf, n.startFolder(n.runCtx, conf)
}

// JoinFolder materialises an existing folder of the mesh at path.
func (n *Node) JoinFolder(ctx context.Context, name, path string) (folderConf, error) {
	return n.JoinFolderMode(ctx, name, path, folder.ModeFull)
}

// JoinFolderMode is JoinFolder in a mode (folder.Mode; "" is full).
func (n *Node) JoinFolderMode(ctx context.Context, name, path string, mode folder.Mode) (folderConf, error) {
	l := n.membership()
	if l == nil {
		return folderConf{}, errNoMesh
	}
	if err := n.refuseOnStorage("join folder"); err != nil {
		return folderConf{}, err
	}
	def, ok := n.catalog()[name]
	if !ok {
		return folderConf{}, fmt.Errorf("join folder %q: no such folder in the mesh yet (see 'mesh folder list'; a new device learns the list once another member is online)", name)
	}
	unlock := n.folders.lockAdds()
	defer unlock()
	if lf := n.folders.get(def.ID); lf != nil {
		return folderConf{}, fmt.Errorf("join folder %q: this device already syncs it, at %s", name, lf.conf.Path)
	}
	if err := n.refuseOverlap(fmt.Sprintf("join folder %q", name), path); err != nil {
		return folderConf{}, err
	}
	abs, err := cleanDir(path)
	if err != nil {
		return folderConf{}, fmt.Errorf("join folder %q: %w", name, err)
	}
	if n.sync.Object(def.ID) == nil {
		obj, err := syncproto.NewObject(def.ID, syncproto.TypeFolder, folderRoles(l, def), n.sync.ObjectConfig())
		if err != nil {
			return folderConf{}, fmt.Errorf("join folder %q: %w", name, err)
		}
		if err := n.sync.Add(obj); err != nil && !errors.Is(err, exchange.ErrExists) {
			return folderConf{}, fmt.Errorf("join folder %q: %w", name, err)
		}
	}
	conf := folderConf{ID: def.ID, Name: name, Path: abs, Mode: mode}
	if err := n.saveFolderConf(conf); err != nil {
		return folderConf{}, err
	}
	if err := n.startFolder(n.runCtx, conf); err != nil {
		return folderConf{}, err
	}
	// Catch up with every online member, and the storage peers, in the
	// background: a round of a folder of 100,000 files outlasted the API
	// client's minute, and the join failed although it had happened. Until
	// those rounds complete the folder is not counted in sync; 'mesh wait'
	// runs its own rounds.
	for _, p := range n.onlineMembers() {
		n.rounds.resync(p)
	}
	n.st.kick()
	return conf, nil
}

// RemoveFolder stops syncing a folder here; its files stay. They leave
// the blob index, so that this device no longer serves their chunks (it
// served them only to the folder's readers), and so does the folder's own
// state: joining it again scans the files afresh.
func (n *Node) RemoveFolder(name string) error {
	lf := n.folders.take(func(lf *localFolder) bool { return lf.conf.Name == name })
	if lf == nil {
		return fmt.Errorf("remove folder %q: this device does not sync it (see 'mesh folder list')", name)
	}
	lf.cancel()
	<-lf.done
	if err := n.sync.Remove(lf.conf.ID); err != nil {
		n.log.Warn("remove replica", "folder", name, "err", err)
	}
	key := append(append([]byte{}, prefixFolders...), lf.conf.ID...)
	if err := n.db.Update(func(txn *badger.Txn) error { return txn.Delete(key) }); err != nil {
		return fmt.Errorf("remove folder %q: %w", name, err)
	}
	if _, err := n.blobStore.RemoveFilesUnder(context.Background(), lf.conf.Path); err != nil {
		return fmt.Errorf("remove folder %q: forget its files: %w", name, err)
	}
	if err := n.db.DropPrefix(folderPrefix(lf.conf.ID)); err != nil {
		return fmt.Errorf("remove folder %q: forget its state: %w", name, err)
	}
	return nil
}

// folderPrefix is where a folder keeps its own state (scan cache, version
// index) in the database.
func folderPrefix(id syncproto.ObjectID) []byte { return []byte("folder/" + string(id) + "/") }

// folderByName finds a local folder.
func (n *Node) folderByName(name string) *localFolder {
	return n.folders.find(func(lf *localFolder) bool { return lf.conf.Name == name })
}

// folderForPath finds the local folder containing path, and the relative path.
func (n *Node) folderForPath(path string) (*localFolder, string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, "", err
	}
	var rel string
	lf := n.folders.find(func(lf *localFolder) bool {
		r, err := filepath.Rel(lf.conf.Path, abs)
		if err == nil && r != "." && !strings.HasPrefix(r, "..") {
			rel = r
			return true
		}
		return false
	})
	if lf != nil {
		return lf, filepath.ToSlash(rel), nil
	}
	return nil, "", fmt.Errorf("%q is not inside a synced folder (see 'mesh folder list')", path)
}

// FolderInfo is one element of GET /v1/folders and of mesh status.
type FolderInfo struct {
	Name         string            `json:"name"`
	ID           string            `json:"id"`
	Path         *string           `json:"path"` // null: in the mesh, not synced here
	Role         string            `json:"role"`
	Items        int               `json:"items"`
	Bytes        int64             `json:"bytes"`
	LocalBytes   int64             `json:"local_bytes"`
	InSync       float64           `json:"in_sync"`           // 0..1; 1 only when in sync (insync.go)
	Behind       []string          `json:"behind,omitempty"`  // why in_sync is below 1
	Offline      []string          `json:"offline,omitempty"` // members of the folder not online: not waited for
	Transferring []folder.Transfer `json:"transferring"`
	Progress     *Progress         `json:"progress,omitempty"` // files, bytes, rate, ETA (progress.go); only if synced here
	Conflicts    int               `json:"conflicts"`
	// Conflict copies no online member had the content of (kept only where a device holds it: see API.md).
	UnavailableCopies []string          `json:"unavailable_copies,omitempty"`
	Skipped           map[string]string `json:"skipped,omitempty"`
	Storage           *StorageInfo      `json:"storage,omitempty"` // what a storage peer holds (storage.go)
	Mode              string            `json:"mode,omitempty"`    // full, metadata, send-only, receive-only (if synced here)
	Error             *FolderError      `json:"error"`             // the last apply error while changes fail to be written here; null when none
}

func (n *Node) folderInfos() []FolderInfo {
	out := []FolderInfo{}
	if n.membership() == nil {
		return out
	}
	for name, def := range n.catalog() {
		fi := FolderInfo{Name: name, ID: string(def.ID), Transferring: []folder.Transfer{}}
		if obj := n.sync.Object(def.ID); obj != nil {
			_ = n.sync.View(def.ID, func(o *syncproto.Object) error {
				fi.Role = o.Role(syncproto.DeviceID(n.id.String())).String()
				return nil
			})
		}
		if lf := n.folderByName(name); lf != nil {
			p := lf.conf.Path
			fi.Path = &p
			st := lf.f.Status()
			fi.Items, fi.Bytes, fi.LocalBytes, fi.InSync, fi.Conflicts, fi.Skipped = st.Items, st.Bytes, st.LocalBytes, st.InSync, st.Conflicts, st.Skipped
			fi.Error = folderError(st.Error)
			fi.UnavailableCopies = lf.f.Unavailable().Copies
			fi.InSync, fi.Behind, fi.Offline = n.viewOf(lf, st.InSync, len(st.Transferring)).verdict()
			if st.Transferring != nil {
				fi.Transferring = st.Transferring
			}
			pr := progressOf(st, &lf.rate, time.Now())
			fi.Progress = &pr
			fi.Storage = n.st.folderInfo(def.ID)
			fi.Mode = string(folder.ModeFull)
			if lf.conf.Mode != "" {
				fi.Mode = string(lf.conf.Mode)
			}
		}
		out = append(out, fi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// FetchManifests implements folder.ManifestBatcher.
func (f fetcher) FetchManifests(ctx context.Context, refs []blobs.BlobRef) (map[blobs.BlobRef]blobs.Manifest, error) {
	peers := f.n.onlineMembers()
	if len(peers) == 0 {
		return nil, fmt.Errorf("fetch %d manifests: no member online", len(refs))
	}
	return f.n.blobSvc.FetchManifests(ctx, refs, peers)
}
