package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/node/folder"
	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/exchange"
	"github.com/meshwork/meshwork/syncproto/feeds"
)

// TestHostileForgedBy (issue 14 row 3): charlie's key, in a hostile sync
// engine that checks no signatures, pushes to alice folder items claiming
// to be bravo's: new items unsigned, with a garbage signature and signed
// by charlie's own key; and a new version of bravo's file, unsigned.
// (A copy of a held version with other bytes is never taken: syncproto's
// TestForgedVersionRefused.) Alice refuses them (logged as bad version signatures), shows nothing of
// them as bravo's (her feed holds bravo's genuine, verifying version), writes
// nothing, and still syncs bravo's next change.
func TestHostileForgedBy(t *testing.T) {
	a, b, c := startDaemon(t, "a"), startDaemon(t, "b"), startDaemon(t, "c")
	a.mesh("init", "--name", "alpha")
	b.mesh("join", a.invite(), "--name", "bravo")
	c.mesh("join", a.invite(), "--name", "charlie")
	idA, idB, idC := a.status().DeviceID, b.status().DeviceID, c.status().DeviceID
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	write(t, filepath.Join(dirA, "from-a.txt"), "alpha\n")
	a.mesh("folder", "add", dirA, "--name", "docs")
	waitFor(t, 20*time.Second, "b sees the folder", func() bool { return strings.Contains(b.mesh("folder", "list"), "docs") })
	b.mesh("folder", "join", "docs", dirB)
	write(t, filepath.Join(dirB, "from-b.txt"), "bravo's words\n")
	for _, d := range []*daemon{b, a, b, a} {
		d.mesh("wait", "docs", "--timeout", "60s")
	}
	if got, _ := os.ReadFile(filepath.Join(dirA, "from-b.txt")); string(got) != "bravo's words\n" {
		t.Fatalf("a did not get b's file: %q", got)
	}
	var infos []node.FolderInfo
	if err := json.Unmarshal([]byte(a.mesh("folder", "list", "--json")), &infos); err != nil || len(infos) != 1 {
		t.Fatalf("folder list: %v %v", infos, err)
	}
	objID := syncproto.ObjectID(infos[0].ID)
	genuine := sgFeedItem(t, a, "from-b.txt")
	if genuine.Sync.Top().By != syncproto.DeviceID(idB) || len(genuine.Sync.Signature) == 0 {
		t.Fatalf("b's version at a: %+v", genuine.Sync)
	}
	c.stop() // charlie's key speaks through the hostile program from here on

	e, h := sgHostileEngine(t, c, objID, idA, idB, idC)
	_, ref, err := blobs.Split(bytes.NewReader([]byte("evil!")), func(int64, blobs.ChunkRef, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := identity.LoadOrCreateKey(node.KeyPath(c.home))
	if err != nil {
		t.Fatal(err)
	}
	now := e.ObjectConfig().Clock.Now()
	byB := func(id string, updates uint32) syncproto.Item {
		fe := &syncproto.FileEntry{Path: id, Mode: 0o644, Size: 5, ModTime: time.Now().UTC(), Blob: folder.ItemBlobRef(ref)}
		return syncproto.Item{Sync: syncproto.Sync{ID: syncproto.ItemID(id), Updates: updates,
			History: []syncproto.History{{Sequence: updates, When: now, By: syncproto.DeviceID(idB)}}},
			Content: syncproto.Content{Title: id, Body: fe}}
	}
	badSig := byB("forged-badsig.txt", 1)
	badSig.Sync.Signature = bytes.Repeat([]byte{0x42}, 64)
	cSigned, err := syncproto.SignVersion(objID, byB("forged-csig.txt", 1), exchange.KeySigner{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	next := byB("from-b.txt", genuine.Sync.Updates+1) // a new version of b's file
	next.Sync.History = append(next.Sync.History, genuine.Sync.History...)
	forged := []syncproto.Item{byB("forged-unsigned.txt", 1), badSig, cSigned, next}
	if err := e.Change(objID, func(o *syncproto.Object) error {
		for _, it := range forged {
			if _, _, err := o.Apply(it); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	held, _ := e.Object(objID).Item("from-b.txt")
	if held.Sync.Top().Sequence != next.Sync.Updates {
		t.Fatalf("the hostile replica does not hold the forged version: %+v", held.Sync)
	}

	ai := addrInfo(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Connect(ctx, ai); err != nil {
		t.Fatal(err)
	}
	if err := e.Sync(ctx, ai.ID); err != nil {
		t.Fatalf("sync with the victim: %v", err)
	}
	waitFor(t, 20*time.Second, "a to log the forged versions refused", func() bool {
		for _, it := range forged {
			if !sgLogHas(a, "bad version signature", "item="+string(it.Sync.ID)) {
				return false
			}
		}
		return true
	})
	a.mesh("wait", "docs", "--timeout", "60s")
	for _, it := range forged[:3] {
		if _, err := os.Stat(filepath.Join(dirA, string(it.Sync.ID))); err == nil {
			t.Errorf("a wrote forged file %s", it.Sync.ID)
		}
		if sgFeedHas(t, a, string(it.Sync.ID)) {
			t.Errorf("a's feed shows forged item %s", it.Sync.ID)
		}
	}
	if got := sgFeedItem(t, a, "from-b.txt"); !got.Equal(genuine) {
		t.Fatalf("b's file at a is no longer b's genuine version:\n%+v\nwant\n%+v", got.Sync, genuine.Sync)
	}
	if got, _ := os.ReadFile(filepath.Join(dirA, "from-b.txt")); string(got) != "bravo's words\n" {
		t.Fatalf("b's file at a: %q", got)
	}

	// The victim keeps working: b's next change arrives and verifies.
	write(t, filepath.Join(dirB, "after.txt"), "still syncing\n")
	b.mesh("wait", "docs", "--timeout", "60s")
	waitFor(t, 30*time.Second, "b's change at a", func() bool {
		got, _ := os.ReadFile(filepath.Join(dirA, "after.txt"))
		return string(got) == "still syncing\n"
	})
	after := sgFeedItem(t, a, "after.txt")
	if err := syncproto.VerifyVersion(objID, after, "", &exchange.PeerVerifier{}); err != nil || after.Sync.Top().By != syncproto.DeviceID(idB) {
		t.Fatalf("b's change at a: %v %+v", err, after.Sync)
	}
}

// sgHostileEngine runs a sync engine with d's key (d stopped) holding a
// replica of the folder objID that checks no signatures.
func sgHostileEngine(t *testing.T, d *daemon, objID syncproto.ObjectID, owner string, editors ...string) (*exchange.Engine, host.Host) {
	t.Helper()
	e, h, _ := startHostileEngine(t, d, exchange.Config{})
	members := map[syncproto.DeviceID]syncproto.Role{syncproto.DeviceID(owner): syncproto.RoleOwner}
	for _, ed := range editors {
		members[syncproto.DeviceID(ed)] = syncproto.RoleEditor
	}
	cfg := e.ObjectConfig()
	cfg.Verifier = nil // it holds anything
	obj, err := syncproto.NewObject(objID, syncproto.TypeFolder, members, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Add(obj); err != nil {
		t.Fatal(err)
	}
	return e, h
}

// sgFeedItems reads d's folder "docs" as a JSON feed.
func sgFeedItems(t *testing.T, d *daemon) []syncproto.Item {
	t.Helper()
	items, err := feeds.ParseJSON(strings.NewReader(d.mesh("feed", "docs", "--format", "json")))
	if err != nil {
		t.Fatalf("%s: parse feed: %v", d.name, err)
	}
	return items
}

func sgFeedHas(t *testing.T, d *daemon, id string) bool {
	for _, it := range sgFeedItems(t, d) {
		if string(it.Sync.ID) == id {
			return true
		}
	}
	return false
}

func sgFeedItem(t *testing.T, d *daemon, id string) syncproto.Item {
	t.Helper()
	for _, it := range sgFeedItems(t, d) {
		if string(it.Sync.ID) == id {
			return it
		}
	}
	t.Fatalf("%s: no item %q in the feed", d.name, id)
	return syncproto.Item{}
}

// sgLogHas reports whether one line of d's log holds every one of subs.
func sgLogHas(d *daemon, subs ...string) bool {
	b, _ := os.ReadFile(filepath.Join(d.home, "meshd.log"))
	for _, line := range strings.Split(string(b), "\n") {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			return true
		}
	}
	return false
}
