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

// TestCoreKnowsNoHTTP checks that package node itself (not its
// dependencies: libp2p speaks HTTP) imports no net/http: HTTP decoding,
// encoding and status codes belong here.
func TestCoreKnowsNoHTTP(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the fence runs go list: %v", err)
	}
	out, err := exec.Command(goCmd, "list", "-f", `{{join .Imports "\n"}}`, "github.com/meshwork/meshwork/node").CombinedOutput()
	if err != nil {
		t.Fatalf("go list node: %v\n%s", err, out)
	}
	imports := strings.Fields(string(out))
	if !contains(imports, "github.com/meshwork/meshwork/identity") {
		t.Fatalf("go list node: imports %q, not identity", out)
	}
	for _, imp := range imports {
		if imp == "net/http" || strings.HasPrefix(imp, "net/http/") {
			t.Fatalf("package node imports %s: the core knows nothing of HTTP (put handlers in node/localapi)", imp)
		}
	}
}
