package node

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/zeebo/blake3"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/crypt"
	"github.com/meshwork/meshwork/blobs/s3store"
	"github.com/meshwork/meshwork/node/folder"
	"github.com/meshwork/meshwork/node/internal/kv"
	"github.com/meshwork/meshwork/node/internal/wire"
	"github.com/meshwork/meshwork/node/vault"
	"github.com/meshwork/meshwork/syncproto"
)

// The storage peer, both sides.
//
// A storage peer (meshd --role storage) is a member of the mesh that keeps
// no working tree and never takes part in the plaintext sync of mesh
// objects: it registers /meshwork/vault/1.0.0 (package node/vault) and
// refuses /meshwork/sync/1.0.0 to everyone, and devices leave it out of
// their sync engine, of blob swarms and of folder catch-ups. Devices
// recognise a storage peer by the vault protocol in its identify record:
// that is the storage peer's own promise to hold only ciphertext, which
// devices honour; a device never sends it plaintext.
//
// # Keys: one mesh content key, distributed in invite codes
//
// The device that creates a mesh (mesh init) draws a 32-byte mesh content
// key (a crypt.FolderKey), kept in badger under node/meshkey. Every invite
// code made with 'mesh invite' carries it after the code proper:
// "meshinv1…-mk1…" (format and checksum at meshKeyPrefix). The code travels out of band (copied by the
// user) and its secret parts never cross the wire, so a device joining
// through a storage peer, with every other device offline, still gets the
// key, and the storage peer (which redeems the invite) never sees it.
// 'mesh invite --storage' makes a code without it, for a storage peer; a
// storage peer refuses a code that carries a key and never stores one.
// Why not a key handed over by an owner device after joining: a device that
// joins while only the storage peer is online must read the folder at once,
// and the code is the only secret channel it has. Why one mesh key rather
// than a random key per folder: the same reason (a per-folder key would
// need an owner online, or a key record sealed to the mesh key anyway).
// The cost: every device of the mesh can read every folder's copy on the
// storage peer, regardless of folder roles ('none' included); a leaked
// invite code leaks the key (it already let its holder join and read
// everything). Revoking a device does not rotate the key (not yet built).
//
// Per object (a folder, the catalog, the news stream), the key that seals
// it is
//
//	objectKey = BLAKE3-derive("meshwork storage v1 object key", meshKey || objectID)
//
// and package blobs/crypt does the rest with it (its doc.go has the chunk,
// manifest and record formats and what a storage peer learns from them).
//
// # What devices store on the storage peer
//
//   - For every object O a device holds, one record "obj/O/DEVICE": all of
//     O's items (syncproto.EncodeItem, each with a uvarint length), sealed
//     with crypt.SealRecord(objectKey, ad = the record name). A device only
//     writes its own record; it merges every other device's record into its
//     replica (FeedSync merge, as for a peer's changes), so devices that are
//     never online together converge through the storage peer.
//   - For every file whose content it has: its chunks sealed with
//     crypt.SealChunk(objectKey of the folder) (convergent: equal chunks
//     of a folder are stored once), and its sealed manifest (crypt.SealManifest)
//     under "man/" + hex(BLAKE3-keyed(BLAKE3-derive("meshwork storage v1
//     manifest name", objectKey), blob ref text)), a name the storage peer
//     cannot link to a plaintext blob reference.
//
// Devices push and merge records every 2 seconds while a storage peer is
// online, upload content when a folder changed (else every 30 s), and do
// both at once in 'mesh wait', 'mesh folder join' (records) and 'mesh fetch'
// (records). An object's record is its whole item list, re-sent when it
// changes: fine for folders of up to about 100,000 items (vault.MaxRecord).
//
// # Quota policy: newest first
//
// The storage peer counts only sealed chunk bytes against its quota; object
// records (all the metadata: every name, size and version) are always kept.
// It refuses a chunk that does not fit. Devices upload files newest first
// (by modification time, across all their folders); a file that does not
// fit makes room by deleting the manifests of strictly older files the
// storage peer holds, oldest first (the storage peer deletes the chunks no
// remaining manifest lists), and is skipped if that is not enough, so a
// full storage peer holds the newest files that fit, whole. A device only
// drops files of folders it syncs. The content of files no longer in any of
// its folders (deleted or replaced) that it uploaded itself (noted in badger
// under node/storage/uploaded/) is dropped first; until room is needed it
// stays, a backup of old versions.
//
// # Reading from the storage peer
//
// A device fetches a blob from its online members first (the normal path);
// if none is online or they fail, from a storage peer: the sealed manifest
// (opened, its plaintext reference checked) and each missing sealed chunk
// (checked by ciphertext hash, opened, checked by plaintext hash) into the
// same partial file.

