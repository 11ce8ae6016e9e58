package node

// Folder files and blobs through the API (node/API.md): listing, download
// with ranges, atomic upload, delete, history, restore and conflict
// resolution. Every path is opened through os.Root at the folder's root,
// so no name (.., absolute, or a symlink) reaches outside the folder, and
// the folder's internal .meshwork/ directory is never served or written.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/node/folder"
	"github.com/meshwork/meshwork/syncproto"
)

const internalDirName = ".meshwork"

// webURL is GET /v1/web (Unix socket only): the web desktop's login URL.
func (a *apiServer) webURL(w http.ResponseWriter, _ *http.Request) {
	if a.httpAddr == "" {
		writeErr(w, http.StatusConflict, errors.New("the HTTP API is off: restart meshd without --http off"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"url":   "http://" + a.httpAddr + "/login?token=" + a.token,
		"addr":  a.httpAddr,
		"token": a.token,
	})
}

func (a *apiServer) unexposeName(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := a.n.tun.server.Unexpose(name); err != nil {
		writeErr(w, http.StatusNotFound, err)
		return
	}
	key := append(append([]byte{}, prefixExposed...), name...)
	if err := dbDelete(a.n.db, key); err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"name": name})
}

// localFolderReq finds the folder named in the path and checks it is
// synced on this device.
func (a *apiServer) localFolderReq(w http.ResponseWriter, r *http.Request) (*localFolder, bool) {
	name := r.PathValue("name")
	lf := a.n.folderByName(name)
	if lf == nil {
		if _, ok := a.n.catalog()[name]; ok {
			writeErr(w, http.StatusConflict, fmt.Errorf("folder %q is not synced on this device: join it with 'mesh folder join %s PATH'", name, name))
		} else {
			writeErr(w, http.StatusNotFound, fmt.Errorf("folder %q: no such folder", name))
		}
		return nil, false
	}
	return lf, true
}

// cleanRel checks a folder-relative path from a request.
func cleanRel(p string) (string, error) {
	if p == "" || strings.Contains(p, "\\") || strings.ContainsRune(p, 0) || path.IsAbs(p) {
		return "", fmt.Errorf("path %q: want a relative path inside the folder", p)
	}
	c := path.Clean(p)
	if c != p || c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("path %q: want a clean relative path inside the folder", p)
	}
	if c == internalDirName || strings.HasPrefix(c, internalDirName+"/") {
		return "", fmt.Errorf("path %q: the folder's %s directory is internal", p, internalDirName)
	}
	return c, nil
}

// File is one element of GET /api/v1/folders/{name}/files.
type File struct {
	Path       string    `json:"path"`
	Size       int64     `json:"size"`
	ModTime    time.Time `json:"mtime"`
	Dir        bool      `json:"dir"`
	Symlink    string    `json:"symlink,omitempty"`
	Deleted    bool      `json:"deleted"`
	Local      bool      `json:"local"`
	By         string    `json:"by"`
	Updates    uint32    `json:"updates"`
	Blob       string    `json:"blob,omitempty"`
	ConflictOf *string   `json:"conflict_of"`
}

