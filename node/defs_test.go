package node

import (
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/meshwork/meshwork/syncproto"
)

// The catalog definitions' JSON as the untyped definitions (string owner,
// kind and map keys) wrote it before issue 15: every replica holds it and
// every peer sends it, so the typed ones must write and read the same.
const (
	goldenFolderDef     = `{"id":"folder-0123456789abcdef","name":"docs \u003c\u0026\u003e é","owner":"12D3KooWOwner","roles":{"12D3KooWCo":"owner","12D3KooWEditor":"editor","12D3KooWGone":"none","12D3KooWOdd":"bogus","12D3KooWReader":"reader"},"created":"2026-12-01T10:30:15.123456789Z","write_until":{"12D3KooWGone":"2026-12-02T08:00:00+01:00","12D3KooWReader":"2026-12-01T11:30:15.123456789Z"}}`
	goldenFolderDefZero = `{"id":"","name":"","owner":"","created":"0001-01-01T00:00:00Z"}`
	goldenObjectDef     = `{"id":"obj-0123456789abcdef","name":"shopping \u003c\u0026\u003e","kind":"todo","owner":"12D3KooWOwner","created":"2026-12-01T10:30:15.123456789Z"}`
	goldenObjectDefZero = `{"id":"","name":"","kind":"","owner":"","created":"0001-01-01T00:00:00Z"}`
	goldenObjectInfo    = `{"name":"n","id":"obj-1","kind":"notes","items":3}`
)

func goldenDefs() (folderDef, objectDef) {
	created := time.Date(2026, 12, 1, 10, 30, 15, 123456789, time.UTC)
	fd := folderDef{ID: "folder-0123456789abcdef", Name: "docs <&> é", Owner: "12D3KooWOwner",
		Roles: map[syncproto.DeviceID]folderRole{"12D3KooWReader": roleText(syncproto.RoleReader), "12D3KooWEditor": roleText(syncproto.RoleEditor),
			"12D3KooWCo": roleText(syncproto.RoleOwner), "12D3KooWGone": roleText(syncproto.RoleNone), "12D3KooWOdd": "bogus"},
		Created: created,
		WriteUntil: map[syncproto.DeviceID]time.Time{"12D3KooWReader": created.Add(time.Hour),
			"12D3KooWGone": time.Date(2026, 12, 2, 8, 0, 0, 0, time.FixedZone("X", 3600))}}
	od := objectDef{ID: "obj-0123456789abcdef", Name: "shopping <&>", Kind: kindTodo, Owner: "12D3KooWOwner", Created: created}
	return fd, od
}

func TestDefsEncoding(t *testing.T) {
	fd, od := goldenDefs()
	for _, c := range []struct {
		name string
		v    any
		want string
	}{
		{"folderDef", fd, goldenFolderDef},
		{"zero folderDef", folderDef{}, goldenFolderDefZero},
		{"objectDef", od, goldenObjectDef},
		{"zero objectDef", objectDef{}, goldenObjectDefZero},
		{"ObjectInfo", ObjectInfo{Name: "n", ID: "obj-1", Kind: string(kindNotes), Items: 3}, goldenObjectInfo},
	} {
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatalf("marshal %s: %v", c.name, err)
		}
		if string(b) != c.want {
			t.Errorf("marshal %s:\n got %s\nwant %s", c.name, b, c.want)
		}
	}
}

func TestDefsDecoding(t *testing.T) {
	wantF, wantO := goldenDefs()
	var fd folderDef
	if err := json.Unmarshal([]byte(goldenFolderDef), &fd); err != nil {
		t.Fatalf("unmarshal folderDef: %v", err)
	}
	if fd.ID != wantF.ID || fd.Name != wantF.Name || fd.Owner != wantF.Owner || !fd.Created.Equal(wantF.Created) ||
		!maps.Equal(fd.Roles, wantF.Roles) || !maps.EqualFunc(fd.WriteUntil, wantF.WriteUntil, time.Time.Equal) {
		t.Errorf("unmarshal folderDef:\n got %+v\nwant %+v", fd, wantF)
	}
	var od objectDef
	if err := json.Unmarshal([]byte(goldenObjectDef), &od); err != nil {
		t.Fatalf("unmarshal objectDef: %v", err)
	}
	if od.ID != wantO.ID || od.Name != wantO.Name || od.Kind != wantO.Kind || od.Owner != wantO.Owner || !od.Created.Equal(wantO.Created) {
		t.Errorf("unmarshal objectDef:\n got %+v\nwant %+v", od, wantO)
	}
	// An empty owner or map key, which syncproto.ParseDeviceID refuses,
	// decodes as it did into strings: the catalog rules decide about it.
	var zf folderDef
	if err := json.Unmarshal([]byte(`{"id":"folder-1","owner":"","roles":{"":"reader","a b":"editor"},"write_until":{"":"2026-12-01T10:00:00Z"}}`), &zf); err != nil {
		t.Errorf("unmarshal folderDef with an empty owner and keys: %v", err)
	} else if zf.Owner != "" || zf.Roles[""] != "reader" || zf.Roles["a b"] != "editor" || zf.WriteUntil[""].IsZero() {
		t.Errorf("unmarshal folderDef with an empty owner and keys: %+v", zf)
	}
	var zo objectDef
	if err := json.Unmarshal([]byte(goldenObjectDefZero), &zo); err != nil || zo != (objectDef{Created: zo.Created}) || !zo.Created.IsZero() {
		t.Errorf("unmarshal the zero objectDef: %+v, %v", zo, err)
	}
	// No map where the JSON has none (omitempty writes none again).
	var nf folderDef
	if err := json.Unmarshal([]byte(goldenFolderDefZero), &nf); err != nil || nf.Roles != nil || nf.WriteUntil != nil {
		t.Errorf("unmarshal the zero folderDef: %+v, %v", nf, err)
	}
}