// RoleStorage is Config.Role of a storage peer.
const RoleStorage = "storage"

var keyMeshKey = []byte("node/meshkey")

// storageState is both sides' state.
type storageState struct {
	srv  *vault.Server // storage role only
	cl   vault.Client
	kick chan struct{}

	syncMu   sync.Mutex // one push and pull of records at a time
	uploadMu sync.Mutex // one content upload at a time

	mu     sync.Mutex
	known  map[peer.ID]bool  // peers seen serving the vault
	pushed map[string]uint64 // peer/object → head pushed
	pulled map[string]string // peer/record → hash merged
	info   map[syncproto.ObjectID]StorageInfo
	cman   map[blobs.BlobRef]crypt.Manifest
}

// StorageInfo is what a storage peer holds of a folder (FolderInfo.Storage).
type StorageInfo struct {
	Peer      string    `json:"peer"` // the storage peer's name
	PeerID    string    `json:"peer_id"`
	Files     int       `json:"files"` // files with content in the folder
	Bytes     int64     `json:"bytes"`
	HeldFiles int       `json:"held_files"` // of which the storage peer holds the content
	HeldBytes int64     `json:"held_bytes"`
	Updated   time.Time `json:"updated"`
}

func (n *Node) isStorage() bool { return n.cfg.Role == RoleStorage }

// openStorage sets up the vault (storage role) or the client side.
func (n *Node) openStorage() error {
	n.st = &storageState{
		cl: vault.Client{H: n.host}, kick: make(chan struct{}, 1),
		known: map[peer.ID]bool{}, pushed: map[string]uint64{}, pulled: map[string]string{},
		info: map[syncproto.ObjectID]StorageInfo{}, cman: map[blobs.BlobRef]crypt.Manifest{},
	}
	switch n.cfg.Role {
	case "", "device":
		if n.cfg.Quota != 0 || n.cfg.Store != "" {
			return errors.New("--quota and --store are for a storage peer (--role storage)")
		}
		return nil
	case RoleStorage:
	default:
		return fmt.Errorf("--role %q: want device or storage", n.cfg.Role)
	}
	if k, err := dbGet(n.db, keyMeshKey); err == nil && k != nil {
		return fmt.Errorf("home %q holds a mesh content key: it was a device, not a storage peer; use a fresh home for --role storage", n.cfg.Home)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var be vault.Backend
	name := ""
	if n.cfg.Store == "" {
		dir := filepath.Join(n.cfg.Home, "vault")
		d, err := vault.OpenDir(dir)
		if err != nil {
			return err
		}
		be, name = d, dir
	} else {
		cfg, err := s3store.ConfigFromEnv(os.Getenv)
		if err != nil {
			return fmt.Errorf("--store %s: %w", n.cfg.Store, err)
		}
		s, err := s3store.Open(ctx, n.cfg.Store, cfg, n.log)
		if err != nil {
			return fmt.Errorf("--store %s: %w", n.cfg.Store, err)
		}
		be, name = s, n.cfg.Store
	}
	srv, err := vault.NewServer(ctx, n.db, []byte("vault/"), be, name, n.cfg.Quota, n.log.With("component", "vault"))
	if err != nil {
		return err
	}
	n.st.srv = srv
	u := srv.Usage()
	n.log.Info("storage peer", "store", name, "quota", n.cfg.Quota, "used", u.Used, "chunks", u.Chunks)
	return nil
}

func (n *Node) registerStorage() {
	if n.st.srv != nil {
		n.handle(vault.Proto, n.st.srv.Handle)
	}
}

// refuseOnStorage fails what a storage peer must not do.
func (n *Node) refuseOnStorage(what string) error {
	if n.isStorage() {
		return fmt.Errorf("%s: this daemon is a storage peer (--role storage): it keeps no working tree and never holds plaintext", what)
	}
	return nil
}

// isStoragePeer reports whether p announced the vault protocol.
func (n *Node) isStoragePeer(p peer.ID) bool {
	if n.st == nil {
		return false
	}
	if ps, err := n.host.Peerstore().SupportsProtocols(p, vault.Proto); err == nil && len(ps) > 0 {
		n.st.mu.Lock()
		n.st.known[p] = true
		n.st.mu.Unlock()
		return true
	}
	n.st.mu.Lock()
	defer n.st.mu.Unlock()
	return n.st.known[p]
}

// storagePeers lists the online members that are storage peers.
func (n *Node) storagePeers() []peer.ID {
	var out []peer.ID
	for _, p := range n.host.Network().Peers() {
		if p != n.id && n.IsMember(p) && n.isStoragePeer(p) {
			out = append(out, p)
		}
	}
	return out
}

// storagePeerAddrsLocked lists the direct addresses (with /p2p/ID) at which
// this device is connected to storage peers, for invite codes. n.mu is held.
func (n *Node) storagePeerAddrsLocked() []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, p := range n.host.Network().Peers() {
		if n.mlog == nil || !n.mlog.IsMember(p) || !n.isStoragePeer(p) {
			continue
		}
		for _, c := range n.host.Network().ConnsToPeer(p) {
			a := c.RemoteMultiaddr()
			if isRelayed(a) {
				continue
			}
			if pa, err := ma.NewMultiaddr("/p2p/" + p.String()); err == nil {
				out = append(out, a.Encapsulate(pa))
			}
		}
	}
	return out
}

