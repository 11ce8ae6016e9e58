package localapi

// Tunnels: exposed services (the CLI's /v1/expose and the HTTP API's
// /api/v1/services are the same operations with two JSON shapes) and
// client-side forwards.
//
//	POST   /v1/expose   {"name","addr","allow":[DEVICE...]} (names or IDs)
//	POST   /v1/unexpose {"name"}
//	GET    /v1/exposed  → [ExposedService]
//	POST   /v1/tunnels  {"device","service","local","follow"} → TunnelInfo;
//	       with follow, the answer is NDJSON: one TunnelInfo line, and the
//	       tunnel lives until the request ends
//	GET    /v1/tunnels  → [TunnelInfo]
//	DELETE /v1/tunnels/{id}

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/meshwork/meshwork/node"
)

// tunnelCore is what the tunnel handlers ask of the core.
type tunnelCore interface {
	Expose(name, addr string, allow []string) (node.ExposedService, error)
	Unexpose(name string) error
	Exposed() []node.ExposedService
	OpenTunnel(ctx context.Context, device, service, local string) (_ node.TunnelInfo, done <-chan struct{}, _ error)
	Tunnels() []node.TunnelInfo
	CloseTunnel(id int) error
}

type tunnelAPI struct {
	c   tunnelCore
	log *slog.Logger
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

func (a *tunnelAPI) doExpose(w http.ResponseWriter, req node.ExposedService) {
	answer(w)(a.c.Expose(req.Name, req.Addr, req.Allow))
}

func (a *tunnelAPI) doUnexpose(w http.ResponseWriter, name string) {
	if err := a.c.Unexpose(name); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"name": name})
}

// expose is POST /v1/expose.
func (a *tunnelAPI) expose(w http.ResponseWriter, r *http.Request) {
	var req node.ExposedService
	if !readJSON(w, r, &req) {
		return
	}
	a.doExpose(w, req)
}

// serviceExpose is POST /api/v1/services {"name","target"|"addr","allow"}.
func (a *tunnelAPI) serviceExpose(w http.ResponseWriter, r *http.Request) {
	var req apiService
	if !readJSON(w, r, &req) {
		return
	}
	if req.Addr == "" {
		req.Addr = req.Target
	}
	a.doExpose(w, node.ExposedService{Name: req.Name, Addr: req.Addr, Allow: req.Allow})
}

// unexpose is POST /v1/unexpose {"name"}.
func (a *tunnelAPI) unexpose(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	a.doUnexpose(w, req.Name)
}

// unexposeName is DELETE /api/v1/services/{name}.
func (a *tunnelAPI) unexposeName(w http.ResponseWriter, r *http.Request) {
	a.doUnexpose(w, r.PathValue("name"))
}

// exposed is GET /v1/exposed.
func (a *tunnelAPI) exposed(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.c.Exposed())
}

// services is GET /api/v1/services.
func (a *tunnelAPI) services(w http.ResponseWriter, _ *http.Request) {
	out := []apiService{}
	for _, s := range a.c.Exposed() {
		out = append(out, apiService{Name: s.Name, Target: s.Addr, Addr: s.Addr, Allow: s.Allow})
	}
	writeJSON(w, http.StatusOK, out)
}

// open is POST /v1/tunnels.
func (a *tunnelAPI) open(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Device  string `json:"device"`
		Service string `json:"service"`
		Local   string `json:"local"`
		Follow  bool   `json:"follow"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	info, done, err := a.c.OpenTunnel(r.Context(), req.Device, req.Service, req.Local)
	if err != nil {
		fail(w, err)
		return
	}
	if !req.Follow {
		writeJSON(w, http.StatusOK, info)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(info)
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	select {
	case <-r.Context().Done():
	case <-done:
	}
	_ = a.c.CloseTunnel(info.ID)
	a.log.Info("tunnel closed", "id", info.ID)
}

// list is GET /v1/tunnels.
func (a *tunnelAPI) list(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.c.Tunnels())
}

// close is DELETE /v1/tunnels/{id}.
func (a *tunnelAPI) close(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("tunnel id %q: not a number", r.PathValue("id")))
		return
	}
	if err := a.c.CloseTunnel(id); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"id": id})
}
