package relay_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshwork/meshwork/relay"
)

func TestReadFile(t *testing.T) {
	m := newTestMesh(t)
	dev := peerID(t, newKey(t))
	path := filepath.Join(t.TempDir(), relay.ConfigFile)
	data := `{
  "listen": ["/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"],
  "announce": ["/dns4/relay.example.org/tcp/4001"],
  "allow_mesh": ["` + m.log.MeshID().String() + `"],
  "allow_device": ["` + dev.String() + `"],
  "metrics": "127.0.0.1:9464",
  "log_level": "debug",
  "limits": {"data": "1GiB", "duration": "90m", "max_reservations": 10, "buffer_size": 65536},
  "resources": {"memory": "512MiB", "fds": 4096}
}`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := relay.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Config(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.ListenAddrs) != 2 || len(cfg.AnnounceAddrs) != 1 {
		t.Errorf("addresses: %v %v", cfg.ListenAddrs, cfg.AnnounceAddrs)
	}
	if len(cfg.AllowMeshes) != 1 || cfg.AllowMeshes[0] != m.log.MeshID() {
		t.Errorf("meshes: %v", cfg.AllowMeshes)
	}
	if len(cfg.AllowDevices) != 1 || cfg.AllowDevices[0] != dev {
		t.Errorf("devices: %v", cfg.AllowDevices)
	}
	if cfg.Limits.Data != 1<<30 || cfg.Limits.Duration != 90*time.Minute || cfg.Limits.MaxReservations != 10 || cfg.Limits.BufferSize != 65536 {
		t.Errorf("limits: %+v", cfg.Limits)
	}
	if cfg.ResourceMemory != 512<<20 || cfg.ResourceFDs != 4096 || cfg.MetricsAddr != "127.0.0.1:9464" {
		t.Errorf("resources/metrics: %d %d %q", cfg.ResourceMemory, cfg.ResourceFDs, cfg.MetricsAddr)
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := relay.ReadFile(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	f, err := relay.ReadFileIfExists(filepath.Join(dir, "missing.json"))
	if err != nil || f == nil {
		t.Errorf("missing optional file: %v", err)
	}
	for name, data := range map[string]string{
		"unknown field": `{"alow_mesh": []}`,
		"bad size":      `{"limits": {"data": "12 parsecs"}}`,
		"bad duration":  `{"limits": {"duration": "soon"}}`,
	} {
		path := filepath.Join(dir, "c.json")
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := relay.ReadFile(path); err == nil {
			t.Errorf("%s: accepted %s", name, data)
		}
	}
	bad := relay.File{AllowMesh: []string{"meshNOPE"}, AllowDevice: []string{"nobody"}, Listen: []string{"tcp/4001"}}
	_, err = bad.Config(newKey(t))
	for _, want := range []string{`allowed mesh "meshNOPE"`, `allowed device "nobody"`, `listen address "tcp/4001"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad config: error %v does not mention %s", err, want)
		}
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]relay.ByteSize{
		"0": 0, "1024": 1024, "1KiB": 1024, "64MiB": 64 << 20, "16GiB": 16 << 30, "2TiB": 2 << 40, "7B": 7, " 3 MiB ": 3 << 20,
	} {
		got, err := relay.ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v", in, got, err, want)
		}
		back, err := relay.ParseByteSize(got.String())
		if err != nil || back != got {
			t.Errorf("round trip of %v: %v %v", got, back, err)
		}
	}
	for _, in := range []string{"", "-1", "1.5GiB", "1GB", "9999999TiB", "GiB"} {
		if _, err := relay.ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", in)
		}
	}
}
