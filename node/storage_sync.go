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

// kick wakes the loop for a round now. c may be nil (before New built it).
func (c *storageClient) kick() {
	if c == nil {
		return
	}
	select {
	case c.st.kick <- struct{}{}:
	default:
	}
}

// loop keeps the storage peers up to date: records every 2 seconds
// (cheap when nothing changed) in one goroutine, content in another when a
// folder changed, a storage peer appeared, or every 30 s, so that a long
// upload never delays merging. It returns when both have stopped.
func (c *storageClient) loop(ctx context.Context) {
	if c.storage {
		return
	}
	upKick := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.uploadLoop(ctx, upKick)
	}()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			<-done
			return
		case <-t.C:
		case <-c.st.kick:
			select {
			case upKick <- struct{}{}:
			default:
			}
		}
		c.round(ctx, false)
	}
}

func (c *storageClient) uploadLoop(ctx context.Context, kick <-chan struct{}) {
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
		heads := c.folderHeads()
		if !force && heads == lastHeads && c.now().Sub(lastUpload) < 30*time.Second {
			continue
		}
		if c.upload(ctx) {
			lastHeads, lastUpload = heads, c.now()
		}
	}
}

// folderHeads summarises the heads of the local folders' replicas.
func (c *storageClient) folderHeads() string {
	lfs := c.folders.list()
	ids := make([]syncproto.ObjectID, 0, len(lfs))
	for _, lf := range lfs {
		ids = append(ids, lf.conf.ID)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var b strings.Builder
	for _, id := range ids {
		_ = c.objects.View(id, func(o *syncproto.Object) error {
			fmt.Fprintf(&b, "%s:%d ", id, o.Head())
			return nil
		})
	}
	return b.String()
}

// round pushes this device's object records to every online storage
// peer and merges the other devices' records; with upload, it then uploads
// content. It returns when done. Records and uploads have separate locks,
// so that a merge ('mesh fetch', 'mesh folder join') never waits for a long
// upload.
func (c *storageClient) round(ctx context.Context, upload bool) {
	if c.storage {
		return
	}
	mk, ok := c.meshKey()
	if !ok {
		return
	}
	peers := c.storagePeers()
	if len(peers) == 0 {
		return
	}
	if err := c.ensureShared(); err != nil { // the catalog, to merge into
		c.log.Warn("shared objects", "err", err)
	}
	c.st.syncMu.Lock()
	for _, p := range peers {
		if err := c.pushObjects(ctx, p, mk); err != nil && ctx.Err() == nil {
			c.log.Warn("storage peer: push records", "peer", p.ShortString(), "err", err)
		}
		if err := c.pullObjects(ctx, p, mk); err != nil && ctx.Err() == nil {
			c.log.Warn("storage peer: merge records", "peer", p.ShortString(), "err", err)
		}
	}
	c.st.syncMu.Unlock()
	if upload {
		c.upload(ctx)
	}
}

// upload uploads content to every online storage peer; it reports
// whether there was one.
func (c *storageClient) upload(ctx context.Context) bool {
	mk, ok := c.meshKey()
	peers := c.storagePeers()
	if c.storage || !ok || len(peers) == 0 {
		return false
	}
	c.st.uploadMu.Lock()
	defer c.st.uploadMu.Unlock()
	for _, p := range peers {
		c.uploadContent(ctx, p, mk)
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

func (c *storageClient) pushObjects(ctx context.Context, p peer.ID, mk crypt.FolderKey) error {
	var errs []error
	for _, id := range c.objects.Objects() {
		var items []syncproto.Item
		var head uint64
		_ = c.objects.View(id, func(o *syncproto.Object) error { items, head = o.Items(), o.Head(); return nil })
		k := p.String() + "/" + string(id)
		c.st.mu.Lock()
		done := c.st.pushed[k] == head && head != 0
		c.st.mu.Unlock()
		if done || len(items) == 0 {
			continue
		}
		name := "obj/" + string(id) + "/" + c.self.String()
		sealed, err := crypt.SealRecord(objectKey(mk, id), encodeItems(items), []byte(name))
		if err != nil {
			errs = append(errs, fmt.Errorf("seal %s: %w", id, err))
			continue
		}
		if err := c.st.cl.PutRecord(ctx, p, name, sealed); err != nil {
			errs = append(errs, fmt.Errorf("object %s: %w", id, err))
			continue
		}
		c.st.mu.Lock()
		c.st.pushed[k] = head
		c.st.mu.Unlock()
		c.log.Debug("storage peer: pushed object", "peer", p.ShortString(), "object", string(id), "items", len(items), "bytes", len(sealed))
	}
	return errors.Join(errs...)
}

func (c *storageClient) pullObjects(ctx context.Context, p peer.ID, mk crypt.FolderKey) error {
	recs, err := c.st.cl.List(ctx, p, "obj/")
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range recs {
		parts := strings.Split(r.Name, "/")
		if len(parts) != 3 || parts[2] == c.self.String() {
			continue
		}
		id := syncproto.ObjectID(parts[1])
		k := p.String() + "/" + r.Name
		c.st.mu.Lock()
		done := c.st.pulled[k] == r.Hash
		c.st.mu.Unlock()
		if done || c.objects.Object(id) == nil {
			continue // merged already, or not an object this device keeps (yet)
		}
		sealed, err := c.st.cl.GetRecord(ctx, p, r.Name)
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
			c.st.mu.Lock()
			c.st.pulled[k] = r.Hash // do not retry a record that does not open
			c.st.mu.Unlock()
			continue
		}
		var changed []syncproto.Item
		var retry bool
		_ = c.objects.Change(id, func(o *syncproto.Object) error {
			// The vault lets only device parts[2] write its record: an
			// unsigned version in it counts as from its author when it is
			// that device's (syncproto.VerifyVersion).
			from := syncproto.DeviceID(parts[2])
			for _, it := range items {
				ok, res, err := o.ApplyFrom(from, it)
				if errors.Is(err, syncproto.ErrClockSkew) {
					retry = true
				} else if errors.Is(err, syncproto.ErrBadSignature) {
					c.log.Warn("storage peer: item refused: bad version signature", "peer", p.ShortString(), "record", r.Name, "item", string(it.Sync.ID), "err", err)
				} else if err != nil {
					c.log.Debug("storage peer: item refused", "object", string(id), "err", err)
				}
				if ok {
					changed = append(changed, res)
				}
			}
			return nil
		})
		if !retry {
			c.st.mu.Lock()
			c.st.pulled[k] = r.Hash
			c.st.mu.Unlock()
		}
		if len(changed) > 0 {
			c.log.Debug("storage peer: merged record", "record", r.Name, "changed", len(changed))
			c.merged(id, changed)
		}
	}
	return errors.Join(errs...)
}
