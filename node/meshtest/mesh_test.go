package meshtest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	"github.com/meshwork/meshwork/node/meshtest"
)

// TestThreeDevicesOnline: three devices form one mesh, and each one's
// device list (what 'mesh devices' shows) has all three members, itself
// included, with the two others online.
func TestThreeDevicesOnline(t *testing.T) {
	t.Parallel()
	m := meshtest.New(t, 3)
	want := map[string]bool{}
	for _, id := range m.IDs() {
		want[id.String()] = true
	}
	if len(want) != 3 {
		t.Fatalf("devices share an ID: %v", m.IDs())
	}
	for _, d := range m.Devices() {
		m.WaitFor(d.Name+" lists the two others online", func() bool {
			online := 0
			for _, o := range m.Devices() {
				if o != d && d.Online(o) {
					online++
				}
			}
			return online == 2
		})
		devs := d.Devices()
		if len(devs) != 3 {
			t.Fatalf("%s lists %d devices, want 3: %+v", d.Name, len(devs), devs)
		}
		for _, dev := range devs {
			if !want[dev.ID] {
				t.Errorf("%s lists a device not of the mesh: %+v", d.Name, dev)
			}
			if dev.Self != (dev.ID == d.ID().String()) {
				t.Errorf("%s: device %s (%s) has self %v", d.Name, dev.Name, dev.ID, dev.Self)
			}
			if !dev.Online {
				t.Errorf("%s lists %s offline", d.Name, dev.Name)
			}
		}
		if devs[0].Role != "owner" && d == m.Device(0) {
			t.Errorf("d0's own role is %q, want owner", devs[0].Role)
		}
	}
}

// TestFolderRoundTrip: a folder shared by d0 is joined by d1 and d2; a
// file written on d0 arrives byte-identical on both, and an edit on d2
// (a new file and a changed one) comes back to d0 and d1.
func TestFolderRoundTrip(t *testing.T) {
	t.Parallel()
	m := meshtest.New(t, 3)
	d0, d1, d2 := m.Device(0), m.Device(1), m.Device(2)
	first := randomBytes(t, 300<<10) // several chunks
	d0.WriteFile("docs", "a/first.bin", first)
	d0.AddFolder("docs")
	d0.WaitFolder("docs")
	for _, d := range []*meshtest.Device{d1, d2} {
		d.JoinFolder("docs")
		res := d.WaitFolder("docs")
		if !contains(res.Peers, "d0") {
			t.Errorf("%s's wait did not sync with d0: %+v", d.Name, res)
		}
		sameFile(t, d, "docs", "a/first.bin", first)
	}

	edited := append(randomBytes(t, 1000), first[:5000]...)
	added := []byte("written on d2\n")
	d2.WriteFile("docs", "a/first.bin", edited)
	d2.WriteFile("docs", "b/new.txt", added)
	d2.WaitFolder("docs") // scanned and pushed
	for _, d := range []*meshtest.Device{d0, d1} {
		d.WaitFolder("docs")
		sameFile(t, d, "docs", "a/first.bin", edited)
		sameFile(t, d, "docs", "b/new.txt", added)
	}
}

// TestRevokedDisconnectedAndRefused: d0 revokes d2; d0 and d1 drop their
// connections to it and no longer count it a member, and a new connection
// from d2 to d0 is refused (the gater), while d0 and d1 stay connected.
func TestRevokedDisconnectedAndRefused(t *testing.T) {
	t.Parallel()
	m := meshtest.New(t, 3)
	d0, d1, d2 := m.Device(0), m.Device(1), m.Device(2)
	if _, err := d0.Node().Revoke(d2.Name); err != nil {
		t.Fatalf("revoke d2: %v", err)
	}
	m.WaitFor("d0 and d1 drop d2", func() bool {
		return !d0.Node().IsMember(d2.ID()) && !d1.Node().IsMember(d2.ID()) &&
			!d0.ConnectedTo(d2) && !d1.ConnectedTo(d2) && !d2.ConnectedTo(d0) && !d2.ConnectedTo(d1)
	})
	if !d0.ConnectedTo(d1) || !d1.Online(d0) {
		t.Fatal("d0 and d1 lost each other when d2 was revoked")
	}
	for _, target := range []*meshtest.Device{d0, d1} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ai := peer.AddrInfo{ID: target.ID(), Addrs: target.Node().Host().Addrs()}
		err := d2.Node().Host().Connect(ctx, ai)
		if err == nil {
			// The handshake can complete on d2's side before the other
			// end's gater refuses the secured connection: d2 sees it
			// closed.
			m.WaitFor(target.Name+" refuses d2's new connection", func() bool { return !d2.ConnectedTo(target) })
		}
		// Nothing gets through: not even a ping (a stream may open on
		// d2's side of a connection being refused; its answer never comes).
		if res := <-ping.Ping(ctx, d2.Node().Host(), target.ID()); res.Error == nil {
			t.Errorf("revoked d2's ping was answered by %s", target.Name)
		}
		cancel()
		if target.ConnectedTo(d2) || target.Node().IsMember(d2.ID()) {
			t.Fatalf("%s took revoked d2 back", target.Name)
		}
	}
	for _, dev := range d1.Devices() {
		if dev.ID == d2.ID().String() && dev.Online {
			t.Fatalf("d1 lists revoked d2 online: %+v", dev)
		}
	}
}

