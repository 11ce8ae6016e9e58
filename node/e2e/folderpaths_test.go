package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// dtRefused runs a mesh command on d that must fail: a non-zero exit and
// an error on stderr containing every one of want.
func dtRefused(t *testing.T, d *daemon, want []string, args ...string) {
	t.Helper()
	out, errOut, err := d.run(args...)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("mesh %s on %s: exit %v, want a non-zero exit\nstdout: %s\nstderr: %s", strings.Join(args, " "), d.name, err, out, errOut)
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			t.Errorf("mesh %s on %s: stderr %q lacks %q", strings.Join(args, " "), d.name, strings.TrimSpace(errOut), w)
		}
	}
	t.Logf("mesh %s: %s", strings.Join(args, " "), strings.TrimSpace(errOut))
}

// dtFolderNames lists the folders d knows (in the mesh, synced here or not).
func dtFolderNames(t *testing.T, d *daemon) []string {
	t.Helper()
	var fs []struct {
		Name string  `json:"name"`
		Path *string `json:"path"`
	}
	out := d.mesh("folder", "list", "--json")
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatalf("folder list of %s: %v\n%s", d.name, err, out)
	}
	var names []string
	for _, f := range fs {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	return names
}

func dtMkdir(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFolderPathOverlapRefused: `mesh folder add` and `mesh folder join`
// refuse a directory that is, lies inside or contains a folder this device
// already syncs (a symlink to it included), naming that folder, its path
// and the way out, and exit non-zero; nothing of the refused folder is
// created (no directory, no folder in the mesh). A sibling directory is
// accepted.
func TestFolderPathOverlapRefused(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir()) // before the daemons: cleaned up after them
	if err != nil {
		t.Fatal(err)
	}
	a, b := startDaemon(t, "a"), startDaemon(t, "b")
	joinPair(t, a, b)

	docsA, picsA := filepath.Join(base, "a", "docs"), filepath.Join(base, "a", "pics")
	dtMkdir(t, filepath.Join(docsA, "sub"), picsA)
	write(t, filepath.Join(docsA, "notes.txt"), "notes\n")
	linkA := filepath.Join(base, "a", "docs-link")
	if err := os.Symlink(docsA, linkA); err != nil {
		t.Fatal(err)
	}
	a.mesh("folder", "add", docsA, "--name", "docs")
	way := []string{`folder "docs" at ` + docsA, "mesh folder remove docs"}
	for _, c := range []struct {
		path, name, how string
	}{
		{docsA, "docs2", "is the directory of"},
		{filepath.Join(docsA, "sub"), "sub", "is inside"},
		{filepath.Join(docsA, "new", "deeper"), "deeper", "is inside"},
		{filepath.Join(base, "a"), "parent", "contains"},
		{linkA, "linked", "is the directory of"},
		{filepath.Join(linkA, "sub"), "linked-sub", "is inside"},
	} {
		dtRefused(t, a, append([]string{c.how}, way...), "folder", "add", c.path, "--name", c.name)
	}
	if _, err := os.Stat(filepath.Join(docsA, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused folder add created %s (stat: %v)", filepath.Join(docsA, "new"), err)
	}
	a.mesh("folder", "add", picsA, "--name", "pics") // a sibling
	if got := dtFolderNames(t, a); !slices.Equal(got, []string{"docs", "pics"}) {
		t.Fatalf("folders on a after the refused adds: %v, want [docs pics]", got)
	}

	// Join, on a second device.
	waitFor(t, 60*time.Second, "b knows docs and pics", func() bool {
		return slices.Equal(dtFolderNames(t, b), []string{"docs", "pics"})
	})
	docsB, picsB := filepath.Join(base, "b", "docs"), filepath.Join(base, "b", "pics")
	dtMkdir(t, filepath.Join(docsB, "sub"), picsB)
	linkB := filepath.Join(base, "b", "docs-link")
	if err := os.Symlink(docsB, linkB); err != nil {
		t.Fatal(err)
	}
	b.mesh("folder", "join", "docs", docsB)
	dtRefused(t, b, []string{"already syncs it", docsB}, "folder", "join", "docs", picsB)
	wayB := []string{`folder "docs" at ` + docsB, "mesh folder remove docs"}
	for _, c := range []struct{ path, how string }{
		{docsB, "is the directory of"},
		{filepath.Join(docsB, "sub"), "is inside"},
		{filepath.Join(base, "b"), "contains"},
		{linkB, "is the directory of"},
	} {
		dtRefused(t, b, append([]string{c.how}, wayB...), "folder", "join", "pics", c.path)
	}
	b.mesh("folder", "join", "pics", picsB) // a sibling
	b.mesh("wait", "docs", "--timeout", "60s")
	if got, err := os.ReadFile(filepath.Join(docsB, "notes.txt")); err != nil || string(got) != "notes\n" {
		t.Errorf("docs on b: notes.txt %q, %v; want the file from a", got, err)
	}
}
