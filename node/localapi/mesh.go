package localapi

// The mesh and this device: status, init, invites, join, devices, revoke,
// ping, and the web desktop's login URL.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"rsc.io/qr"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/node"
)

// meshCore is what the mesh handlers ask of the core.
type meshCore interface {
	Status() node.Status
	Init(name string) (identity.MeshID, error)
	Invite(role identity.Role, ttl time.Duration, forStorage bool) (node.InviteResponse, error)
	Join(ctx context.Context, code, name string) (identity.MeshID, error)
	Revoke(who string) (identity.Member, error)
	Devices(ctx context.Context) ([]node.Device, error)
	CheckPing(who string) error
	Ping(ctx context.Context, who string, count int) ([]node.PingResult, error)
}

type meshAPI struct {
	c  meshCore
	ep *endpoint
}

// status is GET /v1/status.
func (a *meshAPI) status(w http.ResponseWriter, _ *http.Request) {
	st := a.c.Status()
	if a.ep.httpAddr != "" {
		st.HTTP = strp(a.ep.httpAddr)
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *meshAPI) init(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	id, err := a.c.Init(req.Name)
	if err != nil {
		writeErr(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"mesh_id": id.String()})
}

// invite is POST /v1/invite; withQR also gives the code as a QR code PNG
// (the HTTP API's /api/v1/invite, for the web desktop).
func (a *meshAPI) invite(withQR bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { a.makeInvite(w, r, withQR) }
}

func (a *meshAPI) makeInvite(w http.ResponseWriter, r *http.Request, withQR bool) {
	var req struct {
		Role    string `json:"role"`
		TTL     string `json:"ttl"`
		Storage bool   `json:"storage"` // for a storage peer: no mesh content key in the code
	}
	if !readJSON(w, r, &req) {
		return
	}
	if req.Role == "" {
		req.Role = string(identity.RoleMember)
	}
	role, err := identity.ParseRole(req.Role)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	ttl := 24 * time.Hour
	if req.TTL != "" {
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("ttl %q: want a positive duration such as 24h", req.TTL))
			return
		}
	}
	out, err := a.c.Invite(role, ttl, req.Storage)
	if err != nil {
		writeErr(w, http.StatusConflict, err)
		return
	}
	if withQR {
		if c, err := qr.Encode(out.Code, qr.L); err == nil {
			c.Scale = 4
			out.QR = "data:image/png;base64," + base64.StdEncoding.EncodeToString(c.PNG())
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *meshAPI) join(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code string `json:"code"`
		Name string `json:"name"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	id, err := a.c.Join(r.Context(), req.Code, req.Name)
	if err != nil {
		writeErr(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"mesh_id": id.String()})
}

func (a *meshAPI) revoke(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Device string `json:"device"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	m, err := a.c.Revoke(req.Device)
	if err != nil {
		writeErr(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": m.ID.String(), "name": m.Name})
}

func (a *meshAPI) devices(w http.ResponseWriter, r *http.Request) {
	answer(w)(a.c.Devices(r.Context()))
}

// ping is GET /v1/ping?device=NAME|ID&count=N (N ≤ 100, default 3).
func (a *meshAPI) ping(w http.ResponseWriter, r *http.Request) {
	who := r.URL.Query().Get("device")
	count := 3
	if c := r.URL.Query().Get("count"); c != "" {
		if _, err := fmt.Sscan(c, &count); err != nil || count < 1 || count > 100 {
			if !a.pingTargetOK(w, who) {
				return
			}
			writeErr(w, http.StatusBadRequest, fmt.Errorf("count %q: want 1 to 100", c))
			return
		}
	}
	answer(w)(a.c.Ping(r.Context(), who, count))
}

// pingTargetOK answers the failures the core finds in who, which come
// before a bad count (the order the API has always checked them in).
func (a *meshAPI) pingTargetOK(w http.ResponseWriter, who string) bool {
	if err := a.c.CheckPing(who); err != nil {
		fail(w, err)
		return false
	}
	return true
}

// webURL is GET /v1/web (Unix socket only): the web desktop's login URL.
func (a *meshAPI) webURL(w http.ResponseWriter, _ *http.Request) {
	if a.ep.httpAddr == "" {
		writeErr(w, http.StatusConflict, errors.New("the HTTP API is off: restart meshd without --http off"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"url":   "http://" + a.ep.httpAddr + "/login?token=" + a.ep.token,
		"addr":  a.ep.httpAddr,
		"token": a.ep.token,
	})
}