func (a *apiServer) fileList(w http.ResponseWriter, r *http.Request) {
	lf, ok := a.localFolderReq(w, r)
	if !ok {
		return
	}
	root, err := os.OpenRoot(lf.conf.Path)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, fmt.Errorf("open folder %q: %w", lf.conf.Name, err))
		return
	}
	defer root.Close()
	var items []syncproto.Item
	_ = a.n.sync.Change(lf.conf.ID, func(o *syncproto.Object) error { items = o.Items(); return nil })
	out := []File{}
	for _, it := range items {
		fe, ok := it.Body.(*syncproto.FileEntry)
		if !ok {
			continue
		}
		top := it.Sync.Top()
		f := File{Path: fe.Path, Size: fe.Size, ModTime: fe.ModTime.UTC(), Dir: fe.Mode.IsDir(), Symlink: fe.Symlink,
			Deleted: it.Sync.Deleted, By: a.n.deviceNameS(string(top.By)), Updates: it.Sync.Updates, Blob: fe.Blob.String()}
		if !f.Deleted {
			if fi, err := root.Lstat(fe.Path); err == nil && (f.Dir || fi.Size() == fe.Size) {
				f.Local = true
			}
		}
		out = append(out, f)
		if it.Sync.Deleted {
			continue
		}
		for _, c := range it.Sync.Conflicts {
			cfe, ok := c.Body.(*syncproto.FileEntry)
			if !ok || c.Sync.Deleted {
				continue
			}
			name := folder.ConflictName(fe.Path, c)
			orig := fe.Path
			cf := File{Path: name, Size: cfe.Size, ModTime: cfe.ModTime.UTC(), By: a.n.deviceNameS(string(c.Sync.Top().By)),
				Updates: c.Sync.Updates, Blob: cfe.Blob.String(), ConflictOf: &orig}
			if fi, err := root.Lstat(name); err == nil && fi.Size() == cfe.Size {
				cf.Local = true
			}
			out = append(out, cf)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	writeJSON(w, http.StatusOK, out)
}

// fileReq resolves a file request: the folder synced here, the clean
// folder-relative path, and the folder's root opened (close it). With a
// verb ("upload", "delete") this device must also be allowed to write.
func (a *apiServer) fileReq(w http.ResponseWriter, r *http.Request, relRaw, verb string) (*localFolder, string, *os.Root, bool) {
	lf, ok := a.localFolderReq(w, r)
	if !ok {
		return nil, "", nil, false
	}
	rel, err := cleanRel(relRaw)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return nil, "", nil, false
	}
	if verb != "" {
		if role := a.folderRole(lf); !role.CanWrite() {
			writeErr(w, http.StatusForbidden, fmt.Errorf("%s %q: this device is a %v of folder %q and may not write to it", verb, rel, role, lf.conf.Name))
			return nil, "", nil, false
		}
	}
	root, err := os.OpenRoot(lf.conf.Path)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, fmt.Errorf("open folder %q: %w", lf.conf.Name, err))
		return nil, "", nil, false
	}
	return lf, rel, root, true
}

func (a *apiServer) fileGet(w http.ResponseWriter, r *http.Request) {
	lf, rel, root, ok := a.fileReq(w, r, r.PathValue("path"), "")
	if !ok {
		return
	}
	defer root.Close()
	f, err := root.Open(rel)
	if err != nil {
		writeErr(w, http.StatusNotFound, fmt.Errorf("file %q in folder %q: %w", rel, lf.conf.Name, err))
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("file %q in folder %q is not a regular file", rel, lf.conf.Name))
		return
	}
	var it syncproto.Item
	_ = a.n.sync.Change(lf.conf.ID, func(o *syncproto.Object) error { it, _ = o.Item(syncproto.ItemID(rel)); return nil })
	if fe, ok := it.Body.(*syncproto.FileEntry); ok && !fe.Blob.IsZero() && fe.Size == fi.Size() {
		w.Header().Set("ETag", `"`+fe.Blob.String()+`"`)
	}
	if r.URL.Query().Get("download") != "" {
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", path.Base(rel)))
	}
	http.ServeContent(streaming(w, r), r, path.Base(rel), fi.ModTime(), f)
}

// filePut writes the request body to a temporary file inside the folder's
// internal directory and renames it into place: readers and peers never
// see a partial file, and a failed upload leaves the old file as it was.
func (a *apiServer) filePut(w http.ResponseWriter, r *http.Request) {
	w = streaming(w, r) // an upload may be large: progress, not a whole-request timeout
	lf, rel, root, ok := a.fileReq(w, r, r.PathValue("path"), "upload")
	if !ok {
		return
	}
	defer root.Close()
	if dir := path.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			writeErr(w, http.StatusConflict, fmt.Errorf("upload %q: make directory: %w", rel, err))
			return
		}
	}
	tmpDir := internalDirName + "/uploads"
	if err := root.MkdirAll(tmpDir, 0o700); err != nil {
		writeErr(w, http.StatusInternalServerError, fmt.Errorf("upload %q: %w", rel, err))
		return
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := tmpDir + "/" + hex.EncodeToString(rnd[:])
	f, err := root.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, fmt.Errorf("upload %q: %w", rel, err))
		return
	}
	n, err := io.Copy(f, r.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, rel)
	}
	if err != nil {
		_ = root.Remove(tmp)
		writeErr(w, http.StatusBadRequest, fmt.Errorf("upload %q to folder %q: %w (nothing was changed)", rel, lf.conf.Name, err))
		return
	}
	a.rescan(lf)
	writeJSON(w, http.StatusCreated, map[string]any{"path": rel, "size": n})
}

