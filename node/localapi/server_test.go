package localapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/meshwork/meshwork/node"
)

// lapiCore is a Core of fakes; the groups left as nil interfaces are
// never called by the test that uses it.
type lapiCore struct {
	*fakeMesh
	*fakeFolders
	fileCore
	*fakeObjects
	*fakeTunnels
	blobCore
	eventCore
	storageCore
}

// TestServerLifecycle runs Listen, Serve and Close as meshd does: the
// control socket is 0600 and refuses a second server on the same home,
// both listeners answer (the socket without a token, TCP only with one),
// status names the HTTP address, and when Serve's context ends Serve
// returns and the socket is gone; Close is safe after it, twice.
func TestServerLifecycle(t *testing.T) {
	home := t.TempDir()
	core := &lapiCore{fakeMesh: &fakeMesh{inMesh: true}, fakeFolders: &fakeFolders{}, fakeObjects: &fakeObjects{},
		fakeTunnels: &fakeTunnels{exposed: map[string]node.ExposedService{}}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := Listen(core, Config{Home: home, HTTPAddr: "127.0.0.1:0", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	sock := node.SocketPath(home)
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("control socket: %v, mode %v; want a socket with mode 0600", err, fi.Mode())
	}
	if _, err := Listen(core, Config{Home: home, HTTPAddr: "off", Log: log}); err == nil || !strings.Contains(err.Error(), "another meshd is already running") {
		t.Fatalf("second Listen on the same home: %v, want another meshd is already running", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { s.Serve(ctx); close(served) }()
	t.Cleanup(func() { cancel(); <-served })

	unix := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := unix.Get("http://meshd/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var st node.Status
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || st.HTTP == nil || *st.HTTP != s.HTTPAddr() || s.HTTPAddr() == "" {
		t.Fatalf("status over the socket: %d %v, http %v, want %q", resp.StatusCode, err, st.HTTP, s.HTTPAddr())
	}
	for _, tc := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer " + s.ep.token, 200}} {
		req, _ := http.NewRequest("GET", "http://"+s.HTTPAddr()+"/api/v1/objects", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Fatalf("TCP /api/v1/objects with %q: status %d, want %d", tc.auth, resp.StatusCode, tc.want)
		}
	}

	cancel()
	<-served
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("after Serve returned the socket is still there: %v", err)
	}
	if _, err := net.Dial("tcp", s.HTTPAddr()); err == nil {
		t.Fatalf("after Serve returned the HTTP API still accepts connections")
	}
	_ = s.Close()
	_ = s.Close()
}
