package node

import (
	"net/http"
	"sort"

	"github.com/meshwork/meshwork/syncproto"
)

// Folder modes on this device (folder.Mode, chosen with 'mesh folder join
// --mode'): full (default), metadata (content on demand: mesh fetch, mesh
// evict), send-only, receive-only. API:
//
//	POST /v1/fetch {"paths": [...]} → [{"path","error"}]  bring a file's content here
//	POST /v1/evict {"paths": [...]} → [{"path","error"}]  drop it; its item stays
//	GET  /v1/folders/{name}/files   → [FileInfo]          every file item, and if it is here

// FileInfo is one element of GET /v1/folders/{name}/files.
type FileInfo struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	Local bool   `json:"local"` // content present on this device
}

// PathResult is one element of the fetch and evict answers.
type PathResult struct {
	Path  string `json:"path"`
	Error string `json:"error,omitempty"`
}

func (a *apiServer) registerModes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/fetch", a.fetchPaths)
	mux.HandleFunc("POST /v1/evict", a.evictPaths)
	mux.HandleFunc("GET /v1/folders/{name}/files", a.folderFiles)
}

func (a *apiServer) onPaths(w http.ResponseWriter, r *http.Request, op func(lf *localFolder, rel string) error) {
	var req struct {
		Paths []string `json:"paths"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	out := []PathResult{} // 200 with an error per path that failed
	for _, p := range req.Paths {
		res := PathResult{Path: p}
		lf, rel, err := a.n.folderForPath(p)
		if err == nil {
			err = op(lf, rel)
		}
		if err != nil {
			res.Error = err.Error()
		}
		out = append(out, res)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *apiServer) fetchPaths(w http.ResponseWriter, r *http.Request) {
	a.n.storageRound(r.Context(), false) // the newest items, also from a storage peer
	a.onPaths(w, r, func(lf *localFolder, rel string) error { return lf.f.Fetch(r.Context(), rel) })
}

func (a *apiServer) evictPaths(w http.ResponseWriter, r *http.Request) {
	a.onPaths(w, r, func(lf *localFolder, rel string) error { return lf.f.Evict(r.Context(), rel) })
}

func (a *apiServer) folderFiles(w http.ResponseWriter, r *http.Request) {
	lf := a.n.folderByName(r.PathValue("name"))
	if lf == nil {
		writeErr(w, http.StatusNotFound, errNoSuchLocalFolder(r.PathValue("name")))
		return
	}
	out := []FileInfo{}
	_ = a.n.sync.Change(lf.conf.ID, func(o *syncproto.Object) error {
		for _, it := range o.Items() {
			fe, ok := it.Body.(*syncproto.FileEntry)
			if it.Sync.Deleted || !ok || fe == nil || !fe.Mode.IsRegular() {
				continue
			}
			out = append(out, FileInfo{Path: fe.Path, Size: fe.Size})
		}
		return nil
	})
	for i := range out {
		out[i].Local = lf.f.Present(out[i].Path)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	writeJSON(w, http.StatusOK, out)
}

type errNoSuchLocalFolder string

func (e errNoSuchLocalFolder) Error() string {
	return "folder " + string(e) + ": this device does not sync it (see 'mesh folder list')"
}
