package node

import (
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/syncproto"
)

func crDevice(t *testing.T) syncproto.DeviceID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return syncproto.DeviceID(id.String())
}

// crVersion is a version of catalog entry folder/NAME by `by`.
func crVersion(t *testing.T, by syncproto.DeviceID, updates uint32, def folderDef) syncproto.Item {
	t.Helper()
	b, err := json.Marshal(def)
	if err != nil {
		t.Fatal(err)
	}
	return syncproto.Item{
		Sync:    syncproto.Sync{ID: syncproto.ItemID("folder/" + def.Name), Updates: updates, History: []syncproto.History{{Sequence: updates, By: by}}},
		Content: syncproto.Content{Title: def.Name, Body: syncproto.Text(b)},
	}
}

func TestCatalogRules(t *testing.T) {
	owner, reader, coowner, admin := crDevice(t), crDevice(t), crDevice(t), crDevice(t)
	isAdmin := func(d string) bool { return d == string(admin) }
	def := folderDef{ID: "folder-0123456789abcdef", Name: "docs", Owner: owner,
		Roles: map[syncproto.DeviceID]folderRole{reader: "reader", coowner: "owner"}}
	cur := crVersion(t, owner, 2, def)
	with := func(f func(d *folderDef)) folderDef {
		d := def
		d.Roles = map[syncproto.DeviceID]folderRole{reader: "reader", coowner: "owner"}
		f(&d)
		return d
	}
	cases := []struct {
		name string
		by   syncproto.DeviceID
		def  folderDef
		prev *syncproto.Item
		ok   bool
		want string
	}{
		{"owner changes roles", owner, with(func(d *folderDef) { d.Roles[reader] = "editor" }), &cur, true, ""},
		{"reader makes itself editor", reader, with(func(d *folderDef) { d.Roles[reader] = "editor" }), &cur, false, "not an owner"},
		{"non-member of the folder makes itself editor", crDevice(t), with(func(d *folderDef) {}), &cur, false, "not an owner"},
		{"co-owner changes a reader", coowner, with(func(d *folderDef) { d.Roles[reader] = "none" }), &cur, true, ""},
		{"co-owner adds a co-owner", coowner, with(func(d *folderDef) { d.Roles[reader] = "owner" }), &cur, false, "co-owners"},
		{"admin changes a reader", admin, with(func(d *folderDef) { d.Roles[reader] = "editor" }), &cur, true, ""},
		{"admin takes ownership", admin, with(func(d *folderDef) { d.Owner = admin }), &cur, false, "never allowed"},
		{"admin makes itself co-owner", admin, with(func(d *folderDef) { d.Roles[admin] = "owner" }), &cur, false, "co-owners"},
		{"owner hands the folder over", owner, with(func(d *folderDef) { d.Owner = reader }), &cur, false, "never allowed"},
		{"owner points it at another object", owner, with(func(d *folderDef) { d.ID = "folder-ffffffffffffffff" }), &cur, false, "never allowed"},
		{"definition under another name", owner, with(func(d *folderDef) { d.Name = "other" }), nil, true, ""},
		{"new definition of the same object", reader, with(func(d *folderDef) { d.Name = "mine"; d.Owner = reader }), nil, false, "already"},
		{"new definition naming another owner", reader, with(func(d *folderDef) { d.Name = "new"; d.ID = "folder-1111111111111111" }), nil, false, "only its author"},
		{"new definition of the catalog itself", reader, with(func(d *folderDef) { d.Name = "new"; d.ID = catalogID; d.Owner = reader }), nil, false, "object ID"},
		{"new definition", reader, with(func(d *folderDef) { d.Name = "new"; d.ID = "folder-1111111111111111"; d.Owner = reader }), nil, true, ""},
	}
	for _, c := range cases {
		next := crVersion(t, c.by, 3, c.def)
		if c.name == "definition under another name" {
			// The item folder/docs with a body naming "other".
			next.Sync.ID = "folder/docs"
		}
		err := checkCatalogVersion([]syncproto.Item{cur}, c.prev, next, isAdmin)
		if c.name == "definition under another name" {
			if err == nil || !strings.Contains(err.Error(), "names") {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if (err == nil) != c.ok || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: got %v, want ok=%v %q", c.name, err, c.ok, c.want)
		}
	}
	// Deleting the entry is a version like any other.
	del := crVersion(t, reader, 3, def)
	del.Sync.Deleted = true
	if err := checkCatalogVersion(nil, &cur, del, isAdmin); err == nil {
		t.Error("a reader deleted a folder's definition")
	}
	del.Sync.History[0].By = owner
	if err := checkCatalogVersion(nil, &cur, del, isAdmin); err != nil {
		t.Errorf("the owner's delete: %v", err)
	}
}
