package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node"
)

func folderFiles(t *testing.T, d *daemon, name string) map[string]node.FileInfo {
	t.Helper()
	var files []node.FileInfo
	if err := json.Unmarshal([]byte(d.mesh("folder", "files", name, "--json")), &files); err != nil {
		t.Fatal(err)
	}
	out := map[string]node.FileInfo{}
	for _, f := range files {
		out[f.Path] = f
	}
	return out
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// TestFolderMetadataMode: a device that joins with --mode metadata has
// every name but no content; mesh fetch brings one file (kept up to date
// afterwards), mesh evict drops it again while its name stays, on this
// device and everywhere else.
func TestFolderMetadataMode(t *testing.T) {
	a, b := startDaemon(t, "a"), startDaemon(t, "b")
	a.mesh("init", "--name", "alpha")
	b.mesh("join", a.invite(), "--name", "bravo")
	dirA, dirB := filepath.Join(t.TempDir(), "docs-a"), filepath.Join(t.TempDir(), "docs-b")
	write(t, filepath.Join(dirA, "notes.txt"), "notes\n")
	write(t, filepath.Join(dirA, "sub/report.txt"), "report, version 1\n")
	write(t, filepath.Join(dirA, "big.bin"), strings.Repeat("big data ", 200000))
	a.mesh("folder", "add", dirA, "--name", "docs")
	idA := a.status().DeviceID
	waitFor(t, 20*time.Second, "b sees the folder", func() bool {
		return b.online(idA) && strings.Contains(b.mesh("folder", "list"), "docs")
	})
	b.mesh("folder", "join", "docs", dirB, "--mode", "metadata")
	waitFor(t, 30*time.Second, "b knows every name", func() bool { return len(folderFiles(t, b, "docs")) == 3 })
	b.mesh("wait", "docs", "--timeout", "60s")
	for p, f := range folderFiles(t, b, "docs") {
		if f.Local || exists(filepath.Join(dirB, p)) {
			t.Fatalf("%s is on b before any fetch: %+v", p, f)
		}
	}
	if !strings.Contains(b.mesh("folder", "list", "--json"), `"mode":"metadata"`) {
		t.Fatal("folder list on b does not show the metadata mode")
	}

	report := filepath.Join(dirB, "sub", "report.txt")
	if out := b.mesh("fetch", report); !strings.Contains(out, "fetched") {
		t.Fatalf("mesh fetch: %s", out)
	}
	if got, _ := os.ReadFile(report); string(got) != "report, version 1\n" {
		t.Fatalf("fetched report.txt holds %q", got)
	}
	files := folderFiles(t, b, "docs")
	if !files["sub/report.txt"].Local || files["notes.txt"].Local || exists(filepath.Join(dirB, "big.bin")) {
		t.Fatalf("after fetching one file: %+v", files)
	}
	// A fetched file is kept up to date.
	write(t, filepath.Join(dirA, "sub/report.txt"), "report, version 2\n")
	waitFor(t, 30*time.Second, "b receives the new version of the fetched file", func() bool {
		got, _ := os.ReadFile(report)
		return string(got) == "report, version 2\n"
	})

	b.mesh("evict", report)
	if exists(report) {
		t.Fatal("evicted file is still on b's disk")
	}
	b.mesh("wait", "docs", "--timeout", "60s")
	a.mesh("wait", "docs", "--timeout", "60s")
	files = folderFiles(t, b, "docs")
	if f, ok := files["sub/report.txt"]; !ok || f.Local || f.Size != int64(len("report, version 2\n")) {
		t.Fatalf("after evict, b's listing of report.txt: %+v (present %v)", f, ok)
	}
	if got, _ := os.ReadFile(filepath.Join(dirA, "sub/report.txt")); string(got) != "report, version 2\n" {
		t.Fatalf("evict on b changed a's file: %q", got)
	}
	if _, errOut, err := b.run("evict", filepath.Join(dirB, "notes.txt")); err == nil || !strings.Contains(errOut, "not here") {
		t.Fatalf("evicting a file that is not here: err %v, %s", err, errOut)
	}
	if _, errOut, err := a.run("fetch", filepath.Join(dirA, "notes.txt")); err == nil || !strings.Contains(errOut, "metadata mode") {
		t.Fatalf("fetch in a full folder: err %v, %s", err, errOut)
	}
}

// TestFolderSendReceiveOnly: a send-only device's changes reach the
// others and it applies none of theirs; a receive-only device applies
// everything and sends none of its own changes.
func TestFolderSendReceiveOnly(t *testing.T) {
	a, b, c := startDaemon(t, "a"), startDaemon(t, "b"), startDaemon(t, "c")
	a.mesh("init", "--name", "alpha")
	b.mesh("join", a.invite(), "--name", "bravo")
	c.mesh("join", a.invite(), "--name", "charlie")
	dirA, dirB, dirC := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b"), filepath.Join(t.TempDir(), "c")
	write(t, filepath.Join(dirA, "from-a.txt"), "written on a\n")
	a.mesh("folder", "add", dirA, "--name", "docs")
	idA := a.status().DeviceID
	for _, d := range []*daemon{b, c} {
		waitFor(t, 20*time.Second, d.name+" sees the folder", func() bool {
			return d.online(idA) && strings.Contains(d.mesh("folder", "list"), "docs")
		})
	}
	b.mesh("folder", "join", "docs", dirB, "--mode", "send-only")
	c.mesh("folder", "join", "docs", dirC, "--mode", "receive-only")
	write(t, filepath.Join(dirB, "from-b.txt"), "written on b\n")
	write(t, filepath.Join(dirC, "from-c.txt"), "written on c\n")
	for _, d := range []*daemon{b, c, a} {
		d.mesh("wait", "docs", "--timeout", "60s")
	}
	waitFor(t, 30*time.Second, "b's file reaches a and c", func() bool {
		return exists(filepath.Join(dirA, "from-b.txt")) && exists(filepath.Join(dirC, "from-b.txt"))
	})
	waitFor(t, 30*time.Second, "a's file reaches c", func() bool { return exists(filepath.Join(dirC, "from-a.txt")) })
	// c scanned its file (mesh wait scans) and a caught up with c after it.
	a.mesh("wait", "docs", "--timeout", "60s")
	if exists(filepath.Join(dirA, "from-c.txt")) || exists(filepath.Join(dirB, "from-c.txt")) {
		t.Fatal("a receive-only device's local file left it")
	}
	if exists(filepath.Join(dirB, "from-a.txt")) {
		t.Fatal("a send-only device applied a remote change")
	}
	if strings.Contains(a.mesh("folder", "files", "docs"), "from-c.txt") {
		t.Fatal("the receive-only device's file became an item")
	}
}
