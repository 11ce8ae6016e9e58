package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/crypt"
	"github.com/meshwork/meshwork/blobs/transfer"
	"github.com/meshwork/meshwork/syncproto"
)

// Reading from a storage peer: a folder blob from the online members first,
// else from a storage peer (see "Reading from the storage peer", doc.go).

// maxCachedManifests bounds the sealed manifests kept between a blob's
// FetchManifest and its FetchInto.
const maxCachedManifests = 4096

// vaultManifest fetches and opens the sealed manifest of ref.
func (c *storageClient) vaultManifest(ctx context.Context, p peer.ID, folderID syncproto.ObjectID, ref blobs.BlobRef) (crypt.Manifest, error) {
	c.st.mu.Lock()
	cm, ok := c.st.cman[ref]
	c.st.mu.Unlock()
	if ok {
		return cm, nil
	}
	mk, ok := c.meshKey()
	if !ok {
		return crypt.Manifest{}, errors.New("this device has no mesh content key (it joined with a code made without one)")
	}
	fk := objectKey(mk, folderID)
	sealed, err := c.st.cl.GetRecord(ctx, p, manifestName(fk, ref))
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
	c.st.mu.Lock()
	if len(c.st.cman) >= maxCachedManifests {
		clear(c.st.cman) // a cache between FetchManifest and FetchInto, not an index
	}
	c.st.cman[ref] = cm
	c.st.mu.Unlock()
	return cm, nil
}

// FetchManifest gets a folder blob's manifest from the online members,
// else from a storage peer.
func (f fetcher) FetchManifest(ctx context.Context, ref blobs.BlobRef) (blobs.Manifest, error) {
	n, folderID := f.n, f.folder
	var errs []error
	if peers := n.onlineMembers(); len(peers) > 0 {
		m, err := n.blobSvc.FetchManifest(ctx, ref, peers)
		if err == nil {
			return m, nil
		}
		errs = append(errs, err)
	}
	for _, p := range n.st.storagePeers() {
		cm, err := n.st.vaultManifest(ctx, p, folderID, ref)
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

// FetchInto gets a folder blob's missing chunks from the online members,
// else from a storage peer.
func (f fetcher) FetchInto(ctx context.Context, m blobs.Manifest, sink transfer.Sink, progress func(blobs.Progress)) error {
	n, folderID := f.n, f.folder
	var errs []error
	if peers := n.onlineMembers(); len(peers) > 0 {
		err := n.blobSvc.FetchInto(ctx, m, peers, sink, progress)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	for _, p := range n.st.storagePeers() {
		err := n.st.fetchFromVault(ctx, p, folderID, m, sink, progress)
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

// fetchFromVault gets m's missing chunks from the storage peer p.
func (c *storageClient) fetchFromVault(ctx context.Context, p peer.ID, folderID syncproto.ObjectID, m blobs.Manifest, sink interface {
	Put(context.Context, blobs.ChunkID, []byte) error
}, progress func(blobs.Progress)) error {
	ref := m.Ref()
	cm, err := c.vaultManifest(ctx, p, folderID, ref)
	if err != nil {
		return err
	}
	mk, _ := c.meshKey()
	fk := objectKey(mk, folderID)
	cipher := map[blobs.ChunkID]blobs.ChunkID{}
	for _, ch := range cm.Chunks {
		cipher[ch.Plain.ID] = ch.Cipher
	}
	missing, err := c.blobs.Missing(ctx, m)
	if err != nil {
		return err
	}
	start := time.Now()
	pr := blobs.Progress{Blob: ref, TotalBytes: m.Size(), TotalChunks: len(m.Chunks), DoneBytes: m.Size(), DoneChunks: len(m.Chunks), Peers: 1}
	for _, ch := range missing {
		pr.DoneBytes -= int64(ch.Size)
		pr.DoneChunks--
	}
	done := map[blobs.ChunkID]bool{}
	for _, ch := range missing {
		if done[ch.ID] {
			continue
		}
		ct, ok := cipher[ch.ID]
		if !ok {
			return fmt.Errorf("sealed manifest of %s from %s lacks chunk %v", ref, p.ShortString(), ch.ID)
		}
		sealed, err := c.st.cl.GetChunk(ctx, p, ct)
		if err != nil {
			return fmt.Errorf("chunk %v of %s: %w", ch.ID, ref, err)
		}
		plain, err := crypt.OpenChunk(fk, ch.ID, sealed)
		if err != nil {
			return fmt.Errorf("chunk %v of %s from %s: %w", ch.ID, ref, p.ShortString(), err)
		}
		if err := sink.Put(ctx, ch.ID, plain); err != nil {
			return fmt.Errorf("chunk %v of %s: %w", ch.ID, ref, err)
		}
		done[ch.ID] = true
		pr.DoneBytes += int64(ch.Size)
		pr.DoneChunks++
		pr.Elapsed = time.Since(start)
		if progress != nil {
			progress(pr)
		}
	}
	c.log.Debug("storage peer: fetched blob", "peer", p.ShortString(), "blob", ref.String(), "chunks", len(done))
	return nil
}
