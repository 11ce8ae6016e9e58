package localapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/node"
)

// fakeMesh is a meshCore of a device that is in a mesh when inMesh.
type fakeMesh struct {
	inMesh  bool
	pings   int // Ping calls
	role    identity.Role
	ttl     time.Duration
	storage bool
}

func (f *fakeMesh) Status() node.Status {
	st := node.Status{DeviceID: "12D3KooWfake", ListenAddrs: []string{}, Folders: []node.FolderInfo{}, Version: "test"}
	if f.inMesh {
		st.MeshID, st.Name, st.Members = strp("mesh-1"), strp("alpha"), 2
	}
	return st
}

func (f *fakeMesh) Init(name string) (identity.MeshID, error) {
	return identity.MeshID{}, fmt.Errorf("init mesh: this device already belongs to mesh x (name %q)", name)
}

func (f *fakeMesh) Invite(role identity.Role, ttl time.Duration, forStorage bool) (node.InviteResponse, error) {
	if !f.inMesh {
		return node.InviteResponse{}, fmt.Errorf("invite: %w", node.ErrNoMesh)
	}
	f.role, f.ttl, f.storage = role, ttl, forStorage
	return node.InviteResponse{Code: "mesh1-code", MeshID: "mesh-1", Role: string(role), Expires: time.Unix(0, 0).UTC()}, nil
}

func (f *fakeMesh) Join(context.Context, string, string) (identity.MeshID, error) {
	return identity.MeshID{}, errors.New("join mesh: invite expired")
}

func (f *fakeMesh) Revoke(who string) (identity.Member, error) {
	return identity.Member{}, fmt.Errorf("revoke %q: no device with that name or ID", who)
}

func (f *fakeMesh) Devices(context.Context) ([]node.Device, error) {
	if !f.inMesh {
		return nil, node.ErrNoMesh
	}
	return []node.Device{{Name: "alpha", ID: "12D3KooWfake", Role: "owner", Online: true, Self: true}}, nil
}

func (f *fakeMesh) CheckPing(who string) error {
	switch {
	case !f.inMesh:
		return node.ErrNoMesh
	case who == "alpha":
		return fmt.Errorf("ping %q: that is this device: %w", who, node.ErrInvalid)
	case who != "bravo":
		return fmt.Errorf("ping %q: no device with that name or ID: %w", who, node.ErrNotFound)
	}
	return nil
}

func (f *fakeMesh) Ping(_ context.Context, who string, count int) ([]node.PingResult, error) {
	f.pings++
	if err := f.CheckPing(who); err != nil {
		return nil, err
	}
	out := []node.PingResult{}
	for i := 1; i <= count; i++ {
		ms := float64(i)
		out = append(out, node.PingResult{Seq: i, RTTMillis: &ms, Connection: strp("direct")})
	}
	return out, nil
}