// --- the mesh content key -----------------------------------------------

func (n *Node) meshKey() (crypt.FolderKey, bool) {
	b, err := dbGet(n.db, keyMeshKey)
	if err != nil || len(b) != 32 {
		return crypt.FolderKey{}, false
	}
	return crypt.FolderKey(b), true
}

// createMeshKey draws the mesh content key (mesh init).
func (n *Node) createMeshKey() error {
	if n.isStorage() {
		return nil
	}
	k, err := crypt.NewFolderKey()
	if err != nil {
		return fmt.Errorf("create mesh content key: %w", err)
	}
	return dbPut(n.db, keyMeshKey, k[:])
}

// The mesh key part of an invite code: "-mk1" + lower-case base32 (no
// padding) of key[32] || checksum[4], where checksum is the first 4 bytes of
// BLAKE3-derive("meshwork invite mesh key v1", lower-case code || key): a
// typo, a cut, or a key pasted after another code is detected.
const meshKeyPrefix = "mk1"

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func meshKeyChecksum(code string, k crypt.FolderKey) []byte {
	var sum [4]byte
	blake3.DeriveKey("meshwork invite mesh key v1", append([]byte(strings.ToLower(code)), k[:]...), sum[:])
	return sum[:]
}

// inviteCode is an invite's code, followed by the mesh content key unless
// the invite is for a storage peer.
func (n *Node) inviteCode(code string, forStorage bool) string {
	k, ok := n.meshKey()
	if forStorage || !ok || code == "" {
		return code
	}
	return appendMeshKey(code, k)
}

func appendMeshKey(code string, k crypt.FolderKey) string {
	raw := append(append([]byte{}, k[:]...), meshKeyChecksum(code, k)...)
	return code + "-" + meshKeyPrefix + strings.ToLower(b32.EncodeToString(raw))
}

// takeMeshKey splits a code into the invite code proper and the mesh key.
func (n *Node) takeMeshKey(code string) (string, *crypt.FolderKey, error) {
	inv, k, err := splitMeshKey(code)
	if err == nil && k != nil && n.isStorage() {
		return "", nil, errors.New("join mesh: this code carries the mesh content key and this daemon is a storage peer, which must never hold it: make the code with 'mesh invite --storage'")
	}
	return inv, k, err
}

// splitMeshKey splits a code into the invite code proper and the mesh key
// (nil if the code has none), checking the key part's checksum.
func splitMeshKey(code string) (string, *crypt.FolderKey, error) {
	code = strings.Join(strings.Fields(code), "")
	inv, keyText, found := strings.Cut(code, "-")
	if !found {
		return code, nil, nil
	}
	bad := errors.New("join mesh: the mesh key part of the code (after '-') is mistyped or cut off, or belongs to another code")
	rest, ok := strings.CutPrefix(strings.ToLower(keyText), meshKeyPrefix)
	if !ok {
		return "", nil, bad
	}
	raw, err := b32.DecodeString(strings.ToUpper(rest))
	if err != nil || len(raw) != 36 || strings.ToLower(b32.EncodeToString(raw)) != rest {
		return "", nil, bad
	}
	k := crypt.FolderKey(raw[:32])
	if !bytes.Equal(meshKeyChecksum(inv, k), raw[32:]) || k.IsZero() {
		return "", nil, bad
	}
	return inv, &k, nil
}

func (n *Node) keepMeshKey(k *crypt.FolderKey) error {
	if k == nil {
		return nil
	}
	if err := dbPut(n.db, keyMeshKey, k[:]); err != nil {
		return fmt.Errorf("save mesh content key: %w", err)
	}
	return nil
}

