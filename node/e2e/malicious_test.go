package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/node/folder"
	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/exchange"
)

type allMembers struct{}

func (allMembers) IsMember(peer.ID) bool { return true }

// TestMaliciousPeer: a member's key in the hands of a hostile program (its
// own sync engine, not meshd) pushes folder items whose paths escape the
// folder; the victim refuses them and writes nothing outside the folder.
// Demoted to reader, the same device's changes are then refused outright.
func TestMaliciousPeer(t *testing.T) {
	a, c := startDaemon(t, "a"), startDaemon(t, "c")
	a.mesh("init", "--name", "alpha")
	c.mesh("join", a.invite(), "--name", "charlie")
	idA, idC := a.status().DeviceID, c.status().DeviceID
	base := t.TempDir()
	dirA := filepath.Join(base, "inside", "docs")
	write(t, filepath.Join(dirA, "ok.txt"), "legit\n")
	a.mesh("folder", "add", dirA, "--name", "docs")
	var infos []node.FolderInfo
	if err := json.Unmarshal([]byte(a.mesh("folder", "list", "--json")), &infos); err != nil || len(infos) != 1 {
		t.Fatalf("folder list: %v %v", infos, err)
	}
	objID := syncproto.ObjectID(infos[0].ID)
	c.stop() // from here on, charlie's key speaks through the hostile program

	e, h, _ := startHostileEngine(t, c, exchange.Config{})
	obj, err := syncproto.NewObject(objID, syncproto.TypeFolder, map[syncproto.DeviceID]syncproto.Role{
		syncproto.DeviceID(idA): syncproto.RoleOwner, syncproto.DeviceID(idC): syncproto.RoleEditor,
	}, e.ObjectConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Add(obj); err != nil {
		t.Fatal(err)
	}
	_, ref, err := blobs.Split(bytes.NewReader([]byte("evil!")), func(int64, blobs.ChunkRef, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(base, "escape.txt")
	evil := []string{"../escape.txt", "../../escape.txt", "sub/../../escape.txt", outside, ".meshwork/versions/x"}
	for _, p := range evil {
		fe := &syncproto.FileEntry{Path: p, Mode: 0o644, Size: 5, ModTime: time.Now(), Blob: folder.ItemBlobRef(ref)}
		if _, err := e.Update(objID, syncproto.ItemID(p), syncproto.Content{Title: "x", Body: fe}); err != nil {
			t.Logf("hostile engine could not even build %q: %v", p, err)
		}
	}
	before := snapshotDir(t, base)
	ai := addrInfo(t, a)
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	if err := h.Connect(cctx, ai); err != nil {
		t.Fatal(err)
	}
	if err := e.Sync(cctx, ai.ID); err != nil {
		t.Fatalf("sync with the victim: %v", err)
	}
	// The victim received the items and reports them refused.
	waitFor(t, 10*time.Second, "the victim to report the unsafe paths", func() bool {
		if err := json.Unmarshal([]byte(a.mesh("folder", "list", "--json")), &infos); err != nil || len(infos) != 1 {
			return false
		}
		return infos[0].Skipped["../escape.txt"] != "" && infos[0].Skipped["sub/../../escape.txt"] != ""
	})
	t.Logf("victim refused: %v", infos[0].Skipped)
	if _, err := os.Stat(outside); err == nil {
		t.Fatal("a file was written outside the folder")
	}
	if after := snapshotDir(t, base); after != before {
		t.Fatalf("the tree around the folder changed:\nbefore %s\nafter  %s", before, after)
	}

	// Demoted to reader: a safe-path change is refused by the owner.
	c.start()
	waitFor(t, 20*time.Second, "charlie back", func() bool { return a.online(idC) })
	a.mesh("folder", "share", "docs", "charlie", "--role", "reader")
	c.stop()
	if err := h.Connect(cctx, ai); err != nil {
		t.Fatal(err)
	}
	fe := &syncproto.FileEntry{Path: "planted.txt", Mode: 0o644, Size: 5, ModTime: time.Now(), Blob: folder.ItemBlobRef(ref)}
	if _, err := e.Update(objID, "planted.txt", syncproto.Content{Title: "planted.txt", Body: fe}); err != nil {
		t.Fatal(err)
	}
	if err := e.Sync(cctx, ai.ID); err != nil {
		t.Fatalf("sync with the victim: %v", err)
	}
	// The hostile client is a's only online member and speaks no
	// folder-wait, so the barrier cannot hold: wait must say so, naming
	// charlie, rather than report "in sync". The reader's change was
	// refused inside the sync session above (it never entered a's
	// replica), so nothing can apply it later.
	if _, errOut, err := a.run("wait", "docs", "--timeout", "20s"); err != nil &&
		!strings.Contains(errOut, "no sync round with any online member: charlie") {
		t.Fatalf("wait on a: %v %s\n%s", err, errOut, a.mesh("folder", "list", "--json"))
	}
	if strings.Contains(a.mesh("folder", "files", "docs", "--json"), "planted.txt") {
		t.Fatal("the owner's replica took a change from a reader")
	}
	if _, err := os.Stat(filepath.Join(dirA, "planted.txt")); err == nil {
		t.Fatal("the owner accepted a change from a reader")
	}
}

// snapshotDir lists every path under root except the folder's own
// contents (which legitimately change), for before/after comparison.
func snapshotDir(t *testing.T, root string) string {
	t.Helper()
	var paths []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if strings.Contains(p, string(filepath.Separator)+"docs"+string(filepath.Separator)) {
			return nil
		}
		paths = append(paths, p)
		return nil
	})
	return strings.Join(paths, "\n")
}
