package node

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/zeebo/blake3"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/crypt"
	"github.com/meshwork/meshwork/blobs/s3store"
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

// openStorage sets up the vault (storage role) or the client side.
func (n *Node) openStorage() error {
	n.st = &storageState{
		cl: vault.Client{H: n.host}, kick: make(chan struct{}, 1),
		known: map[peer.ID]bool{}, pushed: map[string]uint64{}, pulled: map[string]string{},
		info: map[syncproto.ObjectID]StorageInfo{}, cman: map[blobs.BlobRef]crypt.Manifest{},
	}
	if !n.isStorage() {
		return nil
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
		cfg, err := s3Config(n.cfg.S3)
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
	srv.SetAdmin(n.isMeshAdmin)
	n.st.srv = srv
	u := srv.Usage()
	n.log.Info("storage peer", "store", name, "quota", n.cfg.Quota, "used", u.Used, "chunks", u.Chunks)
	return nil
}

// isMeshAdmin reports whether device (a peer ID's text form) is a current
// owner or admin of the mesh: it may delete any manifest on the vault and
// change any catalog entry (catalogrules.go).
func (n *Node) isMeshAdmin(device string) bool {
	id, err := peer.Decode(device)
	if err != nil {
		return false
	}
	m, ok := n.members.lookup(id)
	return ok && !m.Revoked && m.Role.CanAdmin()
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
// this device is connected to storage peers that are members of l, for
// invite codes. It runs inside members.update, with the members' lock held.
func (n *Node) storagePeerAddrsLocked(l *identity.Log) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, p := range n.host.Network().Peers() {
		if l == nil || !l.IsMember(p) || !n.isStoragePeer(p) {
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
