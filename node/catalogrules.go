package node

// The catalog's rules: what a version of a catalog entry ("folder/NAME",
// "object/NAME") may say, and who may write it. Every member edits the
// catalog object (so that any member can share a folder), but a folder's
// definition decides who may read and write the folder, so a version of a
// definition counts only when its author may change it. The rules run on
// every replica for every new version, received or local
// (syncproto.Config.Validate, installed for every replica by openSync), so a
// refused version is never applied, logged or relayed:
//
//   - a new entry (one this replica does not hold) names its author as
//     owner, unless the author is a mesh admin, and uses an object ID of its
//     kind ("folder-…", "obj-…") that no other entry of the catalog uses;
//   - a version of an existing entry is by one of its owners (the
//     definition's owner, or a device it made "owner" in its roles) or by a
//     mesh admin (owner or admin in the membership log);
//   - no version changes an entry's object ID, owner or kind; co-owners
//     (roles "owner") are given and taken by the definition's owner only:
//     neither a co-owner nor a mesh admin can take a folder over;
//   - the body is a valid definition whose name is the entry's.
//
// Known limit: a device that has never held an entry takes the first
// valid version it receives; until items are signed, an author can also
// claim another device's `by` (issue 14 row 3).

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/syncproto"
)

// catalogEntry is what the rules read from a catalog item.
type catalogEntry struct {
	id       syncproto.ObjectID
	owner    syncproto.DeviceID
	kind     objectKind                  // list, todo, notes; "" for folders
	coOwners map[syncproto.DeviceID]bool // devices with role "owner" besides owner
}

// validateVersion is the Validator of every replica: the catalog's rules.
func (n *Node) validateVersion(v syncproto.View, prev *syncproto.Item, next syncproto.Item) error {
	if v.Object() != catalogID {
		return nil
	}
	return checkCatalogVersion(v.Items(), prev, next, n.members.isMeshAdmin)
}

// checkCatalogVersion applies the catalog's rules to version next of a
// catalog item; prev is the replica's item (nil: not held), items the
// catalog's items.
func checkCatalogVersion(items []syncproto.Item, prev *syncproto.Item, next syncproto.Item, isAdmin func(string) bool) error {
	author := next.Sync.Top().By
	e, err := parseCatalogEntry(next)
	if err != nil {
		return fmt.Errorf("catalog entry %q by %s: %w", next.Sync.ID, author, err)
	}
	var p *catalogEntry
	owners := map[syncproto.DeviceID]bool{}
	if prev != nil {
		for _, pv := range prev.Versions() {
			pe, err := parseCatalogEntry(pv)
			if err != nil {
				continue
			}
			if p == nil {
				p = &pe // the winner, or the first valid version
			}
			owners[pe.owner] = true
			maps.Copy(owners, pe.coOwners)
		}
	}
	if p == nil {
		if author != e.owner && !isAdmin(string(author)) {
			return fmt.Errorf("new catalog entry %q by %s names %s as owner: only its author or a mesh admin may", next.Sync.ID, author, e.owner)
		}
		for _, it := range items {
			if it.Sync.ID == next.Sync.ID {
				continue
			}
			for _, ov := range it.Versions() {
				if oe, err := parseCatalogEntry(ov); err == nil && oe.id == e.id {
					return fmt.Errorf("new catalog entry %q by %s: object %q is already %q", next.Sync.ID, author, e.id, it.Sync.ID)
				}
			}
		}
		return nil
	}
	if !owners[author] && !isAdmin(string(author)) {
		return fmt.Errorf("catalog entry %q: %s is not an owner of it (owner %s) nor a mesh admin", next.Sync.ID, author, p.owner)
	}
	if e.id != p.id || e.owner != p.owner || e.kind != p.kind {
		return fmt.Errorf("catalog entry %q by %s: changes object %q owned by %s (kind %q) to %q owned by %s (kind %q): never allowed",
			next.Sync.ID, author, p.id, p.owner, p.kind, e.id, e.owner, e.kind)
	}
	if author != p.owner && !maps.Equal(e.coOwners, p.coOwners) {
		return fmt.Errorf("catalog entry %q by %s: changes its co-owners from %v to %v: only its owner %s may",
			next.Sync.ID, author, slices.Sorted(maps.Keys(p.coOwners)), slices.Sorted(maps.Keys(e.coOwners)), p.owner)
	}
	return nil
}

// parseCatalogEntry reads and checks the definition in a catalog item.
func parseCatalogEntry(it syncproto.Item) (catalogEntry, error) {
	kind, name, ok := strings.Cut(string(it.Sync.ID), "/")
	if !ok || (kind != "folder" && kind != "object") {
		return catalogEntry{}, fmt.Errorf("not a folder/NAME or object/NAME entry")
	}
	t, ok := it.Body.(syncproto.Text)
	if !ok {
		return catalogEntry{}, fmt.Errorf("body is %T, not a definition", it.Body)
	}
	var e catalogEntry
	var defName, prefix string
	if kind == "folder" {
		var d folderDef
		if err := json.Unmarshal([]byte(t), &d); err != nil {
			return catalogEntry{}, fmt.Errorf("folder definition: %w", err)
		}
		e = catalogEntry{id: d.ID, owner: d.Owner, coOwners: map[syncproto.DeviceID]bool{}}
		defName, prefix = d.Name, "folder-"
		for dev, r := range d.Roles {
			role, err := r.parse()
			if err != nil {
				return catalogEntry{}, fmt.Errorf("folder definition: role of %s: %w", dev, err)
			}
			if role == syncproto.RoleOwner && dev != d.Owner {
				e.coOwners[dev] = true
			}
		}
	} else {
		var d objectDef
		if err := json.Unmarshal([]byte(t), &d); err != nil {
			return catalogEntry{}, fmt.Errorf("object definition: %w", err)
		}
		if !d.Kind.definable() {
			return catalogEntry{}, fmt.Errorf("object definition: kind %q: want list, todo or notes", d.Kind)
		}
		e = catalogEntry{id: d.ID, owner: d.Owner, kind: d.Kind, coOwners: map[syncproto.DeviceID]bool{}}
		defName, prefix = d.Name, "obj-"
	}
	if defName != name {
		return catalogEntry{}, fmt.Errorf("definition names %q, the entry is %q", defName, name)
	}
	if _, err := syncproto.ParseObjectID(string(e.id)); err != nil || !strings.HasPrefix(string(e.id), prefix) {
		return catalogEntry{}, fmt.Errorf("object ID %q: want %s followed by its random part", e.id, prefix)
	}
	if _, err := peer.Decode(string(e.owner)); err != nil {
		return catalogEntry{}, fmt.Errorf("owner %q is not a device ID", e.owner)
	}
	return e, nil
}
