package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node"
)

// TestHostileDiskFull (issue 14 row 11, failures are visible): B's copy of
// a folder lives on a small filesystem (an 8 MiB tmpfs; B's home, with its
// database, is elsewhere, as on a device whose data disk fills up) and A
// adds more than fits. B says so: `mesh folder list --json`, `mesh status`
// (JSON and text) and the news show a disk-full error for the folder,
// naming a file; no file on B holds anything but A's content, and a good
// file whose update did not fit keeps its old content. Once space is freed
// (the tmpfs grown), the sync completes without help, every file matches
// A's sha256, the error clears from every output and the news says so;
// a later change still syncs.
func TestHostileDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("TestHostileDiskFull needs root: it mounts a small tmpfs for the receiving folder")
	}
	base := t.TempDir()
	small := filepath.Join(base, "small")
	vfMountTmpfs(t, small, "8m") // before the daemons: unmounted after they stop

	a, b := startDaemon(t, "a"), startDaemon(t, "b")
	joinPair(t, a, b)
	dirA, dirB := filepath.Join(base, "a"), filepath.Join(small, "docs")
	vfWriteRandom(t, filepath.Join(dirA, "keep.bin"), 1, 1<<20)
	write(t, filepath.Join(dirA, "notes.txt"), "fits easily\n")
	a.mesh("folder", "add", dirA, "--name", "docs")
	waitFor(t, 20*time.Second, "b sees the folder", func() bool { return strings.Contains(b.mesh("folder", "list"), "docs") })
	b.mesh("folder", "join", "docs", dirB)
	b.mesh("wait", "docs", "--timeout", "60s")
	old := vfShaTree(t, dirA)
	if diff, ok := sameTrees(old, vfShaTree(t, dirB)); !ok {
		t.Fatalf("first sync: b differs: %s", diff)
	}
	if e := vfFolderError(t, b, "docs"); e != nil {
		t.Fatalf("an error before the disk filled: %+v", e)
	}
	web := vfWebDesktop(t, b) // nil without Chromium

	// 12 MiB of new files and a 2 MiB new version of keep.bin: more than
	// the 8 MiB B has.
	for i := range 6 {
		vfWriteRandom(t, filepath.Join(dirA, fmt.Sprintf("big/%d.bin", i)), uint64(10+i), 2<<20)
	}
	vfWriteRandom(t, filepath.Join(dirA, "keep.bin"), 2, 2<<20)
	a.mesh("wait", "docs", "--timeout", "60s") // scanned and offered to b
	want := vfShaTree(t, dirA)

	var e *node.FolderError
	waitFor(t, 90*time.Second, "b's folder list shows the disk-full error", func() bool {
		e = vfFolderError(t, b, "docs")
		return e != nil && e.Kind == "disk full"
	})
	if e.Files < 1 || e.Time.IsZero() || !strings.Contains(e.Error, "no space left on device") ||
		(e.Path != "keep.bin" && !strings.HasPrefix(e.Path, "big/")) {
		t.Fatalf("the error does not say what failed where: %+v", e)
	}
	t.Logf("b reports: %s: %d files, last %s: %s", e.Kind, e.Files, e.Path, e.Error)
	st := b.status()
	if st.FolderErrs < 1 || vfStatusError(st, "docs") == nil || vfStatusError(st, "docs").Kind != "disk full" {
		t.Fatalf("mesh status --json shows no disk-full error: folder_errors %d, %+v", st.FolderErrs, vfStatusError(st, "docs"))
	}
	if out := b.mesh("status"); !strings.Contains(out, "error in folder docs: disk full") || !strings.Contains(out, "errors:") {
		t.Fatalf("mesh status does not show the error:\n%s", out)
	}
	if out := b.mesh("folder", "list"); !strings.Contains(out, "disk full") {
		t.Fatalf("mesh folder list does not show the error:\n%s", out)
	}
	// Nothing on B is anything but A's content, old or new: no partial
	// transfer replaced a good file.
	for rel, sum := range vfShaTree(t, dirB) {
		if sum != want[rel] && sum != old[rel] {
			t.Fatalf("b's %s holds content A never had (sha256 %s; A's %s, before %s)", rel, sum, want[rel], old[rel])
		}
	}
	if web != nil {
		web.waitJS(30*time.Second, "the web desktop shows the disk-full error", vfWebErrorKind, "disk full")
		web.screenshot("diskfull-error")
	}
	waitFor(t, 30*time.Second, "a folder-error news entry", func() bool { return vfNewsCount(t, b, "folder-error") >= 1 })
	waitFor(t, 30*time.Second, "a sees b's folder-error news", func() bool { return vfNewsCount(t, a, "folder-error") >= 1 })

	// Free space: the sync completes by itself.
	if out, err := exec.Command("mount", "-o", "remount,size=64m", small).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v: %s", err, out)
	}
	waitFor(t, 120*time.Second, "b's copy matches a's after space was freed", func() bool {
		_, ok := sameTrees(want, vfShaTree(t, dirB))
		return ok
	})
	b.mesh("wait", "docs", "--timeout", "60s")
	if diff, ok := sameTrees(want, vfShaTree(t, dirB)); !ok {
		t.Fatalf("after recovery b differs: %s", diff)
	}
	assertNoStrayFiles(t, dirB, true)
	waitFor(t, 30*time.Second, "the error clears from mesh folder list and mesh status", func() bool {
		st := b.status()
		return vfFolderError(t, b, "docs") == nil && st.FolderErrs == 0 && vfStatusError(st, "docs") == nil &&
			!strings.Contains(b.mesh("status"), "disk full") && !strings.Contains(b.mesh("folder", "list"), "disk full")
	})
	if web != nil {
		web.waitJS(30*time.Second, "the error gone from the web desktop", vfWebErrorKind, "none")
		web.waitJS(30*time.Second, "the web desktop's news says it recovered",
			`[...document.querySelectorAll("#news-list [data-testid=news]")].some(e => e.dataset.kind === "folder-recovered")`, true)
		web.noPageErrors()
	}
	waitFor(t, 30*time.Second, "a folder-recovered news entry", func() bool { return vfNewsCount(t, b, "folder-recovered") >= 1 })
	if n := vfNewsCount(t, b, "folder-error"); n != 1 {
		t.Fatalf("%d folder-error news entries, want 1 (one when the error appeared, not one per file or retry)", n)
	}

	// B keeps working.
	write(t, filepath.Join(dirA, "after.txt"), "still syncing\n")
	a.mesh("wait", "docs", "--timeout", "60s")
	b.mesh("wait", "docs", "--timeout", "60s")
	if got, _ := os.ReadFile(filepath.Join(dirB, "after.txt")); string(got) != "still syncing\n" {
		t.Fatalf("b stopped syncing after recovery: %q", got)
	}
}

