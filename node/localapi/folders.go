package localapi

// Folders through the control socket: share, join, list, remove, wait,
// roles, history and restore by local path, fetch and evict (metadata
// mode), and the news stream.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/node/folder"
	"github.com/meshwork/meshwork/syncproto"
)

// folderCore is what the folder handlers ask of the core.
type folderCore interface {
	AddFolder(ctx context.Context, path, name string) (node.FolderConf, error)
	JoinFolderMode(ctx context.Context, name, path string, mode folder.Mode) (node.FolderConf, error)
	RemoveFolder(name string) error
	Folders() []node.FolderInfo
	ShareFolder(name, device, role string) (peer.ID, syncproto.Role, error)
	WaitFolder(ctx context.Context, name string) (node.WaitResult, error)
	FolderFiles(name string) ([]node.FileInfo, error)
	History(path string) ([]node.HistoryEntry, error)
	Restore(ctx context.Context, path string, version int) (string, error)
	FetchPaths(ctx context.Context, paths []string) []node.PathResult
	EvictPaths(ctx context.Context, paths []string) []node.PathResult
	News() []node.NewsEntry
	NewsChanged() <-chan struct{}
}

type folderAPI struct{ c folderCore }

// add is POST /v1/folders {"path","name"}: share a directory as a new
// folder.
func (a *folderAPI) add(w http.ResponseWriter, r *http.Request) {
	var req struct{ Path, Name string }
	if !readJSON(w, r, &req) {
		return
	}
	c, err := a.c.AddFolder(r.Context(), req.Path, req.Name)
	if err != nil {
		writeErr(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// join is POST /v1/folders/join {"name","path","mode"}.
func (a *folderAPI) join(w http.ResponseWriter, r *http.Request) {
	var req struct{ Name, Path, Mode string }
	if !readJSON(w, r, &req) {
		return
	}
	mode, err := folder.ParseMode(req.Mode)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	c, err := a.c.JoinFolderMode(r.Context(), req.Name, req.Path, mode)
	if err != nil {
		writeErr(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// remove is DELETE /v1/folders/{name}: stop syncing it here (files stay).
func (a *folderAPI) remove(w http.ResponseWriter, r *http.Request) {
	if err := a.c.RemoveFolder(r.PathValue("name")); err != nil {
		writeErr(w, http.StatusNotFound, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"name": r.PathValue("name")})
}

// list is GET /v1/folders and /api/v1/folders.
func (a *folderAPI) list(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.c.Folders())
}

// share is POST /v1/folders/share {"name","device","role"}.
func (a *folderAPI) share(w http.ResponseWriter, r *http.Request) {
	var req struct{ Name, Device, Role string }
	if !readJSON(w, r, &req) {
		return
	}
	id, role, err := a.c.ShareFolder(req.Name, req.Device, req.Role)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"name": req.Name, "device": id.String(), "role": role.String()})
}

// wait is GET /v1/folders/{name}/wait?timeout=D (default 10m).
func (a *folderAPI) wait(w http.ResponseWriter, r *http.Request) {
	timeout := 10 * time.Minute
	if s := r.URL.Query().Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("timeout %q: want a duration such as 30s", s))
			return
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	res, err := a.c.WaitFolder(ctx, r.PathValue("name"))
	if err != nil {
		writeErr(w, http.StatusGatewayTimeout, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// files is GET /v1/folders/{name}/files.
func (a *folderAPI) files(w http.ResponseWriter, r *http.Request) {
	answer(w)(a.c.FolderFiles(r.PathValue("name")))
}

// history is GET /v1/history?path=P.
func (a *folderAPI) history(w http.ResponseWriter, r *http.Request) {
	answer(w)(a.c.History(r.URL.Query().Get("path")))
}

// restore is POST /v1/restore {"path","version"}.
func (a *folderAPI) restore(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Path    string `json:"path"`
		Version int    `json:"version"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	rel, err := a.c.Restore(r.Context(), req.Path, req.Version)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"path": rel, "version": req.Version})
}

// pathsReq is the body of fetch and evict.
type pathsReq struct {
	Paths []string `json:"paths"`
}

// fetch is POST /v1/fetch {"paths"}: 200 with an error per path that failed.
func (a *folderAPI) fetch(w http.ResponseWriter, r *http.Request) {
	var req pathsReq
	if !readJSON(w, r, &req) {
		return
	}
	writeJSON(w, http.StatusOK, a.c.FetchPaths(r.Context(), req.Paths))
}

// evict is POST /v1/evict {"paths"}.
func (a *folderAPI) evict(w http.ResponseWriter, r *http.Request) {
	var req pathsReq
	if !readJSON(w, r, &req) {
		return
	}
	writeJSON(w, http.StatusOK, a.c.EvictPaths(r.Context(), req.Paths))
}

// news is GET /v1/news[?follow=1]; with follow, NDJSON: every entry once,
// new ones as they arrive (pushed by the news object's changes, never
// polled).
func (a *folderAPI) news(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("follow") == "" {
		writeJSON(w, http.StatusOK, a.c.News())
		return
	}
	w = streaming(w, r)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	seen := map[string]bool{}
	for {
		wake := a.c.NewsChanged()
		for _, e := range a.c.News() {
			if !seen[e.ID] {
				seen[e.ID] = true
				_ = enc.Encode(e)
			}
		}
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-wake:
		}
	}
}
