package localapi

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/meshwork/meshwork/node"
)

// fakeTunnels is a tunnelCore holding exposed services in a map.
type fakeTunnels struct {
	exposed map[string]node.ExposedService
	closed  []int
}

func (f *fakeTunnels) Expose(name, addr string, allow []string) (node.ExposedService, error) {
	if addr == "" {
		return node.ExposedService{}, fmt.Errorf("expose %q: no address: %w", name, node.ErrInvalid)
	}
	if allow == nil {
		allow = []string{}
	}
	s := node.ExposedService{Name: name, Addr: addr, Allow: allow}
	f.exposed[name] = s
	return s, nil
}

func (f *fakeTunnels) Unexpose(name string) error {
	if _, ok := f.exposed[name]; !ok {
		return fmt.Errorf("service %q is not exposed: %w", name, node.ErrNotFound)
	}
	delete(f.exposed, name)
	return nil
}

func (f *fakeTunnels) Exposed() []node.ExposedService {
	out := []node.ExposedService{}
	for _, s := range f.exposed {
		out = append(out, s)
	}
	return out
}

func (f *fakeTunnels) OpenTunnel(context.Context, string, string, string) (node.TunnelInfo, <-chan struct{}, error) {
	return node.TunnelInfo{}, nil, node.ErrNoMesh
}

func (f *fakeTunnels) Tunnels() []node.TunnelInfo { return []node.TunnelInfo{} }

func (f *fakeTunnels) CloseTunnel(id int) error {
	f.closed = append(f.closed, id)
	return fmt.Errorf("no tunnel %d (see 'mesh tunnels'): %w", id, node.ErrNotFound)
}

// TestTunnelHandlers checks that the CLI's expose routes and the HTTP
// API's services routes are one operation with two JSON shapes ("addr"
// and "target"), and the status codes of their failures.
func TestTunnelHandlers(t *testing.T) {
	f := &fakeTunnels{exposed: map[string]node.ExposedService{}}
	mux := lapiMux(&handlers{tunnels: &tunnelAPI{c: f}})

	code, body := lapiDo(t, mux, "POST", "/v1/expose", `{"name":"web","addr":"127.0.0.1:8080"}`)
	lapiWant(t, "expose", code, body, http.StatusOK, "")
	code, body = lapiDo(t, mux, "POST", "/api/v1/services", `{"name":"db","target":"127.0.0.1:5432"}`)
	lapiWant(t, "services expose", code, body, http.StatusOK, "")
	if f.exposed["db"].Addr != "127.0.0.1:5432" {
		t.Fatalf("services expose: the core got %+v, want the target as addr", f.exposed["db"])
	}
	code, body = lapiDo(t, mux, "POST", "/api/v1/services", `{"name":"x"}`)
	lapiWant(t, "services expose without an address", code, body, http.StatusBadRequest, "no address")

	code, body = lapiDo(t, mux, "GET", "/api/v1/services", "")
	lapiWant(t, "services", code, body, http.StatusOK, "")
	var svcs []apiService
	lapiDecode(t, body, &svcs)
	if len(svcs) != 2 {
		t.Fatalf("services: %s", body)
	}
	for _, s := range svcs {
		if s.Target == "" || s.Target != s.Addr || s.Allow == nil {
			t.Fatalf("services: %s: want target = addr and allow []", body)
		}
	}
	code, body = lapiDo(t, mux, "DELETE", "/api/v1/services/web", "")
	lapiWant(t, "services unexpose", code, body, http.StatusOK, "")
	code, body = lapiDo(t, mux, "POST", "/v1/unexpose", `{"name":"web"}`)
	lapiWant(t, "unexpose twice", code, body, http.StatusNotFound, "not exposed")
	code, body = lapiDo(t, mux, "GET", "/v1/exposed", "")
	lapiWant(t, "exposed", code, body, http.StatusOK, "")
	var exp []node.ExposedService
	lapiDecode(t, body, &exp)
	if len(exp) != 1 || exp[0].Name != "db" {
		t.Fatalf("exposed after unexpose: %s", body)
	}

	code, body = lapiDo(t, mux, "POST", "/v1/tunnels", `{"device":"b","service":"web"}`)
	lapiWant(t, "tunnel before a mesh", code, body, http.StatusConflict, node.ErrNoMesh.Error())
	code, body = lapiDo(t, mux, "DELETE", "/v1/tunnels/x", "")
	lapiWant(t, "close tunnel x", code, body, http.StatusBadRequest, "not a number")
	code, body = lapiDo(t, mux, "DELETE", "/v1/tunnels/7", "")
	lapiWant(t, "close tunnel 7", code, body, http.StatusNotFound, "no tunnel 7")
	if len(f.closed) != 1 || f.closed[0] != 7 {
		t.Fatalf("close: the core saw %v", f.closed)
	}
}