func objectKey(mk crypt.FolderKey, id syncproto.ObjectID) crypt.FolderKey {
	var k crypt.FolderKey
	blake3.DeriveKey("meshwork storage v1 object key", append(append([]byte{}, mk[:]...), id...), k[:])
	return k
}

func manifestName(fk crypt.FolderKey, ref blobs.BlobRef) string {
	var mk [32]byte
	blake3.DeriveKey("meshwork storage v1 manifest name", fk[:], mk[:])
	h, _ := blake3.NewKeyed(mk[:])
	_, _ = h.Write([]byte(ref.String()))
	return "man/" + hex.EncodeToString(h.Sum(nil))
}

// --- the device side: push, pull, upload ---------------------------------

func (n *Node) kickStorage() {
	if n.st == nil {
		return
	}
	select {
	case n.st.kick <- struct{}{}:
	default:
	}
}

// storageLoop keeps the storage peers up to date and merges what they hold.
func (n *Node) storageLoop(ctx context.Context) {
	if n.isStorage() {
		return
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	var lastHeads string
	var lastUpload time.Time
	for {
		force := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.st.kick:
			force = true
		}
		// Records every tick (cheap when nothing changed); content when a
		// folder changed, a storage peer appeared, or every 30 s.
		heads := n.folderHeads()
		upload := force || heads != lastHeads || time.Since(lastUpload) > 30*time.Second
		n.storageRound(ctx, upload)
		if upload && len(n.storagePeers()) > 0 {
			lastHeads, lastUpload = heads, time.Now()
		}
	}
}

// folderHeads summarises the heads of the local folders' replicas.
func (n *Node) folderHeads() string {
	n.fmu.Lock()
	ids := make([]syncproto.ObjectID, 0, len(n.folders))
	for id := range n.folders {
		ids = append(ids, id)
	}
	n.fmu.Unlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var b strings.Builder
	for _, id := range ids {
		_ = n.sync.Change(id, func(o *syncproto.Object) error {
			fmt.Fprintf(&b, "%s:%d ", id, o.Head())
			return nil
		})
	}
	return b.String()
}

// storageRound pushes this device's object records to every online storage
// peer and merges the other devices' records; with upload, it then uploads
// content. It returns when done. Records and uploads have separate locks,
// so that a merge ('mesh fetch', 'mesh folder join') never waits for a long
// upload.
func (n *Node) storageRound(ctx context.Context, upload bool) {
	if n.isStorage() {
		return
	}
	mk, ok := n.meshKey()
	if !ok {
		return
	}
	peers := n.storagePeers()
	if len(peers) == 0 {
		return
	}
	n.st.syncMu.Lock()
	for _, p := range peers {
		if err := n.pushObjects(ctx, p, mk); err != nil && ctx.Err() == nil {
			n.log.Warn("storage peer: push records", "peer", p.ShortString(), "err", err)
		}
		if err := n.pullObjects(ctx, p, mk); err != nil && ctx.Err() == nil {
			n.log.Warn("storage peer: merge records", "peer", p.ShortString(), "err", err)
		}
	}
	n.st.syncMu.Unlock()
	if !upload {
		return
	}
	n.st.uploadMu.Lock()
	defer n.st.uploadMu.Unlock()
	for _, p := range peers {
		n.uploadContent(ctx, p, mk)
	}
}

func encodeItems(items []syncproto.Item) []byte {
	var b []byte
	for _, it := range items {
		b = wire.AppendBytes(b, syncproto.EncodeItem(it))
	}
	return b
}

func decodeItems(b []byte) ([]syncproto.Item, error) {
	var out []syncproto.Item
	for len(b) > 0 {
		f, rest, err := wire.ReadBytes(b)
		if err != nil {
			return nil, err
		}
		it, err := syncproto.DecodeItem(f)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
		b = rest
	}
	return out, nil
}

