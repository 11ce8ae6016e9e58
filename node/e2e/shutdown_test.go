package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node"
)

// TestShutdownFailingStore removes the badger store directory of a running
// daemon that holds data (issue 20, failure 4): the daemon must report the
// store error in `mesh status`, and after SIGTERM it must exit (non-zero,
// with one log line naming the part that did not stop) instead of retrying
// a memtable flush forever.
func TestShutdownFailingStore(t *testing.T) {
	base := t.TempDir() // made first so that its cleanup runs after the daemons'
	a, b := startDaemon(t, "a"), startDaemon(t, "b")
	a.mesh("init", "--name", "alpha")
	b.mesh("join", a.invite(), "--name", "bravo")
	dirA, dirB := filepath.Join(base, "docs-a"), filepath.Join(base, "docs-b")
	write(t, filepath.Join(dirA, "notes.txt"), "first line\n")
	write(t, filepath.Join(dirA, "big.bin"), strings.Repeat("meshwork", 200000))
	a.mesh("folder", "add", dirA, "--name", "docs")
	idA := a.status().DeviceID
	waitFor(t, 30*time.Second, "b sees the folder", func() bool {
		return b.online(idA) && strings.Contains(b.mesh("folder", "list"), "docs")
	})
	b.mesh("folder", "join", "docs", dirB)
	b.mesh("wait", "docs", "--timeout", "60s")
	if got, err := os.ReadFile(filepath.Join(dirB, "notes.txt")); err != nil || string(got) != "first line\n" {
		t.Fatalf("notes.txt not synced to b: %q %v", got, err)
	}

	// The store fails under b: its directory goes away (the control
	// socket, in the home, stays).
	if err := os.RemoveAll(filepath.Join(b.home, "db")); err != nil {
		t.Fatal(err)
	}
	var st node.Status
	waitFor(t, 30*time.Second, "b's status to report the store error", func() bool {
		out, _, err := b.run("status", "--json")
		if err != nil {
			return false
		}
		st = node.Status{}
		return json.Unmarshal([]byte(out), &st) == nil && st.StoreErr != nil
	})
	if !strings.Contains(*st.StoreErr, "db") || st.StoreSince == nil {
		t.Fatalf("store error should name the store and say since when: %q since %v", *st.StoreErr, st.StoreSince)
	}
	if human := b.mesh("status"); !strings.Contains(human, "store error:") {
		t.Fatalf("human status lacks the store error:\n%s", human)
	}

	code, exited := sdStop(b, 20*time.Second)
	log, _ := os.ReadFile(filepath.Join(b.home, "meshd.log"))
	if !exited {
		t.Fatalf("meshd b did not exit within 20s of SIGTERM (killed)\n%s", tail(string(log), 60))
	}
	lines := sdLines(string(log), "did not stop within")
	if code == 0 || len(lines) != 1 || !strings.Contains(lines[0], "level=ERROR") || !strings.Contains(lines[0], "badger store") {
		t.Fatalf("want exit status != 0 and one ERROR line naming the badger store; got status %d, lines %q\n%s", code, lines, tail(string(log), 60))
	}
	if errs := sdLines(string(log), "msg=\"store error"); len(errs) != 1 {
		t.Fatalf("want the store error logged once at ERROR, got %q\n%s", errs, tail(string(log), 60))
	}
	t.Logf("b exited with status %d: %s", code, lines[0])
}

// sdStop sends SIGTERM to d and waits up to within for it to exit (a hang
// detector, not a speed check); it returns the exit status, or kills d and
// returns exited false. d counts as stopped afterwards.
func sdStop(d *daemon, within time.Duration) (code int, exited bool) {
	d.t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		exited = true
	case <-time.After(within):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	code = d.cmd.ProcessState.ExitCode()
	d.logf.Close()
	d.cmd = nil
	return code, exited
}

// sdLines returns the lines of log that contain s.
func sdLines(log, s string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}
