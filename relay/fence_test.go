package relay_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/meshwork/meshwork"

// TestImportFence checks that the relay never depends on the daemon
// (node/): a relay must not be able to sync or store mesh data. It also
// checks that no shipped Meshwork package the relay builds on imports
// "testing".
func TestImportFence(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps",
		"-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`,
		module+"/relay", module+"/cmd/meshrelay").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		if pkg == module+"/node" || strings.HasPrefix(pkg, module+"/node/") {
			t.Errorf("relay depends on %s", pkg)
		}
		if !strings.HasPrefix(pkg, module+"/") {
			continue
		}
		for _, imp := range imports {
			if imp == "testing" {
				t.Errorf("shipped package %s imports testing", pkg)
			}
		}
	}
}