// rescan scans the folder now, so an API change is synced at once (the
// watcher would also see it).
func (a *apiServer) rescan(lf *localFolder) {
	ctx, cancel := context.WithTimeout(a.n.runCtx, time.Minute)
	defer cancel()
	if err := lf.f.Scan(ctx); err != nil {
		a.n.log.Warn("scan after API change", "folder", lf.conf.Name, "err", err)
	}
}

func (a *apiServer) folderRole(lf *localFolder) syncproto.Role {
	role := syncproto.RoleNone
	_ = a.n.sync.Change(lf.conf.ID, func(o *syncproto.Object) error {
		role = o.Role(syncproto.DeviceID(a.n.id.String()))
		return nil
	})
	return role
}

func (a *apiServer) fileDelete(w http.ResponseWriter, r *http.Request) {
	lf, rel, root, ok := a.fileReq(w, r, r.PathValue("path"), "delete")
	if !ok {
		return
	}
	defer root.Close()
	if err := root.Remove(rel); err != nil {
		writeErr(w, http.StatusNotFound, fmt.Errorf("delete %q in folder %q: %w", rel, lf.conf.Name, err))
		return
	}
	a.rescan(lf)
	writeJSON(w, http.StatusOK, map[string]string{"path": rel})
}

func (a *apiServer) fileHistory(w http.ResponseWriter, r *http.Request) {
	lf, rel, root, ok := a.fileReq(w, r, r.URL.Query().Get("path"), "")
	if !ok {
		return
	}
	root.Close()
	a.writeHistory(w, lf, rel)
}

func (a *apiServer) fileRestore(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Path    string `json:"path"`
		Version int    `json:"version"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	lf, rel, root, ok := a.fileReq(w, r, req.Path, "restore")
	if !ok {
		return
	}
	root.Close()
	a.doRestore(w, r, lf, rel, req.Version)
}

// writeHistory answers with the kept versions of rel (GET /v1/history and
// the HTTP API's history).
func (a *apiServer) writeHistory(w http.ResponseWriter, lf *localFolder, rel string) {
	versions, err := lf.f.History(rel)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	out := []HistoryEntry{}
	for _, v := range versions {
		out = append(out, HistoryEntry{N: v.N, Path: v.Path, By: a.n.deviceNameS(string(v.By)), Kept: v.Kept, ModTime: v.ModTime, Size: v.Size})
	}
	writeJSON(w, http.StatusOK, out)
}

// doRestore restores version n of rel and says so in the news.
func (a *apiServer) doRestore(w http.ResponseWriter, r *http.Request, lf *localFolder, rel string, n int) {
	if err := lf.f.Restore(r.Context(), rel, n); err != nil {
		writeErr(w, http.StatusConflict, fmt.Errorf("restore %s: %w", rel, err))
		return
	}
	a.n.news("restored", "", fmt.Sprintf("device %s restored %s in folder %s", a.n.deviceName(a.n.id), rel, lf.conf.Name))
	writeJSON(w, http.StatusOK, map[string]any{"path": rel, "version": n})
}

// fileResolve resolves a conflict copy: keep "this" (the copy's content
// becomes the file) or "other" (the file stays); the copy goes either way.
func (a *apiServer) fileResolve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Path string `json:"path"`
		Keep string `json:"keep"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	lf, rel, root, ok := a.fileReq(w, r, req.Path, "resolve")
	if !ok {
		return
	}
	defer root.Close()
	if req.Keep != "this" && req.Keep != "other" {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("keep %q: want this (the conflict copy) or other (the file)", req.Keep))
		return
	}
	// Find the item whose conflict copy rel is.
	var orig string
	_ = a.n.sync.Change(lf.conf.ID, func(o *syncproto.Object) error {
		for _, it := range o.Items() {
			fe, ok := it.Body.(*syncproto.FileEntry)
			if !ok || it.Sync.Deleted {
				continue
			}
			for _, c := range it.Sync.Conflicts {
				if folder.ConflictName(fe.Path, c) == rel {
					orig = fe.Path
				}
			}
		}
		return nil
	})
	if orig == "" {
		writeErr(w, http.StatusNotFound, fmt.Errorf("%q in folder %q is not a conflict copy of an unresolved conflict", rel, lf.conf.Name))
		return
	}
	if req.Keep == "this" {
		if err := root.Rename(rel, orig); err != nil {
			writeErr(w, http.StatusConflict, fmt.Errorf("keep %q as %q: %w", rel, orig, err))
			return
		}
		a.rescan(lf) // the copy's content is now a local edit of orig
	}
	if _, err := a.n.sync.Resolve(lf.conf.ID, syncproto.ItemID(orig)); err != nil {
		writeErr(w, http.StatusConflict, fmt.Errorf("resolve %q: %w", orig, err))
		return
	}
	if req.Keep == "other" {
		if err := lf.f.DropResolvedConflicts(r.Context()); err != nil {
			a.n.log.Warn("drop resolved conflict copies", "folder", lf.conf.Name, "err", err)
		}
		if _, err := root.Lstat(rel); err == nil { // edited copies are not dropped: remove it
			_ = root.Remove(rel)
			a.rescan(lf)
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"path": orig, "kept": req.Keep})
}

