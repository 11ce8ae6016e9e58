package meshtest_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/node/meshtest"
)

// TestTunnelThroughMesh: d1 exposes a local echo service to d0; d0's
// tunnel to it carries bytes both ways, is listed while open, and is gone
// once closed (a second close is ErrNotFound); unexposed, the service is no
// longer listed.
func TestTunnelThroughMesh(t *testing.T) {
	t.Parallel()
	m := meshtest.New(t, 2)
	d0, d1 := m.Device(0), m.Device(1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	if _, err := d1.Node().Expose("echo", ln.Addr().String(), []string{d0.Name}); err != nil {
		t.Fatalf("expose echo on d1: %v", err)
	}
	if ex := d1.Node().Exposed(); len(ex) != 1 || ex[0].Name != "echo" || len(ex[0].Allow) != 1 || ex[0].Allow[0] != d0.ID().String() {
		t.Fatalf("d1 exposes %+v, want echo for d0", ex)
	}
	m.WaitFor("d0 and d1 connected", func() bool { return d0.ConnectedTo(d1) })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ti, done, err := d0.Node().OpenTunnel(ctx, d1.Name, "echo", "")
	if err != nil {
		t.Fatalf("open a tunnel from d0 to d1's echo: %v", err)
	}
	if ti.ID != 1 || ti.Device != d1.ID().String() || ti.Service != "echo" {
		t.Fatalf("tunnel info %+v, want ID 1 to d1's echo", ti)
	}
	c, err := net.Dial("tcp", ti.LocalAddr)
	if err != nil {
		t.Fatalf("dial the tunnel at %s: %v", ti.LocalAddr, err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	msg := []byte("through the mesh")
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("write to the tunnel: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
		t.Fatalf("echo through the tunnel: %q, %v; want %q", got, err, msg)
	}
	c.Close()
	if ts := d0.Node().Tunnels(); len(ts) != 1 || ts[0].ID != ti.ID {
		t.Fatalf("d0 lists tunnels %+v, want the one opened", ts)
	}
	if err := d0.Node().CloseTunnel(ti.ID); err != nil {
		t.Fatalf("close tunnel %d: %v", ti.ID, err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the closed tunnel's done channel stayed open")
	}
	if ts := d0.Node().Tunnels(); len(ts) != 0 {
		t.Fatalf("d0 lists tunnels %+v after closing the only one", ts)
	}
	if err := d0.Node().CloseTunnel(ti.ID); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("second close of tunnel %d: %v, want ErrNotFound", ti.ID, err)
	}
	if err := d1.Node().Unexpose("echo"); err != nil {
		t.Fatalf("unexpose echo on d1: %v", err)
	}
	if ex := d1.Node().Exposed(); len(ex) != 0 {
		t.Fatalf("d1 exposes %+v after unexposing echo", ex)
	}
}
