package node

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/zeebo/blake3"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/crypt"
	"github.com/meshwork/meshwork/blobs/s3store"
	"github.com/meshwork/meshwork/blobs/store"
	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/node/vault"
	"github.com/meshwork/meshwork/syncproto"
)

// The storage peer, both sides: the role, the keys and state shared by the
// device side (storage_sync.go, storage_upload.go, storage_fetch.go) and
// the storage side (package node/vault). The design (keys, what a storage
// peer sees, the quota policy, reads) is in doc.go, "Storage peer".

// RoleStorage is Config.Role of a storage peer.
const RoleStorage = "storage"

var keyMeshKey = []byte("node/meshkey")

// storageClient is the storage peer part, both sides: the vault server
// (storage role) or the client of the storage peers, the mesh content key,
// and their state (st). It reads the parts it is given and calls back into
// Node only through its three funcs; Node calls it (see "Parts and call
// order", doc.go).
type storageClient struct {
	self    peer.ID
	storage bool // Config.Role is RoleStorage
	host    host.Host
	db      *badger.DB
	objects storageObjects // the sync engine's replicas
	blobs   *store.Store
	folders *folderSet
	members *memberState
	log     *slog.Logger
	now     func() time.Time

	// The Node steps it calls: each takes its own parts' locks, never
	// called under st.mu.
	ensureShared func() error                               // the catalog, to merge into (ensureSharedObjects)
	merged       func(syncproto.ObjectID, []syncproto.Item) // items merged from a record (onSyncChange)
	deviceName   func(peer.ID) string

	st storageState
}

// storageObjects is what the storage client uses of the sync engine
// (*exchange.Engine).
type storageObjects interface {
	Objects() []syncproto.ObjectID
	Object(id syncproto.ObjectID) *syncproto.Object
	View(id syncproto.ObjectID, f func(*syncproto.Object) error) error
	Change(id syncproto.ObjectID, f func(*syncproto.Object) error) error
}

// storageState is both sides' state, the storage client's own.
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

// checkRole checks the role, quota and store settings.
func checkRole(cfg Config) error {
	switch cfg.Role {
	case "", "device":
		if cfg.Quota != 0 || cfg.Store != "" {
			return errors.New("--quota and --store are for a storage peer (--role storage)")
		}
	case RoleStorage:
		if cfg.Quota < 0 {
			return fmt.Errorf("--quota %d: want a size of 0 (no limit) or more", cfg.Quota)
		}
		if cfg.Store != "" {
			if _, _, err := s3store.ParseURL(cfg.Store); err != nil {
				return fmt.Errorf("--store %q: %w", cfg.Store, err)
			}
		}
	default:
		return fmt.Errorf("--role %q: want device or storage", cfg.Role)
	}
	return nil
}

// openStorage builds the storage client and, on a storage peer, the vault.
func (n *Node) openStorage() error {
	n.st = &storageClient{
		self: n.id, storage: n.isStorage(), host: n.host, db: n.db, objects: n.sync,
		blobs: n.blobStore, folders: n.folders, members: n.members, log: n.log, now: n.now,
		ensureShared: n.ensureSharedObjects, merged: n.onSyncChange, deviceName: n.deviceName,
		st: storageState{
			cl: vault.Client{H: n.host}, kick: make(chan struct{}, 1),
			known: map[peer.ID]bool{}, pushed: map[string]uint64{}, pulled: map[string]string{},
			info: map[syncproto.ObjectID]StorageInfo{}, cman: map[blobs.BlobRef]crypt.Manifest{},
		},
	}
	if !n.isStorage() {
		return nil
	}
	return n.st.openVault(n.cfg)
}

