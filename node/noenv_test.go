package node

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/meshwork/meshwork/blobs/s3store"
)

// TestLibraryReadsNoEnv is the fence that keeps the environment at the
// edge: no non-test file of node/ or its packages reads it. cmd/meshd reads
// the variables and passes them in (Config.ApplyEnv, Config fields). The
// one exception is home.go: DefaultHome, the commands' default-home logic
// (MESH_HOME, XDG_DATA_HOME), which cmd/meshd and node/cli call before any
// Node exists.
func TestLibraryReadsNoEnv(t *testing.T) {
	allowed := map[string]bool{"home.go": true}
	reads := regexp.MustCompile(`\b(os\.(Getenv|LookupEnv|Environ|ExpandEnv)|syscall\.Getenv)\b`)
	scanned := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "e2e") && path != "." {
			return filepath.SkipDir // test programs only
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || allowed[path] {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned++
		for i, line := range strings.Split(string(b), "\n") {
			if code, _, _ := strings.Cut(line, "//"); reads.MatchString(code) {
				t.Errorf("node/%s:%d reads the environment (%s): read it in cmd/meshd and pass it in through node.Config", path, i+1, strings.TrimSpace(code))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned < 20 {
		t.Fatalf("scanned %d files of node/: the walk missed the package", scanned)
	}
}

func TestApplyEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	var c Config
	if err := c.ApplyEnv(env(map[string]string{"MESHWORK_DIRECT_WRITES": "0", "MESH_S3_ENDPOINT": "https://x"})); err != nil || !c.NoDirectWrites || c.S3 != nil {
		t.Fatalf("device: err %v, NoDirectWrites %v, S3 %+v: want direct writes off and no S3 (not a storage peer)", err, c.NoDirectWrites, c.S3)
	}
	c = Config{Role: RoleStorage, Store: "s3://b/p"}
	if err := c.ApplyEnv(env(map[string]string{"MESH_S3_INSECURE": "maybe"})); err == nil {
		t.Fatal("MESH_S3_INSECURE=maybe: no error")
	}
	c = Config{Role: RoleStorage, Store: "s3://b/p", S3: &s3store.Config{Endpoint: "https://file", Region: "r"}}
	if err := c.ApplyEnv(env(map[string]string{"MESH_S3_ENDPOINT": "https://env"})); err != nil {
		t.Fatal(err)
	}
	if c.NoDirectWrites || c.S3.Endpoint != "https://env" || c.S3.Region != "r" {
		t.Fatalf("storage: NoDirectWrites %v, S3 %+v: want the env endpoint over the file's, the file's region", c.NoDirectWrites, c.S3)
	}
	if _, err := s3Config(&s3store.Config{}); err == nil {
		t.Fatal("s3Config without an endpoint: no error")
	}
}
