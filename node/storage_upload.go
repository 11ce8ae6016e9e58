package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/crypt"
	"github.com/meshwork/meshwork/node/folder"
	"github.com/meshwork/meshwork/node/internal/kv"
	"github.com/meshwork/meshwork/node/vault"
	"github.com/meshwork/meshwork/syncproto"
)

// Uploading content to a storage peer: newest first, within its quota (see
// "Storage peer quota policy", doc.go).

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
func (c *storageClient) uploadContent(ctx context.Context, p peer.ID, mk crypt.FolderKey) {
	files, infos := c.filesToUpload(p, mk)
	u, ok := c.beginUpload(ctx, p, files)
	if !ok {
		return
	}
	for i, f := range files {
		if ctx.Err() != nil {
			return
		}
		u.upload(i, f)
	}
	now := c.now().UTC()
	for _, f := range files {
		info := infos[f.folder]
		info.Files++
		info.Bytes += f.ref.Size
		if u.held[f.name] {
			info.HeldFiles++
			info.HeldBytes += f.ref.Size
		}
	}
	c.st.mu.Lock()
	for id, info := range infos {
		info.Updated = now
		c.st.info[id] = *info
	}
	c.st.mu.Unlock()
}

// filesToUpload lists the files of every local folder, newest first, and
// a StorageInfo to fill in per folder.
func (c *storageClient) filesToUpload(p peer.ID, mk crypt.FolderKey) ([]fileToUpload, map[syncproto.ObjectID]*StorageInfo) {
	lfs := c.folders.list()
	var files []fileToUpload
	infos := map[syncproto.ObjectID]*StorageInfo{}
	for _, lf := range lfs {
		id, fk := lf.conf.ID, objectKey(mk, lf.conf.ID)
		infos[id] = &StorageInfo{Peer: c.deviceName(p), PeerID: p.String()}
		_ = c.objects.View(id, func(o *syncproto.Object) error {
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
	return files, infos
}

// uploadPass is one uploadContent pass to the storage peer p: what p
// holds, and what is left of its quota.
type uploadPass struct {
	c       *storageClient
	ctx     context.Context
	p       peer.ID
	files   []fileToUpload // newest first
	held    map[string]bool
	mayDrop func(name string) bool
	left    int64 // -1: no quota
	tried   map[string]bool
	orphans []string // computed when first needed
}

// beginUpload reads what p holds and its quota; ok is false (and the
// failure logged) when either cannot be read.
func (c *storageClient) beginUpload(ctx context.Context, p peer.ID, files []fileToUpload) (u *uploadPass, ok bool) {
	recs, err := c.st.cl.List(ctx, p, "man/")
	if err != nil {
		c.log.Warn("storage peer: list manifests", "peer", p.ShortString(), "err", err)
		return nil, false
	}
	held := map[string]bool{}
	uploader := map[string]string{}
	for _, r := range recs {
		held[r.Name] = true
		uploader[r.Name] = r.Uploader
	}
	// The storage peer deletes only what this device uploaded, unless it is
	// a mesh owner or admin: make room only with those.
	admin := c.members.isMeshAdmin(c.self.String())
	mayDrop := func(name string) bool { return admin || uploader[name] == c.self.String() }
	usage, err := c.st.cl.Usage(ctx, p)
	if err != nil {
		c.log.Warn("storage peer: usage", "peer", p.ShortString(), "err", err)
		return nil, false
	}
	left := int64(-1) // no quota
	if usage.Quota > 0 {
		left = max(0, usage.Quota-usage.Used)
	}
	return &uploadPass{c: c, ctx: ctx, p: p, files: files, held: held, mayDrop: mayDrop, left: left, tried: map[string]bool{}}, true
}

// upload uploads files[i], f, unless p holds it or it does not fit.
func (u *uploadPass) upload(i int, f fileToUpload) {
	c, ctx, p := u.c, u.ctx, u.p
	if u.held[f.name] || u.tried[f.name] {
		return
	}
	u.tried[f.name] = true
	if u.left >= 0 && !c.mightFit(ctx, p, u.files, i, u.held, u.mayDrop, u.left, &u.orphans) {
		return // not even dropping every older file would make room: not sealed for nothing
	}
	plan, ok, err := c.planUpload(ctx, p, f)
	if err != nil {
		c.log.Warn("storage peer: upload", "peer", p.ShortString(), "blob", f.ref.String(), "err", err)
		return
	}
	if !ok {
		return // content not here
	}
	if u.left >= 0 && plan.need > u.left {
		if plan, ok = u.makeRoom(i, f, plan); !ok {
			return
		}
	}
	if err := c.putUpload(ctx, p, f, plan); err != nil {
		if errors.Is(err, vault.ErrQuota) {
			u.left = 0
		}
		c.log.Warn("storage peer: upload", "peer", p.ShortString(), "blob", f.ref.String(), "err", err)
		return
	}
	u.held[f.name] = true
	if err := dbPut(c.db, keyUploaded(p, f.name), []byte{1}); err != nil {
		c.log.Warn("storage peer: note upload", "err", err)
	}
	if u.left >= 0 {
		u.left = max(0, u.left-plan.need)
	}
}

// makeRoom drops manifests p holds until plan, files[i]'s (f), fits in
// what is left of the quota. It returns the plan to upload (made again
// when something was dropped) and whether it fits now.
func (u *uploadPass) makeRoom(i int, f fileToUpload, plan uploadPlan) (uploadPlan, bool) {
	c, ctx, p, files := u.c, u.ctx, u.p, u.files
	evicted := false
	// First the content of files no longer in a folder (that this
	// device uploaded), then older files, oldest first.
	for _, name := range c.orphanManifests(p, files, u.held) {
		if plan.need <= u.left {
			break
		}
		if !u.mayDrop(name) {
			continue
		}
		freed, err := c.st.cl.DeleteManifest(ctx, p, name)
		if err != nil {
			c.log.Warn("storage peer: make room", "peer", p.ShortString(), "err", err)
			break
		}
		delete(u.held, name)
		_ = c.db.Update(func(txn *badger.Txn) error { return txn.Delete(keyUploaded(p, name)) })
		u.left += freed
		evicted = true
		c.log.Info("storage peer: dropped a deleted file's content to make room", "peer", p.ShortString(), "freed", freed)
	}
	for j := len(files) - 1; j > i && plan.need > u.left; j-- {
		g := files[j]
		if !u.held[g.name] || !g.mtime.Before(f.mtime) || !u.mayDrop(g.name) {
			continue
		}
		freed, err := c.st.cl.DeleteManifest(ctx, p, g.name)
		if err != nil {
			c.log.Warn("storage peer: make room", "peer", p.ShortString(), "err", err)
			break
		}
		delete(u.held, g.name)
		u.left += freed
		evicted = true
		c.log.Info("storage peer: dropped an older file's content to make room for a newer one", "peer", p.ShortString(), "dropped", g.ref.String(), "for", f.ref.String(), "freed", freed)
	}
	if evicted { // a dropped chunk may be one this file needs
		var ok bool
		var err error
		if plan, ok, err = c.planUpload(ctx, p, f); err != nil || !ok {
			return plan, false
		}
	}
	if plan.need > u.left {
		c.log.Debug("storage peer: file does not fit the quota", "blob", f.ref.String(), "need", plan.need, "left", u.left)
		return plan, false
	}
	return plan, true
}

// keyUploaded notes a manifest this device uploaded to a storage peer.
func keyUploaded(p peer.ID, name string) []byte {
	return []byte("node/storage/uploaded/" + p.String() + "/" + name)
}

// orphanManifests lists the manifests this device uploaded to p that p
// still holds and that no current file of the local folders uses.
func (c *storageClient) orphanManifests(p peer.ID, files []fileToUpload, held map[string]bool) []string {
	live := map[string]bool{}
	for _, f := range files {
		live[f.name] = true
	}
	var out []string
	pre := keyUploaded(p, "")
	_ = kv.Scan(c.db, pre, func(k, _ []byte) error {
		if name := string(k); held[name] && !live[name] {
			out = append(out, name)
		}
		return nil
	})
	return out
}

// sealedBound is the most a blob of size bytes can take sealed (its chunks
// are at least blobs.MinChunkSize, but for the last).
func sealedBound(size int64) int64 {
	return size + crypt.Overhead*(size/blobs.MinChunkSize+1)
}

// mightFit reports whether files[i] could fit in left bytes, after
// dropping every strictly older file the peer holds and the orphans,
// without sealing anything: a full storage peer does not cost a re-seal of
// every file that does not fit on every pass. It errs towards true.
func (c *storageClient) mightFit(ctx context.Context, p peer.ID, files []fileToUpload, i int, held map[string]bool, mayDrop func(string) bool, left int64, orphans *[]string) bool {
	f := files[i]
	m, err := c.blobs.Manifest(ctx, f.ref)
	if err != nil {
		return true // planUpload finds it is not here
	}
	upper := m.Size() + int64(len(m.Chunks))*crypt.Overhead
	if upper <= left {
		return true
	}
	if *orphans == nil {
		*orphans = append(c.orphanManifests(p, files, held), "") // "" marks "computed"
	}
	if len(*orphans) > 1 {
		return true // sizes unknown here
	}
	room := left
	for _, g := range files[i+1:] {
		if held[g.name] && g.mtime.Before(f.mtime) && mayDrop(g.name) {
			room += sealedBound(g.ref.Size)
		}
	}
	return upper <= room
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
func (c *storageClient) sealChunk(ctx context.Context, fk crypt.FolderKey, ch blobs.ChunkRef, buf []byte) ([]byte, blobs.ChunkID, error) {
	data, err := c.blobs.Get(ctx, ch.ID, buf)
	if err != nil {
		return nil, blobs.ChunkID{}, fmt.Errorf("read chunk %v: %w", ch.ID, err)
	}
	return crypt.SealChunk(fk, data)
}

// planUpload seals f's chunks to learn their IDs and asks which the peer
// has. ok is false when the content is not (all) here.
func (c *storageClient) planUpload(ctx context.Context, p peer.ID, f fileToUpload) (uploadPlan, bool, error) {
	var pl uploadPlan
	m, err := c.blobs.Manifest(ctx, f.ref)
	if err != nil {
		return pl, false, nil
	}
	if miss, err := c.blobs.Missing(ctx, m); err != nil || len(miss) > 0 {
		return pl, false, nil
	}
	pl.m = m
	buf := make([]byte, 0, blobs.MaxChunkSize)
	ids := make([]blobs.ChunkID, len(m.Chunks))
	for i, ch := range m.Chunks {
		_, ct, err := c.sealChunk(ctx, f.fk, ch, buf)
		if err != nil {
			return pl, false, err
		}
		ids[i] = ct
		pl.cm.Chunks = append(pl.cm.Chunks, crypt.Chunk{Plain: ch, Cipher: ct})
	}
	if pl.have, err = c.st.cl.Have(ctx, p, ids); err != nil {
		return pl, false, err
	}
	seen := map[blobs.ChunkID]bool{}
	for i, ch := range m.Chunks {
		if !pl.have[i] && !seen[ids[i]] {
			seen[ids[i]] = true
			pl.need += int64(ch.Size) + crypt.Overhead
		}
	}
	return pl, true, nil
}

// putUpload uploads the chunks the plan says the peer lacks, then the
// sealed manifest (which the peer accepts only once it holds every chunk).
func (c *storageClient) putUpload(ctx context.Context, p peer.ID, f fileToUpload, pl uploadPlan) error {
	buf := make([]byte, 0, blobs.MaxChunkSize)
	sent := map[blobs.ChunkID]bool{}
	for i, ch := range pl.cm.Chunks {
		if pl.have[i] || sent[ch.Cipher] {
			continue
		}
		sealed, ct, err := c.sealChunk(ctx, f.fk, ch.Plain, buf)
		if err != nil {
			return err
		}
		if err := c.st.cl.PutChunk(ctx, p, ct, sealed); err != nil {
			return err
		}
		sent[ct] = true
	}
	sm, err := crypt.SealManifest(f.fk, pl.cm)
	if err != nil {
		return err
	}
	return c.st.cl.PutRecord(ctx, p, f.name, sm)
}
