package node

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPathOverlap(t *testing.T) {
	for _, c := range []struct{ p, q, want string }{
		{"/a/b", "/a/b", "same"},
		{"/a/b/c", "/a/b", "inside"},
		{"/a/b/c/d", "/a/b", "inside"},
		{"/a", "/a/b", "above"},
		{"/", "/a/b", "above"},
		{"/a/bc", "/a/b", ""}, // a sibling sharing a prefix
		{"/a/b", "/a/bc", ""},
		{"/a/..b", "/a", "inside"}, // a name starting with two dots is below
		{"/x", "/a/b", ""},
	} {
		if got := pathOverlap(c.p, c.q); got != c.want {
			t.Errorf("pathOverlap(%q, %q) = %q, want %q", c.p, c.q, got, c.want)
		}
	}
}

// TestResolvePath: symlinks in the existing part are resolved, a missing
// tail is kept, and a relative path becomes absolute.
func TestResolvePath(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(root, "real")
	if err := os.MkdirAll(filepath.Join(real, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		real:                                  real,
		link:                                  real,
		link + "/":                            real,
		filepath.Join(link, "sub"):            filepath.Join(real, "sub"),
		filepath.Join(link, "new", "deeper"):  filepath.Join(real, "new", "deeper"),
		filepath.Join(link, "sub", "..", "x"): filepath.Join(real, "x"),
		filepath.Join(root, "missing", "y"):   filepath.Join(root, "missing", "y"),
	} {
		got, err := resolvePath(in)
		if err != nil || got != want {
			t.Errorf("resolvePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	t.Chdir(link)
	if got, err := resolvePath("sub"); err != nil || got != filepath.Join(real, "sub") {
		t.Errorf("resolvePath(\"sub\") in %s = %q, %v; want %q", link, got, err, filepath.Join(real, "sub"))
	}
}
