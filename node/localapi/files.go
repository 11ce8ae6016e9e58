package localapi

// Folder files and blobs through the HTTP API (node/API.md): listing,
// download with ranges, atomic upload, delete, history, restore, conflict
// resolution and blob downloads. The core opens every path through the
// folder's os.Root; these handlers only decode and answer.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/meshwork/meshwork/node"
)

// fileCore is what the file handlers ask of the core.
type fileCore interface {
	FolderFileList(name string) ([]node.File, error)
	OpenFolderFile(name, rel string) (_ *os.File, etag string, _ error)
	PutFolderFile(ctx context.Context, name, rel string, body io.Reader) (string, int64, error)
	DeleteFolderFile(name, rel string) (string, error)
	FolderFileHistory(name, rel string) ([]node.HistoryEntry, error)
	RestoreFolderFile(ctx context.Context, name, rel string, version int) (string, error)
	ResolveFolderFile(ctx context.Context, name, rel, keep string) (string, error)
	OpenBlob(ctx context.Context, ref string) (io.ReadSeeker, error)
}

type fileAPI struct{ c fileCore }

// list is GET /api/v1/folders/{name}/files.
func (a *fileAPI) list(w http.ResponseWriter, r *http.Request) {
	answer(w)(a.c.FolderFileList(r.PathValue("name")))
}

// get is GET /api/v1/folders/{name}/files/{path...}[?download=1], with
// ranges and conditional requests.
func (a *fileAPI) get(w http.ResponseWriter, r *http.Request) {
	f, etag, err := a.c.OpenFolderFile(r.PathValue("name"), r.PathValue("path"))
	if err != nil {
		fail(w, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		fail(w, fmt.Errorf("file %q in folder %q: %w", r.PathValue("path"), r.PathValue("name"), err))
		return
	}
	if etag != "" {
		w.Header().Set("ETag", `"`+etag+`"`)
	}
	if r.URL.Query().Get("download") != "" {
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fi.Name()))
	}
	http.ServeContent(streaming(w, r), r, fi.Name(), fi.ModTime(), f)
}

// put is PUT /api/v1/folders/{name}/files/{path...}: the body becomes the
// file, atomically (the core writes a temporary file and renames it).
func (a *fileAPI) put(w http.ResponseWriter, r *http.Request) {
	w = streaming(w, r) // an upload may be large: progress, not a whole-request timeout
	rel, n, err := a.c.PutFolderFile(r.Context(), r.PathValue("name"), r.PathValue("path"), r.Body)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"path": rel, "size": n})
}

// delete is DELETE /api/v1/folders/{name}/files/{path...}.
func (a *fileAPI) delete(w http.ResponseWriter, r *http.Request) {
	rel, err := a.c.DeleteFolderFile(r.PathValue("name"), r.PathValue("path"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"path": rel})
}

// history is GET /api/v1/folders/{name}/history?path=P.
func (a *fileAPI) history(w http.ResponseWriter, r *http.Request) {
	answer(w)(a.c.FolderFileHistory(r.PathValue("name"), r.URL.Query().Get("path")))
}

// restore is POST /api/v1/folders/{name}/restore {"path","version"}.
func (a *fileAPI) restore(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Path    string `json:"path"`
		Version int    `json:"version"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	rel, err := a.c.RestoreFolderFile(r.Context(), r.PathValue("name"), req.Path, req.Version)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"path": rel, "version": req.Version})
}

// resolve is POST /api/v1/folders/{name}/resolve {"path","keep"}: keep
// "this" (the conflict copy) or "other" (the file).
func (a *fileAPI) resolve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Path string `json:"path"`
		Keep string `json:"keep"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	orig, err := a.c.ResolveFolderFile(r.Context(), r.PathValue("name"), req.Path, req.Keep)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"path": orig, "kept": req.Keep})
}

// blob is GET /api/v1/blobs/{ref}: a blob held whole here, with ranges.
func (a *fileAPI) blob(w http.ResponseWriter, r *http.Request) {
	s := r.PathValue("ref")
	rs, err := a.c.OpenBlob(r.Context(), s)
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("ETag", `"`+s+`"`)
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	http.ServeContent(streaming(w, r), r, "", time.Time{}, rs)
}
