package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/node/vault"
)

// ivRecords maps the storage peer's records under prefix to their hashes.
func ivRecords(t *testing.T, ctx context.Context, cl vault.Client, d *daemon, prefix string) map[string]string {
	t.Helper()
	recs, err := cl.List(ctx, addrInfo(t, d).ID, prefix)
	if err != nil {
		t.Fatalf("list %s on the storage peer: %v", prefix, err)
	}
	out := map[string]string{}
	for _, r := range recs {
		out[r.Name] = r.Hash
	}
	return out
}

// TestHostileVaultWipe (issue 14, row 8): a member with folder role none,
// its key in a hostile client speaking the real vault protocol, lists every
// manifest on the storage peer and deletes each, and tries to replace them:
// every delete is refused, the vault's records and size are unchanged, and
// a new device joining while only the storage peer is online still gets
// every file of the owner's folder from it.
func TestHostileVaultWipe(t *testing.T) {
	a := startDaemon(t, "a")
	s := startDaemon(t, "s", "--role", "storage")
	a.mesh("init", "--name", "alpha")
	s.mesh("join", a.invite("--storage"), "--name", "vault")
	idS := s.status().DeviceID
	waitFor(t, 20*time.Second, "a sees the storage peer online", func() bool { return a.online(idS) })
	c := startDaemon(t, "c")
	c.mesh("join", a.invite(), "--name", "charlie") // redeemed at the storage peer, the code's redeemer
	idC := c.status().DeviceID
	waitFor(t, 20*time.Second, "the storage peer sees c online", func() bool { return s.online(idC) })

	dirA := filepath.Join(t.TempDir(), "docs-a")
	sf := writeStorageFolder(t, dirA)
	a.mesh("folder", "add", dirA, "--name", "docs")
	a.mesh("folder", "share", "docs", "charlie", "--role", "none")
	a.mesh("wait", "docs", "--timeout", "60s")
	waitFor(t, 60*time.Second, "the storage peer holds every file of a", func() bool {
		si := folderStorage(t, a, "docs")
		return si != nil && si.Files == len(sf.files) && si.HeldFiles == si.Files && si.PeerID == idS
	})
	before := storageUsage(t, s).Usage
	if before == nil || before.Used == 0 {
		t.Fatalf("storage peer usage %+v", before)
	}
	c.stop() // from here on, charlie's key speaks through the hostile client

	key, _, err := identity.LoadOrCreateKey(node.KeyPath(c.home))
	if err != nil {
		t.Fatal(err)
	}
	h := newPlainHost(t, key)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ai := addrInfo(t, s)
	if err := h.Connect(ctx, ai); err != nil {
		t.Fatal(err)
	}
	cl := vault.Client{H: h}
	mans := ivRecords(t, ctx, cl, s, "man/")
	if len(mans) != len(sf.files) {
		t.Fatalf("the hostile client lists %d manifests, want %d", len(mans), len(sf.files))
	}
	objs := ivRecords(t, ctx, cl, s, "obj/")
	var someManifest []byte
	for name := range mans {
		freed, err := cl.DeleteManifest(ctx, ai.ID, name)
		if err == nil {
			t.Fatalf("the storage peer deleted %s for a member with role none (%d bytes freed)", name, freed)
		}
		if !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "uploaded by") {
			t.Fatalf("delete %s: the refusal does not say why: %v", name, err)
		}
		if someManifest == nil {
			if someManifest, err = cl.GetRecord(ctx, ai.ID, name); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name := range mans { // replace every manifest with another one's record
		if err := cl.PutRecord(ctx, ai.ID, name, someManifest); err != nil {
			t.Logf("put %s: %v", name, err)
		}
	}
	for name := range objs {
		if _, err := cl.DeleteManifest(ctx, ai.ID, name); err == nil {
			t.Fatalf("the storage peer deleted the object record %s", name)
		}
	}
	if got := ivRecords(t, ctx, cl, s, "man/"); !ivSameMap(got, mans) {
		t.Fatalf("the manifests changed:\nbefore %v\nafter  %v", mans, got)
	}
	after := storageUsage(t, s).Usage
	if after.Used != before.Used || after.Chunks != before.Chunks || after.Records != before.Records {
		t.Fatalf("the vault changed: before %+v, after %+v", before, after)
	}
	t.Logf("vault unchanged: %d bytes in %d chunks, %d records", after.Used, after.Chunks, after.Records)
	h.Close()

	// The owner's files are still held: a new device, with only the storage
	// peer online, gets every one of them from it.
	code := a.invite()
	a.stop()
	d := startDaemon(t, "d")
	d.mesh("join", code, "--name", "delta")
	waitFor(t, 30*time.Second, "d learns the folder from the storage peer", func() bool {
		return strings.Contains(d.mesh("folder", "list"), "docs")
	})
	dirD := filepath.Join(t.TempDir(), "docs-d")
	d.mesh("folder", "join", "docs", dirD)
	waitFor(t, 90*time.Second, "d has every file from the storage peer", func() bool { return sf.presentIn(dirD) })
	if !d.logContains("storage peer: fetched blob") {
		t.Fatal("d's log does not show a fetch from the storage peer")
	}
}

func ivSameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