func (n *Node) pushObjects(ctx context.Context, p peer.ID, mk crypt.FolderKey) error {
	var errs []error
	for _, id := range n.sync.Objects() {
		var items []syncproto.Item
		var head uint64
		_ = n.sync.Change(id, func(o *syncproto.Object) error { items, head = o.Items(), o.Head(); return nil })
		k := p.String() + "/" + string(id)
		n.st.mu.Lock()
		done := n.st.pushed[k] == head && head != 0
		n.st.mu.Unlock()
		if done || len(items) == 0 {
			continue
		}
		name := "obj/" + string(id) + "/" + n.id.String()
		sealed, err := crypt.SealRecord(objectKey(mk, id), encodeItems(items), []byte(name))
		if err != nil {
			errs = append(errs, fmt.Errorf("seal %s: %w", id, err))
			continue
		}
		if err := n.st.cl.PutRecord(ctx, p, name, sealed); err != nil {
			errs = append(errs, fmt.Errorf("object %s: %w", id, err))
			continue
		}
		n.st.mu.Lock()
		n.st.pushed[k] = head
		n.st.mu.Unlock()
		n.log.Debug("storage peer: pushed object", "peer", p.ShortString(), "object", string(id), "items", len(items), "bytes", len(sealed))
	}
	return errors.Join(errs...)
}

func (n *Node) pullObjects(ctx context.Context, p peer.ID, mk crypt.FolderKey) error {
	recs, err := n.st.cl.List(ctx, p, "obj/")
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range recs {
		parts := strings.Split(r.Name, "/")
		if len(parts) != 3 || parts[2] == n.id.String() {
			continue
		}
		id := syncproto.ObjectID(parts[1])
		k := p.String() + "/" + r.Name
		n.st.mu.Lock()
		done := n.st.pulled[k] == r.Hash
		n.st.mu.Unlock()
		if done || n.sync.Object(id) == nil {
			continue // merged already, or not an object this device keeps (yet)
		}
		sealed, err := n.st.cl.GetRecord(ctx, p, r.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		plain, err := crypt.OpenRecord(objectKey(mk, id), sealed, []byte(r.Name))
		var items []syncproto.Item
		if err == nil {
			items, err = decodeItems(plain)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("record %s: %w", r.Name, err))
			n.st.mu.Lock()
			n.st.pulled[k] = r.Hash // do not retry a record that does not open
			n.st.mu.Unlock()
			continue
		}
		var changed []syncproto.Item
		var retry bool
		_ = n.sync.Change(id, func(o *syncproto.Object) error {
			for _, it := range items {
				ok, res, err := o.Apply(it)
				if errors.Is(err, syncproto.ErrClockSkew) {
					retry = true
				} else if err != nil {
					n.log.Debug("storage peer: item refused", "object", string(id), "err", err)
				}
				if ok {
					changed = append(changed, res)
				}
			}
			return nil
		})
		if !retry {
			n.st.mu.Lock()
			n.st.pulled[k] = r.Hash
			n.st.mu.Unlock()
		}
		if len(changed) > 0 {
			n.log.Debug("storage peer: merged record", "record", r.Name, "changed", len(changed))
			n.onSyncChange(id, changed)
		}
	}
	return errors.Join(errs...)
}

type fileToUpload struct {
	folder syncproto.ObjectID
	fk     crypt.FolderKey
	ref    blobs.BlobRef
	mtime  time.Time
	name   string // its manifest record's name
}

