package identity

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "device.key")
	k1, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreateKey: created=%v err=%v", created, err)
	}
	if k1.Type() != crypto.Ed25519 {
		t.Fatalf("key type %v", k1.Type())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKey(path)
	if err != nil || created {
		t.Fatalf("second LoadOrCreateKey: created=%v err=%v", created, err)
	}
	if !k1.Equals(k2) {
		t.Fatal("reloaded key differs")
	}
	id1, _ := peer.IDFromPrivateKey(k1)
	id2, _ := peer.IDFromPrivateKey(k2)
	if id1 != id2 {
		t.Fatal("device id changed")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
}

func TestLoadOrCreateKeyRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "device.key")
	must(t, os.WriteFile(path, []byte("not a key"), 0o600))
	if _, _, err := LoadOrCreateKey(path); !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v, want ErrMalformed", err)
	}
	data, _ := os.ReadFile(path)
	if string(data) != "not a key" {
		t.Fatal("existing file was overwritten")
	}
}

func TestWriteFileAtomicCleansUp(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "sub")
	must(t, os.Mkdir(target, 0o700)) // rename onto a directory fails
	if err := writeFileAtomic(target, []byte("x"), 0o600); err == nil {
		t.Fatal("rename onto a directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp file left behind: %v", entries)
	}
}

func TestMeshIDText(t *testing.T) {
	f := newFixture(t)
	m := f.log.MeshID()
	s := m.String()
	if len(s) != 4+52 || s[:4] != "mesh" {
		t.Fatalf("text form %q", s)
	}
	got, err := ParseMeshID(s)
	if err != nil || got != m {
		t.Fatalf("ParseMeshID(%q) = %v, %v", s, got, err)
	}
	var u MeshID
	text, _ := m.MarshalText()
	must(t, u.UnmarshalText(text))
	if u != m {
		t.Fatal("text round trip changed the id")
	}
	// The last character carries one bit of the ID and four unused bits;
	// setting an unused bit gives a non-canonical form.
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	v := strings.IndexByte(alphabet, s[len(s)-1])
	flipped := s[:len(s)-1] + string(alphabet[v|1])
	for _, bad := range []string{"", "mesh", s[4:], "MESH" + s[4:], s + "a", s[:len(s)-1], s[:10] + "1" + s[11:], flipped} {
		if got, err := ParseMeshID(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseMeshID(%q) = %v, %v; want ErrMalformed", bad, got, err)
		}
	}
	if (MeshID{}).IsZero() != true || m.IsZero() {
		t.Error("IsZero")
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range []Role{RoleOwner, RoleAdmin, RoleMember} {
		got, err := ParseRole(string(r))
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	if _, err := ParseRole("root"); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseRole(root): %v", err)
	}
	if !RoleAdmin.CanAdmin() || RoleMember.CanAdmin() {
		t.Error("CanAdmin")
	}
}