// TestRestartCatchesUp: d1 stops; d0 writes a file; d1 restarts (on the
// ports it had, with its home), the two reconnect, and d1's wait brings the
// file.
func TestRestartCatchesUp(t *testing.T) {
	t.Parallel()
	m := meshtest.New(t, 2)
	d0, d1 := m.Device(0), m.Device(1)
	d0.AddFolder("docs")
	d1.JoinFolder("docs")
	d1.WaitFolder("docs")
	d1.Stop()
	m.WaitFor("d0 sees d1 go", func() bool { return !d0.ConnectedTo(d1) })
	content := randomBytes(t, 100<<10)
	d0.WriteFile("docs", "while-away.bin", content)
	d0.WaitFolder("docs")
	d1.Start()
	m.WaitFor("d0 and d1 connected again", m.Connected)
	d1.WaitFolder("docs")
	sameFile(t, d1, "docs", "while-away.bin", content)
}

// TestRelayReservations: with a relay that admits only this mesh, every
// device proves its membership, holds a reservation and advertises a
// circuit address through it.
func TestRelayReservations(t *testing.T) {
	t.Parallel()
	m := meshtest.New(t, 2, meshtest.WithRelay())
	relayID := m.Relay().ID().String()
	for _, d := range m.Devices() {
		m.WaitFor(d.Name+"'s circuit address through the relay", func() bool {
			for _, a := range d.Node().Host().Addrs() {
				if s := a.String(); strings.Contains(s, "/p2p-circuit") && strings.Contains(s, relayID) {
					return true
				}
			}
			return false
		})
	}
}

// TestStorageHandOff: d0 shares a folder, the storage peer keeps its
// sealed copy, d0 stops; d1 then joins the folder and gets the file from
// the storage peer alone.
func TestStorageHandOff(t *testing.T) {
	t.Parallel()
	m := meshtest.New(t, 2, meshtest.WithStorage())
	d0, d1, s := m.Device(0), m.Device(1), m.Storage()
	content := randomBytes(t, 200<<10)
	d0.WriteFile("docs", "kept.bin", content)
	d0.AddFolder("docs")
	d0.WaitFolder("docs") // also pushes records and uploads to the storage peer
	d0.Stop()
	m.WaitFor("d1 and the storage peer see d0 go", func() bool { return !d1.ConnectedTo(d0) && !s.ConnectedTo(d0) })
	d1.JoinFolder("docs")
	m.WaitFor("d1 has the file from the storage peer", func() bool {
		b, err := d1.ReadFile("docs", "kept.bin")
		return err == nil && bytes.Equal(b, content)
	})
	// The storage peer held only ciphertext: no file of its home has a
	// piece of the plaintext.
	probe := content[100<<10 : 100<<10+64]
	err := filepath.WalkDir(s.Home, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err // the control socket is not a file to read
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, probe) {
			t.Errorf("the storage peer's %s holds plaintext of kept.bin", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNoShippedImport: no package of the module but meshtest's own tests
// imports node/meshtest outside its tests (it imports testing, and meshd
// must not link it).
func TestNoShippedImport(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(goTool, "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/meshwork/meshwork/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if contains(f[1:], "github.com/meshwork/meshwork/node/meshtest") {
			t.Errorf("shipped package %s imports node/meshtest", f[0])
		}
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sameFile(t *testing.T, d *meshtest.Device, folder, rel string, want []byte) {
	t.Helper()
	got, err := d.ReadFile(folder, rel)
	if err != nil {
		t.Fatalf("%s: %v", d.Name, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %s/%s has %d bytes that differ from the %d written", d.Name, folder, rel, len(got), len(want))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