// uploadContent uploads the content of the files of every local folder,
// newest first. A file that does not fit in what is left of the quota makes
// room by deleting the manifests of strictly older files the storage peer
// holds, oldest first (the storage peer then deletes the chunks no other
// manifest lists); if that is not enough, it is skipped. What the storage
// peer holds is read from it (its manifest records) on every pass, so what
// another device evicted is seen.
func (n *Node) uploadContent(ctx context.Context, p peer.ID, mk crypt.FolderKey) {
	n.fmu.Lock()
	var lfs []*localFolder
	for _, lf := range n.folders {
		lfs = append(lfs, lf)
	}
	n.fmu.Unlock()
	var files []fileToUpload
	infos := map[syncproto.ObjectID]*StorageInfo{}
	for _, lf := range lfs {
		id, fk := lf.conf.ID, objectKey(mk, lf.conf.ID)
		infos[id] = &StorageInfo{Peer: n.deviceName(p), PeerID: p.String()}
		_ = n.sync.Change(id, func(o *syncproto.Object) error {
			for _, it := range o.Items() {
				fe, ok := it.Body.(*syncproto.FileEntry)
				if it.Sync.Deleted || !ok || fe.Blob == (syncproto.BlobRef{}) || !fe.Mode.IsRegular() {
					continue
				}
				if ref, err := folder.BlobRefOf(fe.Blob); err == nil {
					files = append(files, fileToUpload{id, fk, ref, fe.ModTime, manifestName(fk, ref)})
				}
			}
			return nil
		})
	}
	sort.SliceStable(files, func(i, j int) bool {
		if !files[i].mtime.Equal(files[j].mtime) {
			return files[i].mtime.After(files[j].mtime)
		}
		return files[i].name < files[j].name
	})
	recs, err := n.st.cl.List(ctx, p, "man/")
	if err != nil {
		n.log.Warn("storage peer: list manifests", "peer", p.ShortString(), "err", err)
		return
	}
	held := map[string]bool{}
	for _, r := range recs {
		held[r.Name] = true
	}
	usage, err := n.st.cl.Usage(ctx, p)
	if err != nil {
		n.log.Warn("storage peer: usage", "peer", p.ShortString(), "err", err)
		return
	}
	left := int64(-1) // no quota
	if usage.Quota > 0 {
		left = max(0, usage.Quota-usage.Used)
	}
	tried := map[string]bool{}
	for i, f := range files {
		if ctx.Err() != nil {
			return
		}
		if held[f.name] || tried[f.name] {
			continue
		}
		tried[f.name] = true
		plan, ok, err := n.planUpload(ctx, p, f)
		if err != nil {
			n.log.Warn("storage peer: upload", "peer", p.ShortString(), "blob", f.ref.String(), "err", err)
			continue
		}
		if !ok {
			continue // content not here
		}
		if left >= 0 && plan.need > left {
			evicted := false
			// First the content of files no longer in a folder (that this
			// device uploaded), then older files, oldest first.
			for _, name := range n.orphanManifests(p, files, held) {
				if plan.need <= left {
					break
				}
				freed, err := n.st.cl.DeleteManifest(ctx, p, name)
				if err != nil {
					n.log.Warn("storage peer: make room", "peer", p.ShortString(), "err", err)
					break
				}
				delete(held, name)
				_ = n.db.Update(func(txn *badger.Txn) error { return txn.Delete(keyUploaded(p, name)) })
				left += freed
				evicted = true
				n.log.Info("storage peer: dropped a deleted file's content to make room", "peer", p.ShortString(), "freed", freed)
			}
			for j := len(files) - 1; j > i && plan.need > left; j-- {
				g := files[j]
				if !held[g.name] || !g.mtime.Before(f.mtime) {
					continue
				}
				freed, err := n.st.cl.DeleteManifest(ctx, p, g.name)
				if err != nil {
					n.log.Warn("storage peer: make room", "peer", p.ShortString(), "err", err)
					break
				}
				delete(held, g.name)
				left += freed
				evicted = true
				n.log.Info("storage peer: dropped an older file's content to make room for a newer one", "peer", p.ShortString(), "dropped", g.ref.String(), "for", f.ref.String(), "freed", freed)
			}
			if evicted { // a dropped chunk may be one this file needs
				if plan, ok, err = n.planUpload(ctx, p, f); err != nil || !ok {
					continue
				}
			}
			if plan.need > left {
				n.log.Debug("storage peer: file does not fit the quota", "blob", f.ref.String(), "need", plan.need, "left", left)
				continue
			}
		}
		if err := n.putUpload(ctx, p, f, plan); err != nil {
			if errors.Is(err, vault.ErrQuota) {
				left = 0
			}
			n.log.Warn("storage peer: upload", "peer", p.ShortString(), "blob", f.ref.String(), "err", err)
			continue
		}
		held[f.name] = true
		if err := dbPut(n.db, keyUploaded(p, f.name), []byte{1}); err != nil {
			n.log.Warn("storage peer: note upload", "err", err)
		}
		if left >= 0 {
			left = max(0, left-plan.need)
		}
	}
	now := time.Now().UTC()
	for _, f := range files {
		info := infos[f.folder]
		info.Files++
		info.Bytes += f.ref.Size
		if held[f.name] {
			info.HeldFiles++
			info.HeldBytes += f.ref.Size
		}
	}
	n.st.mu.Lock()
	for id, info := range infos {
		info.Updated = now
		n.st.info[id] = *info
	}
	n.st.mu.Unlock()
}

// keyUploaded notes a manifest this device uploaded to a storage peer.
func keyUploaded(p peer.ID, name string) []byte {
	return []byte("node/storage/uploaded/" + p.String() + "/" + name)
}

// orphanManifests lists the manifests this device uploaded to p that p
// still holds and that no current file of the local folders uses.
func (n *Node) orphanManifests(p peer.ID, files []fileToUpload, held map[string]bool) []string {
	live := map[string]bool{}
	for _, f := range files {
		live[f.name] = true
	}
	var out []string
	pre := keyUploaded(p, "")
	_ = kv.Scan(n.db, pre, func(k, _ []byte) error {
		if name := string(k); held[name] && !live[name] {
			out = append(out, name)
		}
		return nil
	})
	return out
}