// blobReader reads a blob chunk by chunk from the store (each chunk
// verified by the store) as an io.ReadSeeker for http.ServeContent.
type blobReader struct {
	ctx    context.Context
	n      *Node
	m      blobs.Manifest
	offs   []int64 // offs[i] is chunk i's offset
	size   int64
	pos    int64
	cur    int // index of the cached chunk, -1 none
	data   []byte
	buffer []byte
}

func newBlobReader(ctx context.Context, n *Node, m blobs.Manifest) *blobReader {
	br := &blobReader{ctx: ctx, n: n, m: m, cur: -1}
	for _, c := range m.Chunks {
		br.offs = append(br.offs, br.size)
		br.size += int64(c.Size)
	}
	return br
}

func (b *blobReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += b.pos
	case io.SeekEnd:
		off += b.size
	}
	if off < 0 {
		return 0, errors.New("seek before start")
	}
	b.pos = off
	return off, nil
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.pos >= b.size {
		return 0, io.EOF
	}
	i := sort.Search(len(b.offs), func(i int) bool { return b.offs[i] > b.pos }) - 1
	if i != b.cur {
		d, err := b.n.blobStore.Get(b.ctx, b.m.Chunks[i].ID, b.buffer)
		if err != nil {
			return 0, err
		}
		b.data, b.buffer, b.cur = d, d, i
	}
	k := copy(p, b.data[b.pos-b.offs[i]:])
	b.pos += int64(k)
	return k, nil
}

func (a *apiServer) blobServe(w http.ResponseWriter, r *http.Request) {
	// Both text forms are accepted: the items' "mwblob1-…" and the CLI's.
	s := r.PathValue("ref")
	var ref blobs.BlobRef
	sref, err := syncproto.ParseBlobRef(s)
	if err == nil && strings.HasPrefix(s, "mwblob1-") {
		ref, err = folder.BlobRefOf(sref)
	} else {
		ref, err = blobs.ParseBlobRef(s)
	}
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("blob %q: %w", r.PathValue("ref"), err))
		return
	}
	m, err := a.n.blobStore.Manifest(r.Context(), ref)
	if err != nil {
		writeErr(w, http.StatusNotFound, fmt.Errorf("blob %s is not held on this device: %w", ref, err))
		return
	}
	if missing, err := a.n.blobStore.Missing(r.Context(), m); err != nil || len(missing) > 0 {
		writeErr(w, http.StatusNotFound, fmt.Errorf("blob %s: %d chunks are not on this device", ref, len(missing)))
		return
	}
	w.Header().Set("ETag", `"`+s+`"`)
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	http.ServeContent(streaming(w, r), r, "", time.Time{}, newBlobReader(r.Context(), a.n, m))
}

// apiService is an exposed service in the HTTP API: "target" is the
// address the tunnel leads to ("addr" in the Unix-socket API; both are
// accepted and given).
type apiService struct {
	Name   string   `json:"name"`
	Target string   `json:"target"`
	Addr   string   `json:"addr"`
	Allow  []string `json:"allow"`
}

func (a *apiServer) services(w http.ResponseWriter, _ *http.Request) {
	out := []apiService{}
	for _, s := range a.n.tun.server.Services() {
		e := apiService{Name: s.Name, Target: s.Addr, Addr: s.Addr, Allow: []string{}}
		for _, p := range s.Allow {
			e.Allow = append(e.Allow, p.String())
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *apiServer) serviceExpose(w http.ResponseWriter, r *http.Request) {
	var req apiService
	if !readJSON(w, r, &req) {
		return
	}
	if req.Addr == "" {
		req.Addr = req.Target
	}
	b, _ := json.Marshal(ExposedService{Name: req.Name, Addr: req.Addr, Allow: req.Allow})
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(b))
	a.expose(w, r2)
}
