package localapi

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreNeverImportsAPI is the fence between the daemon's core and its
// API layer: package node (and everything it imports) must never import
// node/localapi. The API calls down into the core; the core calls nothing
// up (cmd/meshd wires the two).
func TestCoreNeverImportsAPI(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the fence runs go list: %v", err)
	}
	const api = "github.com/meshwork/meshwork/node/localapi"
	out, err := exec.Command(goCmd, "list", "-deps", "github.com/meshwork/meshwork/node").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps node: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !contains(deps, "github.com/meshwork/meshwork/node") {
		t.Fatalf("go list -deps node listed %d packages, not node itself: %q", len(deps), out)
	}
	for _, d := range deps {
		if d == api || strings.HasPrefix(d, api+"/") {
			t.Fatalf("package node depends on %s: the core must never import its API layer (wire them in cmd/meshd)", d)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