// TestMeshHandlers drives status, devices, invite, init, join, revoke,
// ping and web over a fake core: before a mesh every route that needs
// one answers 409 with the core's "no mesh" error; after, the JSON.
func TestMeshHandlers(t *testing.T) {
	f := &fakeMesh{}
	ep := &endpoint{}
	mux := lapiMux(&handlers{mesh: &meshAPI{c: f, ep: ep}})

	code, body := lapiDo(t, mux, "GET", "/v1/status", "")
	lapiWant(t, "status before a mesh", code, body, http.StatusOK, "")
	var st node.Status
	lapiDecode(t, body, &st)
	if st.DeviceID != "12D3KooWfake" || st.MeshID != nil || st.HTTP != nil || !strings.Contains(string(body), `"http":null`) {
		t.Fatalf("status before a mesh, HTTP off: %s", body)
	}
	noMesh := node.ErrNoMesh.Error()
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/devices", ""},
		{"GET", "/api/v1/devices", ""},
		{"GET", "/v1/ping?device=bravo", ""},
		{"GET", "/v1/ping?device=bravo&count=0", ""},
		{"POST", "/v1/invite", `{}`},
		{"POST", "/api/v1/invite", `{}`},
	} {
		code, body := lapiDo(t, mux, r.method, r.path, r.body)
		lapiWant(t, r.method+" "+r.path+" before a mesh", code, body, http.StatusConflict, noMesh)
	}
	code, body = lapiDo(t, mux, "GET", "/v1/web", "")
	lapiWant(t, "web with the HTTP API off", code, body, http.StatusConflict, "the HTTP API is off")

	f.inMesh = true
	ep.httpAddr, ep.token = "127.0.0.1:8385", "tok"
	code, body = lapiDo(t, mux, "GET", "/api/v1/status", "")
	lapiWant(t, "status", code, body, http.StatusOK, "")
	lapiDecode(t, body, &st)
	if st.MeshID == nil || *st.MeshID != "mesh-1" || st.HTTP == nil || *st.HTTP != "127.0.0.1:8385" || st.Members != 2 {
		t.Fatalf("status in a mesh: %s", body)
	}
	code, body = lapiDo(t, mux, "GET", "/v1/devices", "")
	lapiWant(t, "devices", code, body, http.StatusOK, "")
	var devs []node.Device
	lapiDecode(t, body, &devs)
	if len(devs) != 1 || devs[0].Name != "alpha" || !devs[0].Self {
		t.Fatalf("devices: %s", body)
	}

	code, body = lapiDo(t, mux, "POST", "/v1/invite", `{"role":"admin","ttl":"2h","storage":true}`)
	lapiWant(t, "invite", code, body, http.StatusOK, "")
	var inv node.InviteResponse
	lapiDecode(t, body, &inv)
	if inv.Code != "mesh1-code" || inv.QR != "" || f.role != identity.RoleAdmin || f.ttl != 2*time.Hour || !f.storage {
		t.Fatalf("invite: %s; core saw role %q ttl %v storage %v", body, f.role, f.ttl, f.storage)
	}
	code, body = lapiDo(t, mux, "POST", "/api/v1/invite", `{}`)
	lapiWant(t, "invite with QR", code, body, http.StatusOK, "")
	lapiDecode(t, body, &inv)
	if !strings.HasPrefix(inv.QR, "data:image/png;base64,") || f.role != identity.RoleMember || f.ttl != 24*time.Hour {
		t.Fatalf("HTTP API invite: QR %.40q, core saw role %q ttl %v (want member, 24h)", inv.QR, f.role, f.ttl)
	}
	code, body = lapiDo(t, mux, "POST", "/v1/invite", `{"ttl":"-1h"}`)
	lapiWant(t, "invite, bad ttl", code, body, http.StatusBadRequest, `ttl "-1h"`)
	code, body = lapiDo(t, mux, "POST", "/v1/invite", `{"role":"emperor"}`)
	lapiWant(t, "invite, bad role", code, body, http.StatusBadRequest, "emperor")

	code, body = lapiDo(t, mux, "POST", "/v1/init", `{"name":"alpha"}`)
	lapiWant(t, "init twice", code, body, http.StatusConflict, "already belongs")
	code, body = lapiDo(t, mux, "POST", "/v1/join", `{"code":"x","name":"b"}`)
	lapiWant(t, "join", code, body, http.StatusConflict, "invite expired")
	code, body = lapiDo(t, mux, "POST", "/v1/revoke", `{"device":"zed"}`)
	lapiWant(t, "revoke", code, body, http.StatusConflict, "no device")

	f.pings = 0
	code, body = lapiDo(t, mux, "GET", "/v1/ping?device=zed&count=500", "")
	lapiWant(t, "ping an unknown device with a bad count", code, body, http.StatusNotFound, "no device")
	code, body = lapiDo(t, mux, "GET", "/v1/ping?device=bravo&count=500", "")
	lapiWant(t, "ping, bad count", code, body, http.StatusBadRequest, `count "500"`)
	if f.pings != 0 {
		t.Fatalf("a bad count pinged %d times", f.pings)
	}
	code, body = lapiDo(t, mux, "GET", "/v1/ping?device=alpha", "")
	lapiWant(t, "ping itself", code, body, http.StatusBadRequest, "that is this device")
	code, body = lapiDo(t, mux, "GET", "/v1/ping?device=bravo&count=2", "")
	lapiWant(t, "ping", code, body, http.StatusOK, "")
	var pr []node.PingResult
	lapiDecode(t, body, &pr)
	if len(pr) != 2 || pr[1].Seq != 2 || pr[1].RTTMillis == nil {
		t.Fatalf("ping: %s", body)
	}

	code, body = lapiDo(t, mux, "GET", "/v1/web", "")
	lapiWant(t, "web", code, body, http.StatusOK, "")
	var web map[string]string
	lapiDecode(t, body, &web)
	if web["url"] != "http://127.0.0.1:8385/login?token=tok" || web["token"] != "tok" {
		t.Fatalf("web: %s", body)
	}
	code, body = lapiDo(t, mux, "GET", "/api/v1/nothing", "")
	lapiWant(t, "unknown API route", code, body, http.StatusNotFound, "no such API route")
}
