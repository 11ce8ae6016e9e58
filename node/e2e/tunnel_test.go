package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node"
)

// countingServer is an HTTP service that counts the TCP connections that
// reach it, so a refusal can be asserted on the service side.
func countingServer(t *testing.T, body string) (addr string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int64)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), conns
}

func httpGet(addr string) (string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestTunnelDaemons(t *testing.T) {
	a, b, c := startDaemon(t, "a"), startDaemon(t, "b"), startDaemon(t, "c")
	a.mesh("init", "--name", "alpha")
	b.mesh("join", a.invite(), "--name", "bravo")
	c.mesh("join", a.invite(), "--name", "charlie")
	idB := b.status().DeviceID
	waitFor(t, 20*time.Second, "a and c see b", func() bool { return a.online(idB) && c.online(idB) })

	const page = "hello through the mesh\n"
	svc, conns := countingServer(t, page)
	b.mesh("expose", "web", svc, "--allow", "alpha")
	if out := b.mesh("exposed", "--json"); !strings.Contains(out, `"name":"web"`) {
		t.Fatalf("exposed: %s", out)
	}

	// A (allowed) fetches the page through a background tunnel.
	info := openBackgroundTunnel(t, a, "bravo", "web")
	got, err := httpGet(info.LocalAddr)
	if err != nil || got != page {
		t.Fatalf("through the tunnel: %q %v", got, err)
	}
	if conns.Load() != 1 {
		t.Fatalf("service saw %d connections, want 1", conns.Load())
	}
	waitFor(t, 5*time.Second, "news of the tunnel on b", func() bool {
		return strings.Contains(b.mesh("news"), `device alpha opened a tunnel to service "web"`)
	})

	// C is a member but not on the allow list: refused, and no connection
	// reaches the service.
	out := c.mesh("tunnel", "bravo", "web", "--background")
	local := strings.Fields(out)[2]
	if _, err := httpGet(local); err == nil {
		t.Fatal("a device not on the allow list got through")
	}
	if conns.Load() != 1 {
		t.Fatalf("a refused tunnel reached the service (%d connections)", conns.Load())
	}
	waitFor(t, 5*time.Second, "news of the refusal on b", func() bool {
		return strings.Contains(b.mesh("news"), "refused a tunnel")
	})

	// Close the background tunnel: its port stops accepting.
	a.mesh("tunnel", "close", fmt.Sprint(info.ID))
	if _, err := httpGet(info.LocalAddr); err == nil {
		t.Fatal("closed tunnel still forwards")
	}

	// Foreground tunnel: lives as long as the command, stops on Ctrl-C.
	cmd := exec.Command(filepath.Join(binDir, "mesh"), "--home", a.home, "tunnel", "bravo", "web")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatal("foreground tunnel printed nothing")
	}
	fg := strings.Fields(sc.Text())[2] // "listening on ADDR → ..."
	if got, err := httpGet(fg); err != nil || got != page {
		t.Fatalf("foreground tunnel: %q %v", got, err)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mesh tunnel exit after Ctrl-C: %v", err)
	}
	waitFor(t, 5*time.Second, "the foreground tunnel to close", func() bool {
		_, err := httpGet(fg)
		return err != nil
	})
}

// openBackgroundTunnel opens a daemon-held tunnel and returns it as
// `mesh tunnels --json` lists it.
func openBackgroundTunnel(t *testing.T, d *daemon, device, service string) node.TunnelInfo {
	t.Helper()
	d.mesh("tunnel", device, service, "--background")
	var list []node.TunnelInfo
	if err := json.Unmarshal([]byte(d.mesh("tunnels", "--json")), &list); err != nil || len(list) == 0 {
		t.Fatalf("tunnels: %v %v", list, err)
	}
	return list[len(list)-1]
}