// uploadPlan is a blob to upload: its manifests, sealed chunk IDs, which of
// them the storage peer has, and the bytes it lacks.
type uploadPlan struct {
	m    blobs.Manifest
	cm   crypt.Manifest
	have []bool
	need int64
}

// sealChunk reads a chunk from the local store and seals it.
func (n *Node) sealChunk(ctx context.Context, fk crypt.FolderKey, c blobs.ChunkRef, buf []byte) ([]byte, blobs.ChunkID, error) {
	data, err := n.blobStore.Get(ctx, c.ID, buf)
	if err != nil {
		return nil, blobs.ChunkID{}, fmt.Errorf("read chunk %v: %w", c.ID, err)
	}
	return crypt.SealChunk(fk, data)
}

// planUpload seals f's chunks to learn their IDs and asks which the peer
// has. ok is false when the content is not (all) here.
func (n *Node) planUpload(ctx context.Context, p peer.ID, f fileToUpload) (uploadPlan, bool, error) {
	var pl uploadPlan
	m, err := n.blobStore.Manifest(ctx, f.ref)
	if err != nil {
		return pl, false, nil
	}
	if miss, err := n.blobStore.Missing(ctx, m); err != nil || len(miss) > 0 {
		return pl, false, nil
	}
	pl.m = m
	buf := make([]byte, 0, blobs.MaxChunkSize)
	ids := make([]blobs.ChunkID, len(m.Chunks))
	for i, c := range m.Chunks {
		_, ct, err := n.sealChunk(ctx, f.fk, c, buf)
		if err != nil {
			return pl, false, err
		}
		ids[i] = ct
		pl.cm.Chunks = append(pl.cm.Chunks, crypt.Chunk{Plain: c, Cipher: ct})
	}
	if pl.have, err = n.st.cl.Have(ctx, p, ids); err != nil {
		return pl, false, err
	}
	seen := map[blobs.ChunkID]bool{}
	for i, c := range m.Chunks {
		if !pl.have[i] && !seen[ids[i]] {
			seen[ids[i]] = true
			pl.need += int64(c.Size) + crypt.Overhead
		}
	}
	return pl, true, nil
}

// putUpload uploads the chunks the plan says the peer lacks, then the
// sealed manifest (which the peer accepts only once it holds every chunk).
func (n *Node) putUpload(ctx context.Context, p peer.ID, f fileToUpload, pl uploadPlan) error {
	buf := make([]byte, 0, blobs.MaxChunkSize)
	sent := map[blobs.ChunkID]bool{}
	for i, c := range pl.cm.Chunks {
		if pl.have[i] || sent[c.Cipher] {
			continue
		}
		sealed, ct, err := n.sealChunk(ctx, f.fk, c.Plain, buf)
		if err != nil {
			return err
		}
		if err := n.st.cl.PutChunk(ctx, p, ct, sealed); err != nil {
			return err
		}
		sent[ct] = true
	}
	sm, err := crypt.SealManifest(f.fk, pl.cm)
	if err != nil {
		return err
	}
	return n.st.cl.PutRecord(ctx, p, f.name, sm)
}

// storageInfo is what FolderInfo shows for folder id (nil if nothing known).
func (n *Node) storageInfo(id syncproto.ObjectID) *StorageInfo {
	if n.st == nil {
		return nil
	}
	n.st.mu.Lock()
	defer n.st.mu.Unlock()
	if i, ok := n.st.info[id]; ok {
		return &i
	}
	return nil
}

// --- reading from a storage peer -------------------------------------------

// vaultManifest fetches and opens the sealed manifest of ref.
func (n *Node) vaultManifest(ctx context.Context, p peer.ID, folderID syncproto.ObjectID, ref blobs.BlobRef) (crypt.Manifest, error) {
	n.st.mu.Lock()
	cm, ok := n.st.cman[ref]
	n.st.mu.Unlock()
	if ok {
		return cm, nil
	}
	mk, ok := n.meshKey()
	if !ok {
		return crypt.Manifest{}, errors.New("this device has no mesh content key (it joined with a code made without one)")
	}
	fk := objectKey(mk, folderID)
	sealed, err := n.st.cl.GetRecord(ctx, p, manifestName(fk, ref))
	if err != nil {
		return crypt.Manifest{}, fmt.Errorf("manifest of %s: %w", ref, err)
	}
	cm, err = crypt.OpenManifest(fk, sealed)
	if err != nil {
		return crypt.Manifest{}, fmt.Errorf("manifest of %s from %s: %w", ref, p.ShortString(), err)
	}
	if got := cm.Plain().Ref(); got != ref {
		return crypt.Manifest{}, fmt.Errorf("manifest of %s from %s: it describes %s: %w", ref, p.ShortString(), got, blobs.ErrMismatch)
	}
	n.st.mu.Lock()
	n.st.cman[ref] = cm
	n.st.mu.Unlock()
	return cm, nil
}

