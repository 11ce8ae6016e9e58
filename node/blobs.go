package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/store"
	"github.com/meshwork/meshwork/blobs/transfer"
	"github.com/meshwork/meshwork/syncproto"
)

// Blobs in the daemon: one chunk index in the node's badger database
// (prefix "blobs/"), a chunk store under HOME/chunks for devices without a
// working copy, and the /meshwork/blobs/1.0.0 service. Non-members get
// nothing: the service asks IsMember on every stream and CanRead on every
// request. A blob held in synced folders may be read by a member only if
// it may read one of those folders (its role there is not "none"); a blob
// held anywhere else as well (`mesh blob add` of a file outside the
// folders, a `mesh blob get` target), or only in the chunk store, by any
// member.

var prefixBlobs = []byte("blobs/")

type blobAuth struct{ n *Node }

func (a blobAuth) IsMember(p peer.ID) bool { return a.n.IsMember(p) }

func (a blobAuth) CanRead(p peer.ID, ref blobs.BlobRef) bool {
	n := a.n
	if !n.IsMember(p) {
		return false
	}
	paths, err := n.blobStore.Holders(context.Background(), ref)
	if err != nil {
		n.log.Warn("blob read check", "blob", ref, "err", err)
		return false
	}
	dev := syncproto.DeviceID(p.String())
	for _, path := range paths {
		lf, _, err := n.folderForPath(path)
		if err != nil {
			return true // held outside every synced folder
		}
		if obj := n.sync.Object(lf.conf.ID); obj != nil && obj.Role(dev) != syncproto.RoleNone {
			return true
		}
	}
	return len(paths) == 0
}

func (n *Node) openBlobs() error {
	st, err := store.Open(n.db, prefixBlobs, filepath.Join(n.cfg.Home, "chunks"), n.log.With("component", "blobs"))
	if err != nil {
		return fmt.Errorf("open chunk store: %w", err)
	}
	// Received chunks are written with O_DIRECT where the filesystem
	// allows it (blobs/store/directio.go); MESHWORK_DIRECT_WRITES=0 keeps
	// them in the page cache (for comparisons and odd filesystems): cmd/meshd
	// sets Config.NoDirectWrites from it.
	if n.cfg.NoDirectWrites {
		st.SetDirectWrites(false)
	}
	n.blobStore = st
	n.blobSvc = transfer.New(n.host, st, blobAuth{n}, n.log.With("component", "blobs"))
	n.blobSvc.SetSendRate(n.cfg.MaxSendRate)
	return nil
}

// onlineMembers lists the members (not this device) we are connected to.
func (n *Node) onlineMembers() []peer.ID {
	var out []peer.ID
	for _, p := range n.host.Network().Peers() {
		if p != n.id && n.IsMember(p) && !n.st.isStoragePeer(p) { // storage peers hold only ciphertext
			out = append(out, p)
		}
	}
	return out
}

// BlobAdd indexes files (or every file under a directory) in place.
func (n *Node) BlobAdd(ctx context.Context, path string) ([]store.AddResult, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("add %q: %w", path, err)
	}
	if fi.IsDir() {
		return n.blobStore.AddFolder(ctx, abs)
	}
	m, ref, err := n.blobStore.AddFile(ctx, abs)
	if err != nil {
		return nil, fmt.Errorf("add %q: %w", path, err)
	}
	return []store.AddResult{{Path: abs, Ref: ref, Manifest: m}}, nil
}

// BlobGet fetches a blob from every online member that has it and writes it
// atomically to target. Verified chunks of an interrupted fetch are kept in
// the partial file, so a retry fetches only the rest.
func (n *Node) BlobGet(ctx context.Context, ref blobs.BlobRef, target string, progress func(blobs.Progress)) error {
	peers := n.onlineMembers()
	m, err := n.blobStore.Manifest(ctx, ref)
	if err != nil {
		if len(peers) == 0 {
			return fmt.Errorf("get %s: not held here and no member is online", ref)
		}
		if m, err = n.blobSvc.FetchManifest(ctx, ref, peers); err != nil {
			return fmt.Errorf("get %s: %w", ref, err)
		}
	}
	p, err := n.blobStore.OpenPartial(ctx, m, target)
	if err != nil {
		return fmt.Errorf("get %s: %w", ref, err)
	}
	defer p.Close()
	missing, err := n.blobStore.Missing(ctx, m)
	if err != nil {
		return fmt.Errorf("get %s: %w", ref, err)
	}
	if len(missing) > 0 {
		if err := n.blobSvc.FetchInto(ctx, m, peers, p, progress); err != nil {
			return fmt.Errorf("get %s: %w", ref, err)
		}
	}
	if err := p.Commit(ctx); err != nil {
		return fmt.Errorf("get %s: %w", ref, err)
	}
	return nil
}

// API: POST /v1/blobs/add {"paths": [...]} → [{"path","ref","error"}]
//
//	POST /v1/blobs/get {"refs": [...], "out": DIR}
//	     → NDJSON stream of BlobEvent, ending with one whose "done" is true.
//	     Blobs are written to DIR/<ref> (several fetched at once).
type BlobEvent struct {
	Ref        string  `json:"ref,omitempty"`
	DoneBytes  int64   `json:"done_bytes"`
	TotalBytes int64   `json:"total_bytes"`
	Rate       float64 `json:"rate"`
	Done       bool    `json:"done,omitempty"`
	Error      string  `json:"error,omitempty"`
}