// openVault opens the storage peer's vault (the storage role).
func (c *storageClient) openVault(cfg Config) error {
	if k, err := dbGet(c.db, keyMeshKey); err == nil && k != nil {
		return fmt.Errorf("home %q holds a mesh content key: it was a device, not a storage peer; use a fresh home for --role storage", cfg.Home)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var be vault.Backend
	name := ""
	if cfg.Store == "" {
		dir := filepath.Join(cfg.Home, "vault")
		d, err := vault.OpenDir(dir)
		if err != nil {
			return err
		}
		be, name = d, dir
	} else {
		s3cfg, err := s3Config(cfg.S3)
		if err != nil {
			return fmt.Errorf("--store %s: %w", cfg.Store, err)
		}
		s, err := s3store.Open(ctx, cfg.Store, s3cfg, c.log)
		if err != nil {
			return fmt.Errorf("--store %s: %w", cfg.Store, err)
		}
		be, name = s, cfg.Store
	}
	srv, err := vault.NewServer(ctx, c.db, []byte("vault/"), be, name, cfg.Quota, c.log.With("component", "vault"))
	if err != nil {
		return err
	}
	srv.SetAdmin(c.members.isMeshAdmin)
	c.st.srv = srv
	u := srv.Usage()
	c.log.Info("storage peer", "store", name, "quota", cfg.Quota, "used", u.Used, "chunks", u.Chunks)
	return nil
}

// vaultHandler is the vault's stream handler, nil unless this is a storage
// peer.
func (c *storageClient) vaultHandler() network.StreamHandler {
	if c.st.srv == nil {
		return nil
	}
	return c.st.srv.Handle
}

// refuseOnStorage fails what a storage peer must not do.
func (n *Node) refuseOnStorage(what string) error {
	if n.isStorage() {
		return fmt.Errorf("%s: this daemon is a storage peer (--role storage): it keeps no working tree and never holds plaintext", what)
	}
	return nil
}

// isStoragePeer reports whether p announced the vault protocol. c may be
// nil (before New built it): then no peer is one.
func (c *storageClient) isStoragePeer(p peer.ID) bool {
	if c == nil {
		return false
	}
	if ps, err := c.host.Peerstore().SupportsProtocols(p, vault.Proto); err == nil && len(ps) > 0 {
		c.st.mu.Lock()
		c.st.known[p] = true
		c.st.mu.Unlock()
		return true
	}
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	return c.st.known[p]
}

// storagePeers lists the online members that are storage peers.
func (c *storageClient) storagePeers() []peer.ID {
	var out []peer.ID
	for _, p := range c.host.Network().Peers() {
		if p != c.self && c.members.isMember(p) && c.isStoragePeer(p) {
			out = append(out, p)
		}
	}
	return out
}

// storagePeerAddrsLocked lists the direct addresses (with /p2p/ID) at which
// this device is connected to storage peers that are members of l, for
// invite codes. It runs inside members.update, with the members' lock held.
func (c *storageClient) storagePeerAddrsLocked(l *identity.Log) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, p := range c.host.Network().Peers() {
		if l == nil || !l.IsMember(p) || !c.isStoragePeer(p) {
			continue
		}
		for _, conn := range c.host.Network().ConnsToPeer(p) {
			a := conn.RemoteMultiaddr()
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

func (c *storageClient) meshKey() (crypt.FolderKey, bool) {
	b, err := dbGet(c.db, keyMeshKey)
	if err != nil || len(b) != 32 {
		return crypt.FolderKey{}, false
	}
	return crypt.FolderKey(b), true
}

// createMeshKey draws the mesh content key (mesh init).
func (c *storageClient) createMeshKey() error {
	if c.storage {
		return nil
	}
	k, err := crypt.NewFolderKey()
	if err != nil {
		return fmt.Errorf("create mesh content key: %w", err)
	}
	return dbPut(c.db, keyMeshKey, k[:])
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
func (c *storageClient) inviteCode(code string, forStorage bool) string {
	k, ok := c.meshKey()
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
func (c *storageClient) takeMeshKey(code string) (string, *crypt.FolderKey, error) {
	inv, k, err := splitMeshKey(code)
	if err == nil && k != nil && c.storage {
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

func (c *storageClient) keepMeshKey(k *crypt.FolderKey) error {
	if k == nil {
		return nil
	}
	if err := dbPut(c.db, keyMeshKey, k[:]); err != nil {
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

// folderInfo is what FolderInfo shows for folder id (nil if nothing known
// or c is nil).
func (c *storageClient) folderInfo(id syncproto.ObjectID) *StorageInfo {
	if c == nil {
		return nil
	}
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	if i, ok := c.st.info[id]; ok {
		return &i
	}
	return nil
}