// fetchManifest gets a folder blob's manifest from the online members, else
// from a storage peer.
func (n *Node) fetchManifest(ctx context.Context, folderID syncproto.ObjectID, ref blobs.BlobRef) (blobs.Manifest, error) {
	var errs []error
	if peers := n.onlineMembers(); len(peers) > 0 {
		m, err := n.blobSvc.FetchManifest(ctx, ref, peers)
		if err == nil {
			return m, nil
		}
		errs = append(errs, err)
	}
	for _, p := range n.storagePeers() {
		cm, err := n.vaultManifest(ctx, p, folderID, ref)
		if err == nil {
			return cm.Plain(), nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return blobs.Manifest{}, fmt.Errorf("fetch manifest %s: no member online", ref)
	}
	return blobs.Manifest{}, fmt.Errorf("fetch manifest %s: %w", ref, errors.Join(errs...))
}

// fetchInto gets a folder blob's missing chunks from the online members,
// else from a storage peer.
func (n *Node) fetchInto(ctx context.Context, folderID syncproto.ObjectID, m blobs.Manifest, sink interface {
	Put(context.Context, blobs.ChunkID, []byte) error
}, progress func(blobs.Progress)) error {
	var errs []error
	if peers := n.onlineMembers(); len(peers) > 0 {
		err := n.blobSvc.FetchInto(ctx, m, peers, sink, progress)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	for _, p := range n.storagePeers() {
		err := n.fetchFromVault(ctx, p, folderID, m, sink, progress)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return fmt.Errorf("fetch %s: no member online", m.Ref())
	}
	return fmt.Errorf("fetch %s: %w", m.Ref(), errors.Join(errs...))
}

func (n *Node) fetchFromVault(ctx context.Context, p peer.ID, folderID syncproto.ObjectID, m blobs.Manifest, sink interface {
	Put(context.Context, blobs.ChunkID, []byte) error
}, progress func(blobs.Progress)) error {
	ref := m.Ref()
	cm, err := n.vaultManifest(ctx, p, folderID, ref)
	if err != nil {
		return err
	}
	mk, _ := n.meshKey()
	fk := objectKey(mk, folderID)
	cipher := map[blobs.ChunkID]blobs.ChunkID{}
	for _, c := range cm.Chunks {
		cipher[c.Plain.ID] = c.Cipher
	}
	missing, err := n.blobStore.Missing(ctx, m)
	if err != nil {
		return err
	}
	start := time.Now()
	pr := blobs.Progress{Blob: ref, TotalBytes: m.Size(), TotalChunks: len(m.Chunks), DoneBytes: m.Size(), DoneChunks: len(m.Chunks), Peers: 1}
	for _, c := range missing {
		pr.DoneBytes -= int64(c.Size)
		pr.DoneChunks--
	}
	done := map[blobs.ChunkID]bool{}
	for _, c := range missing {
		if done[c.ID] {
			continue
		}
		ct, ok := cipher[c.ID]
		if !ok {
			return fmt.Errorf("sealed manifest of %s from %s lacks chunk %v", ref, p.ShortString(), c.ID)
		}
		sealed, err := n.st.cl.GetChunk(ctx, p, ct)
		if err != nil {
			return fmt.Errorf("chunk %v of %s: %w", c.ID, ref, err)
		}
		plain, err := crypt.OpenChunk(fk, c.ID, sealed)
		if err != nil {
			return fmt.Errorf("chunk %v of %s from %s: %w", c.ID, ref, p.ShortString(), err)
		}
		if err := sink.Put(ctx, c.ID, plain); err != nil {
			return fmt.Errorf("chunk %v of %s: %w", c.ID, ref, err)
		}
		done[c.ID] = true
		pr.DoneBytes += int64(c.Size)
		pr.DoneChunks++
		pr.Elapsed = time.Since(start)
		if progress != nil {
			progress(pr)
		}
	}
	n.log.Debug("storage peer: fetched blob", "peer", p.ShortString(), "blob", ref.String(), "chunks", len(done))
	return nil
}
