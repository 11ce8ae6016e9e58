package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/crypt"
	"github.com/meshwork/meshwork/syncproto"
)

// Reading from a storage peer: a folder blob from the online members first,
// else from a storage peer (see "Reading from the storage peer", doc.go).

// maxCachedManifests bounds the sealed manifests kept between a blob's
// FetchManifest and its FetchInto.
const maxCachedManifests = 4096

// vaultManifest fetches and opens the sealed manifest of ref.
func (n *Node) vaultManifest(ctx context.Context, p peer.ID, folderID syncproto.ObjectID, ref blobs.BlobRef) (crypt.Manifest, error) {
	n.st.st.mu.Lock()
	cm, ok := n.st.st.cman[ref]
	n.st.st.mu.Unlock()
	if ok {
		return cm, nil
	}
	mk, ok := n.st.meshKey()
	if !ok {
		return crypt.Manifest{}, errors.New("this device has no mesh content key (it joined with a code made without one)")
	}
	fk := objectKey(mk, folderID)
	sealed, err := n.st.st.cl.GetRecord(ctx, p, manifestName(fk, ref))
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
	n.st.st.mu.Lock()
	if len(n.st.st.cman) >= maxCachedManifests {
		clear(n.st.st.cman) // a cache between FetchManifest and FetchInto, not an index
	}
	n.st.st.cman[ref] = cm
	n.st.st.mu.Unlock()
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
	for _, p := range n.st.storagePeers() {
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
	for _, p := range n.st.storagePeers() {
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
	mk, _ := n.st.meshKey()
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
		sealed, err := n.st.st.cl.GetChunk(ctx, p, ct)
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
