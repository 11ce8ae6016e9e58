package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node"
)

// cgFolderInfo is d's folder list entry for name.
func cgFolderInfo(t *testing.T, d *daemon, name string) node.FolderInfo {
	t.Helper()
	var infos []node.FolderInfo
	if err := json.Unmarshal([]byte(d.mesh("folder", "list", "--json")), &infos); err != nil {
		t.Fatalf("folder list on %s: %v", d.name, err)
	}
	for _, fi := range infos {
		if fi.Name == name {
			return fi
		}
	}
	t.Fatalf("%s does not list folder %q", d.name, name)
	return node.FolderInfo{}
}

// TestCgWinningContentUnavailable: b learns of a file from c (a metadata
// device: it holds the name, not the content) while its author a is
// offline, so no online member has the content. b does not stay busy
// retrying it: its status says why it is behind, `mesh wait` returns an
// error naming the file instead of hanging (before the fix it waited for
// its timeout), and once a comes back the file arrives (chaos seeds 4
// and 5 found the hang with a conflict copy gone everywhere).
func TestCgWinningContentUnavailable(t *testing.T) {
	a, b, c := startDaemon(t, "a"), startDaemon(t, "b"), startDaemon(t, "c")
	a.mesh("init", "--name", "alpha")
	b.mesh("join", a.invite(), "--name", "bravo")
	c.mesh("join", a.invite(), "--name", "charlie")
	dirA, dirB, dirC := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b"), filepath.Join(t.TempDir(), "c")
	write(t, filepath.Join(dirA, "seed.txt"), "here from the start\n")
	a.mesh("folder", "add", dirA, "--name", "docs")
	idA, idC := a.status().DeviceID, c.status().DeviceID
	for _, d := range []*daemon{b, c} {
		waitFor(t, 30*time.Second, d.name+" sees the folder", func() bool {
			return d.online(idA) && strings.Contains(d.mesh("folder", "list"), "docs")
		})
	}
	b.mesh("folder", "join", "docs", dirB)
	c.mesh("folder", "join", "docs", dirC, "--mode", "metadata")
	for _, d := range []*daemon{a, b, c} {
		d.mesh("wait", "docs", "--timeout", "60s")
	}
	b.stop()
	write(t, filepath.Join(dirA, "gone.txt"), "only a ever had this\n")
	a.mesh("wait", "docs", "--timeout", "60s")
	waitFor(t, 30*time.Second, "c knows gone.txt", func() bool { _, ok := folderFiles(t, c, "docs")["gone.txt"]; return ok })
	a.stop()
	b.start()
	waitFor(t, 30*time.Second, "b reaches c", func() bool { return b.online(idC) })
	_, errOut, err := b.run("wait", "docs", "--timeout", "60s")
	if err == nil || !strings.Contains(errOut, "unavailable from every online member") || !strings.Contains(errOut, "gone.txt") {
		t.Fatalf("mesh wait on b with gone.txt's content on no online member: err %v, stderr %q; want an error naming gone.txt", err, errOut)
	}
	fi := cgFolderInfo(t, b, "docs")
	if fi.InSync >= 1 || !strings.Contains(strings.Join(fi.Behind, "; "), "content of 1 files unavailable from every online member") {
		t.Fatalf("b's status: in_sync %v, behind %q; want below 1, content of 1 file unavailable", fi.InSync, fi.Behind)
	}
	// Its author comes back: b retries at once, gets it, and is in sync.
	a.start()
	waitFor(t, 60*time.Second, "gone.txt reaches b once a is back", func() bool {
		return exists(filepath.Join(dirB, "gone.txt"))
	})
	b.mesh("wait", "docs", "--timeout", "60s")
	if fi := cgFolderInfo(t, b, "docs"); fi.InSync != 1 {
		t.Fatalf("b after a came back: in_sync %v, behind %q", fi.InSync, fi.Behind)
	}
}
