package syncproto

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFences: syncproto and its sub-packages import only the standard
// library and each other (except exchange, the networking layer, which may
// also use go-libp2p, badger and the module's frame reader internal/framebuf),
// no shipped file imports testing, and
// every package has a doc comment.
func TestFences(t *testing.T) {
	docs := make(map[string]bool)
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		if _, ok := docs[dir]; !ok {
			docs[dir] = false
		}
		if f.Doc != nil && strings.HasPrefix(f.Doc.Text(), "Package "+f.Name.Name+" ") {
			docs[dir] = true
		}
		test := strings.HasSuffix(path, "_test.go")
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(p, "/")
			switch {
			case strings.HasPrefix(p, "github.com/meshwork/meshwork/syncproto"):
			case exchangeDeps(path, p):
			case strings.Contains(first, "."):
				t.Errorf("%s imports %s: syncproto is standalone (stdlib only)", path, p)
			case p == "testing" && !test:
				t.Errorf("%s: shipped code imports testing", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) < 2 {
		t.Fatalf("found only %d packages", len(docs))
	}
	for dir, ok := range docs {
		if !ok {
			t.Errorf("package in %s has no \"Package name ...\" doc comment", dir)
		}
	}
}

// exchangeDeps reports whether the file at path is in exchange/ (the
// delta exchange over libp2p) and imp one of the modules it may use.
func exchangeDeps(path, imp string) bool {
	if !strings.HasPrefix(filepath.ToSlash(path), "exchange/") {
		return false
	}
	for _, m := range []string{"github.com/libp2p/go-libp2p", "github.com/dgraph-io/badger/v4", "github.com/multiformats/go-multiaddr", "github.com/meshwork/meshwork/internal/framebuf"} {
		if imp == m || strings.HasPrefix(imp, m+"/") {
			return true
		}
	}
	return false
}
