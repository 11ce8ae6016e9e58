package node

// Folder files and blobs for the HTTP API (node/API.md; the routes are in
// node/localapi): listing, download, atomic upload, delete, history,
// restore and conflict resolution. Every path is opened through os.Root at
// the folder's root, so no name (.., absolute, or a symlink) reaches
// outside the folder, and the folder's internal .meshwork/ directory is
// never served or written.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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

// localFolderNamed finds the folder name synced on this device:
// ErrConflict when it is in the mesh but not synced here, ErrNotFound when
// there is no such folder.
func (n *Node) localFolderNamed(name string) (*localFolder, error) {
	lf := n.folderByName(name)
	if lf == nil {
		if _, ok := n.catalog()[name]; ok {
			return nil, withKind(ErrConflict, fmt.Errorf("folder %q is not synced on this device: join it with 'mesh folder join %s PATH'", name, name))
		}
		return nil, withKind(ErrNotFound, fmt.Errorf("folder %q: no such folder", name))
	}
	return lf, nil
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

// FolderFileList lists the files of the folder name synced here, with
// the conflict copies of each (GET /api/v1/folders/{name}/files).
func (n *Node) FolderFileList(name string) ([]File, error) {
	lf, err := n.localFolderNamed(name)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(lf.conf.Path)
	if err != nil {
		return nil, fmt.Errorf("open folder %q: %w", lf.conf.Name, err)
	}
	defer root.Close()
	var items []syncproto.Item
	_ = n.sync.View(lf.conf.ID, func(o *syncproto.Object) error { items = o.Items(); return nil })
	out := []File{}
	for _, it := range items {
		fe, ok := it.Body.(*syncproto.FileEntry)
		if !ok {
			continue
		}
		top := it.Sync.Top()
		f := File{Path: fe.Path, Size: fe.Size, ModTime: fe.ModTime.UTC(), Dir: fe.Mode.IsDir(), Symlink: fe.Symlink,
			Deleted: it.Sync.Deleted, By: n.deviceNameS(string(top.By)), Updates: it.Sync.Updates, Blob: fe.Blob.String()}
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
			cf := File{Path: name, Size: cfe.Size, ModTime: cfe.ModTime.UTC(), By: n.deviceNameS(string(c.Sync.Top().By)),
				Updates: c.Sync.Updates, Blob: cfe.Blob.String(), ConflictOf: &orig}
			if fi, err := root.Lstat(name); err == nil && fi.Size() == cfe.Size {
				cf.Local = true
			}
			out = append(out, cf)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// folderFile resolves a file request: the folder synced here, the clean
// folder-relative path, and the folder's root opened (close it). With a
// verb ("upload", "delete") this device must also be allowed to write.
func (n *Node) folderFile(name, relRaw, verb string) (*localFolder, string, *os.Root, error) {
	lf, err := n.localFolderNamed(name)
	if err != nil {
		return nil, "", nil, err
	}
	rel, err := cleanRel(relRaw)
	if err != nil {
		return nil, "", nil, withKind(ErrInvalid, err)
	}
	if verb != "" {
		if role := n.localRole(lf); !role.CanWrite() {
			return nil, "", nil, withKind(ErrForbidden, fmt.Errorf("%s %q: this device is a %v of folder %q and may not write to it", verb, rel, role, lf.conf.Name))
		}
	}
	root, err := os.OpenRoot(lf.conf.Path)
	if err != nil {
		return nil, "", nil, fmt.Errorf("open folder %q: %w", lf.conf.Name, err)
	}
	return lf, rel, root, nil
}

// OpenFolderFile opens the regular file rel of the folder name for
// reading (close it); etag is its content's blob reference when the
// replica's item matches the file, else "". Its failures: those of the
// folder; ErrInvalid (the path, or not a regular file); ErrNotFound.
func (n *Node) OpenFolderFile(name, rel string) (_ *os.File, etag string, _ error) {
	lf, rel, root, err := n.folderFile(name, rel, "")
	if err != nil {
		return nil, "", err
	}
	defer root.Close() // the file stays open
	f, err := root.Open(rel)
	if err != nil {
		return nil, "", withKind(ErrNotFound, fmt.Errorf("file %q in folder %q: %w", rel, lf.conf.Name, err))
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, "", withKind(ErrInvalid, fmt.Errorf("file %q in folder %q is not a regular file", rel, lf.conf.Name))
	}
	var it syncproto.Item
	_ = n.sync.View(lf.conf.ID, func(o *syncproto.Object) error { it, _ = o.Item(syncproto.ItemID(rel)); return nil })
	if fe, ok := it.Body.(*syncproto.FileEntry); ok && !fe.Blob.IsZero() && fe.Size == fi.Size() {
		etag = fe.Blob.String()
	}
	return f, etag, nil
}

// PutFolderFile writes body to a temporary file inside the folder's
// internal directory and renames it into place as rel: readers and peers
// never see a partial file, and a failed upload leaves the old file as it
// was. It returns the clean path and the bytes written. Its failures:
// those of the folder; ErrInvalid (the path, or reading body failed);
// ErrForbidden (no write role); ErrConflict (a directory on the path).
func (n *Node) PutFolderFile(ctx context.Context, name, rel string, body io.Reader) (string, int64, error) {
	lf, rel, root, err := n.folderFile(name, rel, "upload")
	if err != nil {
		return "", 0, err
	}
	defer root.Close()
	if dir := path.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return "", 0, withKind(ErrConflict, fmt.Errorf("upload %q: make directory: %w", rel, err))
		}
	}
	tmpDir := internalDirName + "/uploads"
	if err := root.MkdirAll(tmpDir, 0o700); err != nil {
		return "", 0, fmt.Errorf("upload %q: %w", rel, err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := tmpDir + "/" + hex.EncodeToString(rnd[:])
	f, err := root.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", 0, fmt.Errorf("upload %q: %w", rel, err)
	}
	size, err := io.Copy(f, body)
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
		return "", 0, withKind(ErrInvalid, fmt.Errorf("upload %q to folder %q: %w (nothing was changed)", rel, lf.conf.Name, err))
	}
	n.rescan(lf)
	return rel, size, nil
}

// rescan scans the folder now, so an API change is synced at once (the
// watcher would also see it).
func (n *Node) rescan(lf *localFolder) {
	ctx, cancel := context.WithTimeout(n.runCtx, time.Minute)
	defer cancel()
	if err := lf.f.Scan(ctx); err != nil {
		n.log.Warn("scan after API change", "folder", lf.conf.Name, "err", err)
	}
}

// localRole is this device's role in lf.
func (n *Node) localRole(lf *localFolder) syncproto.Role {
	role := syncproto.RoleNone
	_ = n.sync.View(lf.conf.ID, func(o *syncproto.Object) error {
		role = o.Role(syncproto.DeviceID(n.id.String()))
		return nil
	})
	return role
}

// DeleteFolderFile deletes the file rel of the folder name and returns
// its clean path. Its failures: those of the folder; ErrInvalid;
// ErrForbidden; ErrNotFound.
func (n *Node) DeleteFolderFile(name, rel string) (string, error) {
	lf, rel, root, err := n.folderFile(name, rel, "delete")
	if err != nil {
		return "", err
	}
	defer root.Close()
	if err := root.Remove(rel); err != nil {
		return "", withKind(ErrNotFound, fmt.Errorf("delete %q in folder %q: %w", rel, lf.conf.Name, err))
	}
	n.rescan(lf)
	return rel, nil
}

// FolderFileHistory lists the kept versions of rel in the folder name.
func (n *Node) FolderFileHistory(name, rel string) ([]HistoryEntry, error) {
	lf, rel, root, err := n.folderFile(name, rel, "")
	if err != nil {
		return nil, err
	}
	root.Close()
	return n.historyOf(lf, rel)
}

// RestoreFolderFile restores version of rel in the folder name and
// returns its clean path; ErrConflict when the restore fails.
func (n *Node) RestoreFolderFile(ctx context.Context, name, rel string, version int) (string, error) {
	lf, rel, root, err := n.folderFile(name, rel, "restore")
	if err != nil {
		return "", err
	}
	root.Close()
	return rel, n.restoreIn(ctx, lf, rel, version)
}

// ResolveFolderFile resolves the conflict copy rel of the folder name:
// keep "this" (the copy's content becomes the file) or "other" (the file
// stays); the copy goes either way. It returns the file's path. Its
// failures: those of the folder; ErrInvalid (keep); ErrNotFound (not a
// conflict copy); ErrConflict.
func (n *Node) ResolveFolderFile(ctx context.Context, name, rel, keep string) (string, error) {
	lf, rel, root, err := n.folderFile(name, rel, "resolve")
	if err != nil {
		return "", err
	}
	defer root.Close()
	if keep != "this" && keep != "other" {
		return "", withKind(ErrInvalid, fmt.Errorf("keep %q: want this (the conflict copy) or other (the file)", keep))
	}
	// Find the item whose conflict copy rel is.
	var orig string
	_ = n.sync.View(lf.conf.ID, func(o *syncproto.Object) error {
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
		return "", withKind(ErrNotFound, fmt.Errorf("%q in folder %q is not a conflict copy of an unresolved conflict", rel, lf.conf.Name))
	}
	if keep == "this" {
		if err := root.Rename(rel, orig); err != nil {
			return "", withKind(ErrConflict, fmt.Errorf("keep %q as %q: %w", rel, orig, err))
		}
		n.rescan(lf) // the copy's content is now a local edit of orig
	}
	if _, err := n.sync.Resolve(lf.conf.ID, syncproto.ItemID(orig)); err != nil {
		return "", withKind(ErrConflict, fmt.Errorf("resolve %q: %w", orig, err))
	}
	if keep == "other" {
		if err := lf.f.DropResolvedConflicts(ctx); err != nil {
			n.log.Warn("drop resolved conflict copies", "folder", lf.conf.Name, "err", err)
		}
		if _, err := root.Lstat(rel); err == nil { // edited copies are not dropped: remove it
			_ = root.Remove(rel)
			n.rescan(lf)
		}
	}
	return orig, nil
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

// OpenBlob opens the blob ref (either text form: the items'
// "mwblob1-..." or the CLI's) held whole on this device, for reading with
// seeks. Its failures: ErrInvalid (the reference); ErrNotFound (not here,
// or chunks missing).
func (n *Node) OpenBlob(ctx context.Context, s string) (io.ReadSeeker, error) {
	var ref blobs.BlobRef
	sref, err := syncproto.ParseBlobRef(s)
	if err == nil && strings.HasPrefix(s, "mwblob1-") {
		ref, err = folder.BlobRefOf(sref)
	} else {
		ref, err = blobs.ParseBlobRef(s)
	}
	if err != nil {
		return nil, withKind(ErrInvalid, fmt.Errorf("blob %q: %w", s, err))
	}
	m, err := n.blobStore.Manifest(ctx, ref)
	if err != nil {
		return nil, withKind(ErrNotFound, fmt.Errorf("blob %s is not held on this device: %w", ref, err))
	}
	if missing, err := n.blobStore.Missing(ctx, m); err != nil || len(missing) > 0 {
		return nil, withKind(ErrNotFound, fmt.Errorf("blob %s: %d chunks are not on this device", ref, len(missing)))
	}
	return newBlobReader(ctx, n, m), nil
}
