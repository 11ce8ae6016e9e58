package node

import (
	"testing"
	"time"

	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/hlc"
)

// TestFormerWritersFromRoles: a device made a reader is vouched for up to
// the time it lost the right to write, in that folder only; one that was
// a reader all along, or is an editor again, is not.
func TestFormerWritersFromRoles(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	def := folderDef{ID: "folder-1", Owner: "owner"}
	def.setRole("b", syncproto.RoleReader, t0)        // editor by default: loses the right now
	def.setRole("r", syncproto.RoleReader, t0)        // the same
	def.setRole("r", syncproto.RoleReader, t0.Add(1)) // a reader already: its time stays
	def.setRole("e", syncproto.RoleReader, t0)
	def.setRole("e", syncproto.RoleEditor, t0.Add(time.Minute)) // an editor again
	if got := def.WriteUntil["r"]; !got.Equal(t0) {
		t.Fatalf("WriteUntil of a device made a reader twice = %v, want %v", got, t0)
	}
	fw := computeFormerWriters(nil, map[string]folderDef{"docs": def})
	if until, ok := fw.until("folder-1", "b"); !ok || until != hlc.FromTime(t0) {
		t.Errorf("b in its folder: %v %v, want %v", until, ok, hlc.FromTime(t0))
	}
	if _, ok := fw.until("folder-1", "e"); ok {
		t.Error("an editor again is vouched for as a former writer")
	}
	if _, ok := fw.until("catalog", "b"); ok {
		t.Error("a folder reader is vouched for in other objects")
	}
	if _, ok := (*formerWriters)(nil).until("folder-1", "b"); ok {
		t.Error("no formerWriters vouches for someone")
	}
}
