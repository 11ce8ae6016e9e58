package localapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
)

// handlers are the API's handler groups, one per file, each holding only
// the part of the core its file declares.
type handlers struct {
	log     *slog.Logger
	mesh    *meshAPI
	folders *folderAPI
	files   *fileAPI
	objects *objectAPI
	tunnels *tunnelAPI
	blobs   *blobAPI
	events  *eventAPI
	storage *storageAPI
}

func newHandlers(c Core, ep *endpoint, log *slog.Logger) *handlers {
	return &handlers{
		log:     log,
		mesh:    &meshAPI{c: c, ep: ep},
		folders: &folderAPI{c: c},
		files:   &fileAPI{c: c},
		objects: &objectAPI{c: c, ep: ep},
		tunnels: &tunnelAPI{c: c, log: log},
		blobs:   &blobAPI{c: c},
		events:  &eventAPI{c: c},
		storage: &storageAPI{c: c},
	}
}

// socketRoutes are the control socket's routes (the CLI's): /v1/, the
// /api/v1/ routes without a token, and Go's profiler.
func (h *handlers) socketRoutes(mux *http.ServeMux) {
	m, f, t := h.mesh, h.folders, h.tunnels
	mux.HandleFunc("GET /v1/status", m.status)
	mux.HandleFunc("POST /v1/init", m.init)
	mux.HandleFunc("POST /v1/invite", m.invite(false))
	mux.HandleFunc("POST /v1/join", m.join)
	mux.HandleFunc("GET /v1/devices", m.devices)
	mux.HandleFunc("POST /v1/revoke", m.revoke)
	mux.HandleFunc("GET /v1/ping", m.ping)
	mux.HandleFunc("GET /v1/web", m.webURL)
	mux.HandleFunc("POST /v1/blobs/add", h.blobs.add)
	mux.HandleFunc("POST /v1/blobs/get", h.blobs.get)
	mux.HandleFunc("POST /v1/expose", t.expose)
	mux.HandleFunc("POST /v1/unexpose", t.unexpose)
	mux.HandleFunc("GET /v1/exposed", t.exposed)
	mux.HandleFunc("POST /v1/tunnels", t.open)
	mux.HandleFunc("GET /v1/tunnels", t.list)
	mux.HandleFunc("DELETE /v1/tunnels/{id}", t.close)
	mux.HandleFunc("GET /v1/news", f.news)
	mux.HandleFunc("POST /v1/folders", f.add)
	mux.HandleFunc("POST /v1/folders/join", f.join)
	mux.HandleFunc("POST /v1/folders/share", f.share)
	mux.HandleFunc("GET /v1/folders", f.list)
	mux.HandleFunc("DELETE /v1/folders/{name}", f.remove)
	mux.HandleFunc("GET /v1/folders/{name}/wait", f.wait)
	mux.HandleFunc("GET /v1/folders/{name}/files", f.files)
	mux.HandleFunc("GET /v1/history", f.history)
	mux.HandleFunc("POST /v1/restore", f.restore)
	mux.HandleFunc("POST /v1/fetch", f.fetch)
	mux.HandleFunc("POST /v1/evict", f.evict)
	mux.HandleFunc("GET /v1/storage", h.storage.status)
	h.apiV1Routes(mux)
	// Profiling, for `make bench` and debugging; the socket is 0600.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// apiV1Routes are the /api/v1/ routes, mounted on both listeners (on the
// TCP one behind the token).
func (h *handlers) apiV1Routes(mux *http.ServeMux) {
	m, o, fi := h.mesh, h.objects, h.files
	mux.HandleFunc("GET /api/v1/status", m.status)
	mux.HandleFunc("GET /api/v1/devices", m.devices)
	mux.HandleFunc("POST /api/v1/invite", m.invite(true))
	mux.HandleFunc("GET /api/v1/news", h.folders.news)
	mux.HandleFunc("GET /api/v1/objects", o.list)
	mux.HandleFunc("POST /api/v1/objects", o.create)
	mux.HandleFunc("GET /api/v1/objects/{name}/feed", o.feedGet)
	mux.HandleFunc("POST /api/v1/objects/{name}/feed", o.feedPost)
	mux.HandleFunc("GET /api/v1/objects/{name}/items", o.items)
	mux.HandleFunc("POST /api/v1/objects/{name}/items", o.itemCreate)
	mux.HandleFunc("PUT /api/v1/objects/{name}/items/{id}", o.itemPut)
	mux.HandleFunc("DELETE /api/v1/objects/{name}/items/{id}", o.itemDelete)
	mux.HandleFunc("POST /api/v1/objects/{name}/items/{id}/resolve", o.itemResolve)
	mux.HandleFunc("GET /api/v1/folders", h.folders.list)
	mux.HandleFunc("GET /api/v1/folders/{name}/files", fi.list)
	mux.HandleFunc("GET /api/v1/folders/{name}/files/{path...}", fi.get)
	mux.HandleFunc("PUT /api/v1/folders/{name}/files/{path...}", fi.put)
	mux.HandleFunc("DELETE /api/v1/folders/{name}/files/{path...}", fi.delete)
	mux.HandleFunc("GET /api/v1/folders/{name}/history", fi.history)
	mux.HandleFunc("POST /api/v1/folders/{name}/restore", fi.restore)
	mux.HandleFunc("POST /api/v1/folders/{name}/resolve", fi.resolve)
	mux.HandleFunc("GET /api/v1/blobs/{ref}", fi.blob)
	mux.HandleFunc("GET /api/v1/services", h.tunnels.services)
	mux.HandleFunc("POST /api/v1/services", h.tunnels.serviceExpose)
	mux.HandleFunc("DELETE /api/v1/services/{name}", h.tunnels.unexposeName)
	mux.HandleFunc("GET /api/v1/events", h.events.stream)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, fmt.Errorf("%s %s: no such API route (see node/API.md)", r.Method, r.URL.Path))
	})
}
