package blobs

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestPackageFences checks that every package under blobs/ has a package
// doc comment and that no shipped (non-test) file imports testing.
func TestPackageFences(t *testing.T) {
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() || d.Name() == "testdata" {
			return err
		}
		pkg, err := build.ImportDir(p, 0)
		if _, ok := err.(*build.NoGoError); ok {
			return nil
		}
		if err != nil {
			return err
		}
		if pkg.Doc == "" {
			t.Errorf("package %s has no doc comment", p)
		}
		if slices.Contains(pkg.Imports, "testing") {
			t.Errorf("package %s imports testing outside tests", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
