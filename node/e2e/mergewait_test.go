package e2e

import (
	"strings"
	"syscall"
	"testing"
)

// TestMgWaitAllMembersFailed: a wait none of whose rounds with the online
// members succeeded (both other members connected but stopped with
// SIGSTOP) is an error naming them, not "in sync" (chaos seed 21: waits
// returned although their rounds with a member had failed).
func TestMgWaitAllMembersFailed(t *testing.T) {
	devs, _ := mesh3(t)
	a, b, c := devs[0], devs[1], devs[2]
	for _, d := range []*daemon{b, c} {
		if err := d.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = d.cmd.Process.Signal(syscall.SIGCONT) }()
	}
	out, errOut, err := a.run("wait", "docs", "--timeout", "10s")
	if err == nil {
		t.Fatalf("wait with every member silent succeeded: %q", out)
	}
	if !strings.Contains(errOut, "no sync round with any online member") ||
		!strings.Contains(errOut, "bravo (") || !strings.Contains(errOut, "charlie (") {
		t.Fatalf("wait should fail naming bravo and charlie: err %v, stderr %q", err, errOut)
	}
}
