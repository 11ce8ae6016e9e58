package node

// The catalog's definitions: the JSON bodies of its items "folder/NAME"
// (folderDef) and "object/NAME" (objectDef). Every device stores them in
// its replica of the catalog and sends them on the wire, so their encoding
// must not change (defs_test.go holds it).

import (
	"encoding/json"
	"time"

	"github.com/meshwork/meshwork/syncproto"
)

// objectKind is what a mesh object is: the "kind" of an object definition
// (list, todo, notes) and of the API's objects (those, folder, news, view).
type objectKind string

// Object kinds.
const (
	kindFolder objectKind = "folder"
	kindList   objectKind = "list"
	kindTodo   objectKind = "todo"
	kindNotes  objectKind = "notes"
	kindNews   objectKind = "news"
	kindView   objectKind = "view"
)

// definable reports whether k is a kind an object definition may have.
func (k objectKind) definable() bool { return k == kindList || k == kindTodo || k == kindNotes }

// folderRole is a role as a folder definition holds it: the text form of a
// syncproto.Role (reader, editor, owner, none). It stays text, not a Role,
// because a definition may hold a name that does not parse: the catalog
// rules refuse such a version, and where one is held anyway the device
// keeps the default role (folderRoles, folderRoleOf).
type folderRole string

// roleText is r as a folder definition holds it.
func roleText(r syncproto.Role) folderRole { return folderRole(r.String()) }

// parse returns the role r names.
func (r folderRole) parse() (syncproto.Role, error) { return syncproto.ParseRole(string(r)) }

// folderDef is the body of a catalog item "folder/NAME".
type folderDef struct {
	ID      syncproto.ObjectID                `json:"id"`
	Name    string                            `json:"name"`
	Owner   syncproto.DeviceID                `json:"owner"`
	Roles   map[syncproto.DeviceID]folderRole `json:"roles,omitempty"`
	Created time.Time                         `json:"created"`
	// WriteUntil: device ID → when an owner took its right to write away
	// (made it a reader or none); what it wrote before stays valid
	// (former.go).
	WriteUntil map[syncproto.DeviceID]time.Time `json:"write_until,omitempty"`
}

// objectDef is the body of a catalog item "object/NAME".
type objectDef struct {
	ID      syncproto.ObjectID `json:"id"`
	Name    string             `json:"name"`
	Kind    objectKind         `json:"kind"` // list, todo, notes (definable)
	Owner   syncproto.DeviceID `json:"owner"`
	Created time.Time          `json:"created"`
}

// The definitions are decoded through these mirrors with plain strings for
// device IDs: syncproto.DeviceID's UnmarshalText refuses what
// ParseDeviceID does ("", spaces, non-ASCII), where the definitions, typed
// with strings until issue 15, took any string. Decoding them directly
// would make this version drop or refuse a definition that older ones
// accept, and the replicas would disagree. Encoding needs no mirror:
// DeviceID's MarshalText and a string-kinded map key write the same bytes
// as a string.
type (
	folderDefJSON struct {
		ID         syncproto.ObjectID   `json:"id"`
		Name       string               `json:"name"`
		Owner      string               `json:"owner"`
		Roles      map[string]string    `json:"roles,omitempty"`
		Created    time.Time            `json:"created"`
		WriteUntil map[string]time.Time `json:"write_until,omitempty"`
	}
	objectDefJSON struct {
		ID      syncproto.ObjectID `json:"id"`
		Name    string             `json:"name"`
		Kind    string             `json:"kind"`
		Owner   string             `json:"owner"`
		Created time.Time          `json:"created"`
	}
)

// UnmarshalJSON decodes b as encoding/json decoded the untyped definition:
// into d's current values, keeping what it decoded before an error.
func (d *folderDef) UnmarshalJSON(b []byte) error {
	w := folderDefJSON{ID: d.ID, Name: d.Name, Owner: string(d.Owner), Roles: stringKeys(d.Roles, func(r folderRole) string { return string(r) }),
		Created: d.Created, WriteUntil: stringKeys(d.WriteUntil, func(t time.Time) time.Time { return t })}
	err := json.Unmarshal(b, &w)
	*d = folderDef{ID: w.ID, Name: w.Name, Owner: syncproto.DeviceID(w.Owner), Roles: deviceKeys(w.Roles, func(r string) folderRole { return folderRole(r) }),
		Created: w.Created, WriteUntil: deviceKeys(w.WriteUntil, func(t time.Time) time.Time { return t })}
	return err
}

// UnmarshalJSON decodes b as encoding/json decoded the untyped definition.
func (d *objectDef) UnmarshalJSON(b []byte) error {
	w := objectDefJSON{ID: d.ID, Name: d.Name, Kind: string(d.Kind), Owner: string(d.Owner), Created: d.Created}
	err := json.Unmarshal(b, &w)
	*d = objectDef{ID: w.ID, Name: w.Name, Kind: objectKind(w.Kind), Owner: syncproto.DeviceID(w.Owner), Created: w.Created}
	return err
}

// stringKeys and deviceKeys convert a definition's map between its typed
// and its decoded form; nil stays nil (omitempty, and no map where the JSON
// has none).
func stringKeys[V, W any](m map[syncproto.DeviceID]V, f func(V) W) map[string]W {
	if m == nil {
		return nil
	}
	out := make(map[string]W, len(m))
	for k, v := range m {
		out[string(k)] = f(v)
	}
	return out
}

func deviceKeys[V, W any](m map[string]V, f func(V) W) map[syncproto.DeviceID]W {
	if m == nil {
		return nil
	}
	out := make(map[syncproto.DeviceID]W, len(m))
	for k, v := range m {
		out[syncproto.DeviceID(k)] = f(v)
	}
	return out
}
