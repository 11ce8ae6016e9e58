package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/blobs/crypt"
	"github.com/meshwork/meshwork/node/internal/wire"
	"github.com/meshwork/meshwork/syncproto"
)

// The device side of the storage peer: the loop, and the object records
// pushed to and merged from it (see "Storage peer", doc.go).

func (n *Node) kickStorage() {
	if n.st == nil {
		return
	}
	select {
	case n.st.st.kick <- struct{}{}:
	default:
	}
}

// storageLoop keeps the storage peers up to date: records every 2 seconds
// (cheap when nothing changed) in one goroutine, content in another when a
// folder changed, a storage peer appeared, or every 30 s, so that a long
// upload never delays merging. It returns when both have stopped.
func (n *Node) storageLoop(ctx context.Context) {
	if n.isStorage() {
		return
	}
	upKick := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.uploadLoop(ctx, upKick)
	}()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			<-done
			return
		case <-t.C:
		case <-n.st.st.kick:
			select {
			case upKick <- struct{}{}:
			default:
			}
		}
		n.storageRound(ctx, false)
	}
}

func (n *Node) uploadLoop(ctx context.Context, kick <-chan struct{}) {
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
		case <-kick:
			force = true
		}
		heads := n.folderHeads()
		if !force && heads == lastHeads && n.now().Sub(lastUpload) < 30*time.Second {
			continue
		}
		if n.storageUpload(ctx) {
			lastHeads, lastUpload = heads, n.now()
		}
	}
}

// folderHeads summarises the heads of the local folders' replicas.
func (n *Node) folderHeads() string {
	lfs := n.folders.list()
	ids := make([]syncproto.ObjectID, 0, len(lfs))
	for _, lf := range lfs {
		ids = append(ids, lf.conf.ID)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var b strings.Builder
	for _, id := range ids {
		_ = n.sync.View(id, func(o *syncproto.Object) error {
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
	mk, ok := n.st.meshKey()
	if !ok {
		return
	}
	peers := n.st.storagePeers()
	if len(peers) == 0 {
		return
	}
	if err := n.ensureSharedObjects(); err != nil { // the catalog, to merge into
		n.log.Warn("shared objects", "err", err)
	}
	n.st.st.syncMu.Lock()
	for _, p := range peers {
		if err := n.pushObjects(ctx, p, mk); err != nil && ctx.Err() == nil {
			n.log.Warn("storage peer: push records", "peer", p.ShortString(), "err", err)
		}
		if err := n.pullObjects(ctx, p, mk); err != nil && ctx.Err() == nil {
			n.log.Warn("storage peer: merge records", "peer", p.ShortString(), "err", err)
		}
	}
	n.st.st.syncMu.Unlock()
	if upload {
		n.storageUpload(ctx)
	}
}

// storageUpload uploads content to every online storage peer; it reports
// whether there was one.
func (n *Node) storageUpload(ctx context.Context) bool {
	mk, ok := n.st.meshKey()
	peers := n.st.storagePeers()
	if n.isStorage() || !ok || len(peers) == 0 {
		return false
	}
	n.st.st.uploadMu.Lock()
	defer n.st.st.uploadMu.Unlock()
	for _, p := range peers {
		n.uploadContent(ctx, p, mk)
	}
	return true
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
		_ = n.sync.View(id, func(o *syncproto.Object) error { items, head = o.Items(), o.Head(); return nil })
		k := p.String() + "/" + string(id)
		n.st.st.mu.Lock()
		done := n.st.st.pushed[k] == head && head != 0
		n.st.st.mu.Unlock()
		if done || len(items) == 0 {
			continue
		}
		name := "obj/" + string(id) + "/" + n.id.String()
		sealed, err := crypt.SealRecord(objectKey(mk, id), encodeItems(items), []byte(name))
		if err != nil {
			errs = append(errs, fmt.Errorf("seal %s: %w", id, err))
			continue
		}
		if err := n.st.st.cl.PutRecord(ctx, p, name, sealed); err != nil {
			errs = append(errs, fmt.Errorf("object %s: %w", id, err))
			continue
		}
		n.st.st.mu.Lock()
		n.st.st.pushed[k] = head
		n.st.st.mu.Unlock()
		n.log.Debug("storage peer: pushed object", "peer", p.ShortString(), "object", string(id), "items", len(items), "bytes", len(sealed))
	}
	return errors.Join(errs...)
}

func (n *Node) pullObjects(ctx context.Context, p peer.ID, mk crypt.FolderKey) error {
	recs, err := n.st.st.cl.List(ctx, p, "obj/")
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
		n.st.st.mu.Lock()
		done := n.st.st.pulled[k] == r.Hash
		n.st.st.mu.Unlock()
		if done || n.sync.Object(id) == nil {
			continue // merged already, or not an object this device keeps (yet)
		}
		sealed, err := n.st.st.cl.GetRecord(ctx, p, r.Name)
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
			n.st.st.mu.Lock()
			n.st.st.pulled[k] = r.Hash // do not retry a record that does not open
			n.st.st.mu.Unlock()
			continue
		}
		var changed []syncproto.Item
		var retry bool
		_ = n.sync.Change(id, func(o *syncproto.Object) error {
			// The vault lets only device parts[2] write its record: an
			// unsigned version in it counts as from its author when it is
			// that device's (syncproto.VerifyVersion).
			from := syncproto.DeviceID(parts[2])
			for _, it := range items {
				ok, res, err := o.ApplyFrom(from, it)
				if errors.Is(err, syncproto.ErrClockSkew) {
					retry = true
				} else if errors.Is(err, syncproto.ErrBadSignature) {
					n.log.Warn("storage peer: item refused: bad version signature", "peer", p.ShortString(), "record", r.Name, "item", string(it.Sync.ID), "err", err)
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
			n.st.st.mu.Lock()
			n.st.st.pulled[k] = r.Hash
			n.st.st.mu.Unlock()
		}
		if len(changed) > 0 {
			n.log.Debug("storage peer: merged record", "record", r.Name, "changed", len(changed))
			n.onSyncChange(id, changed)
		}
	}
	return errors.Join(errs...)
}