// vfWebErrorKind is the kind of error B's web desktop shows on the folder
// docs, "none" when it shows none.
const vfWebErrorKind = `(document.querySelector('[data-testid=folder][data-folder="docs"] [data-testid=folder-error]') || {dataset: {kind: "none"}}).dataset.kind`

// vfWebDesktop opens d's web desktop in headless Chromium, logged in; nil
// (the web desktop is not checked) when Chromium is not installed, unless
// MESH_TEST_REQUIRE_BROWSER=1.
func vfWebDesktop(t *testing.T, d *daemon) *tab {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil && os.Getenv("MESH_TEST_REQUIRE_BROWSER") != "1" {
		t.Logf("web desktop not checked: %s not found (apt-get install chromium)", chromiumPath)
		return nil
	}
	base, token := webLogin(t, d)
	tb := newBrowser(t).tab(d.name)
	loginURL(tb, base, token)
	tb.waitJS(30*time.Second, "the folder docs listed", `!!document.querySelector('[data-testid=folder][data-folder="docs"]')`, true)
	return tb
}

// vfMountTmpfs mounts a tmpfs of size at dir, unmounted at cleanup.
func vfMountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (root without CAP_SYS_ADMIN?): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
}

// vfWriteRandom writes n pseudo-random bytes (from seed) at path,
// atomically: written in another temporary directory of the test (the
// same filesystem) and renamed into place, so that A's watcher never sees
// a half-written file and publishes it as a version (B would then rightly
// hold content A had for a moment, which the test cannot tell from damage).
func vfWriteRandom(t *testing.T, path string, seed uint64, n int) {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'v', 'f'}).Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.CreateTemp(t.TempDir(), "vf-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}

// vfShaTree maps every user file under root to its sha256, skipping
// Meshwork's .meshwork directory and its .meshwork-* temporary and partial
// files (not the user's).
func vfShaTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // renamed meanwhile
			}
			return err
		}
		if strings.HasPrefix(d.Name(), ".meshwork") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		sum := sha256.Sum256(b)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// vfFolderError is the error `mesh folder list --json` on d shows for the
// folder name.
func vfFolderError(t *testing.T, d *daemon, name string) *node.FolderError {
	t.Helper()
	var infos []node.FolderInfo
	out := d.mesh("folder", "list", "--json")
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		t.Fatalf("folder list of %s: %v\n%s", d.name, err, out)
	}
	for _, fi := range infos {
		if fi.Name == name {
			return fi.Error
		}
	}
	t.Fatalf("folder list of %s has no folder %q:\n%s", d.name, name, out)
	return nil
}

func vfStatusError(st node.Status, name string) *node.FolderError {
	for _, fi := range st.Folders {
		if fi.Name == name {
			return fi.Error
		}
	}
	return nil
}

// vfNewsCount counts d's news entries of kind.
func vfNewsCount(t *testing.T, d *daemon, kind string) int {
	t.Helper()
	var list []node.NewsEntry
	out := d.mesh("news", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("news of %s: %v\n%s", d.name, err, out)
	}
	n := 0
	for _, e := range list {
		if e.Kind == kind {
			n++
		}
	}
	return n
}
