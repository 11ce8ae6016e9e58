package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node"
)

// TestJoinWaitProgress: mesh folder join --wait returns once the copy is
// in sync, and the progress figures every folder list, status and event
// carries (the events stream's too) then count exactly the folder's files and bytes, all done; the
// status prints no progress line for a folder in sync.
func TestJoinWaitProgress(t *testing.T) {
	a, b := startDaemon(t, "a"), startDaemon(t, "b")
	joinPair(t, a, b)
	dir := t.TempDir()
	var files int
	var bytes int64
	for i := range 120 {
		content := strings.Repeat(fmt.Sprintf("file %d ", i), 1+i*37) // 7 B to ~40 KiB
		write(t, filepath.Join(dir, fmt.Sprintf("d%d/f%d.txt", i%7, i)), content)
		files++
		bytes += int64(len(content))
	}
	a.mesh("folder", "add", dir, "--name", "docs")
	a.mesh("wait", "docs", "--timeout", "60s")
	waitFor(t, 60*time.Second, "b lists folder docs", func() bool {
		out, _, err := b.run("folder", "list")
		return err == nil && strings.Contains(out, "docs")
	})

	events, closeEvents := b.api().events("", "")
	defer closeEvents()
	out, errOut, err := b.run("folder", "join", "docs", t.TempDir(), "--wait", "--timeout", "120s")
	if err != nil || !strings.Contains(out, "docs: in sync") {
		t.Fatalf("mesh folder join --wait: %v\nstdout %s\nstderr %s", err, out, errOut)
	}
	for _, d := range []*daemon{a, b} {
		fi := cgFolderInfo(t, d, "docs")
		p := fi.Progress
		if p == nil {
			t.Fatalf("%s: folder list --json has no progress for docs: %+v", d.name, fi)
		}
		if p.FilesTotal != files || p.FilesDone != files || p.BytesTotal != bytes || p.BytesDone != bytes || p.ETASeconds != 0 {
			t.Fatalf("%s: progress %+v, want %d of %d files and %d of %d bytes, no ETA", d.name, *p, files, files, bytes, bytes)
		}
	}
	// The events stream carries the same figures: its folder events are
	// the folder list's entries.
	waitEvent(t, events, 20*time.Second, "a folder event with docs' progress done", func(e sseEvent) bool {
		var fi node.FolderInfo
		return e.Type == "folder" && json.Unmarshal([]byte(e.Data), &fi) == nil && fi.Name == "docs" && fi.Progress != nil &&
			fi.Progress.FilesDone == files && fi.Progress.FilesTotal == files && fi.Progress.BytesDone == bytes && fi.Progress.BytesTotal == bytes
	})
	if st := b.mesh("status"); strings.Contains(st, "files,") {
		t.Fatalf("mesh status prints a progress line for a folder in sync:\n%s", st)
	}
}
