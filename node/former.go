package node

import (
	"sync/atomic"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/hlc"
)

// formerWriters says, for devices that may no longer write an object
// because they were revoked, until when they could: the revocation entry's
// time, plus the clock skew two honest devices may have (the versions'
// `when` come from the author's clock, the revocation's from the admin's).
// A replica accepts a version such a device wrote before then
// (syncproto.Config.FormerWriter), so a device that joins after a
// revocation takes in the revoked device's earlier work as every older
// member did, instead of refusing it and disagreeing with them for good
// (chaos harness, soak seed 994: a file truncated by a device revoked
// later was missing on the device that joined after).
//
// It is recomputed with the roles (syncRoles) from the membership log and
// the catalog, and read without locks while replicas apply items.
type formerWriters struct {
	shared  map[syncproto.DeviceID]hlc.Timestamp                        // every object but folders
	folders map[syncproto.ObjectID]map[syncproto.DeviceID]hlc.Timestamp // by folder
}

func computeFormerWriters(l *identity.Log, defs map[string]folderDef) *formerWriters {
	fw := &formerWriters{shared: map[syncproto.DeviceID]hlc.Timestamp{}, folders: map[syncproto.ObjectID]map[syncproto.DeviceID]hlc.Timestamp{}}
	for _, def := range defs {
		fw.folders[def.ID] = map[syncproto.DeviceID]hlc.Timestamp{}
	}
	if l == nil {
		return fw
	}
	for _, m := range l.Revoked() {
		if m.RevokedAt.IsZero() {
			continue
		}
		d := syncproto.DeviceID(m.ID.String())
		until := hlc.FromTime(m.RevokedAt.Add(hlc.DefaultMaxSkew))
		fw.shared[d] = until // every member edits the shared objects
		for _, def := range defs {
			if folderRoleOf(def, m.ID.String()).CanWrite() {
				fw.folders[def.ID][d] = until
			}
		}
	}
	return fw
}

// folderRoleOf is device id's role in a folder by its definition alone
// (folderRoles without the membership check).
func folderRoleOf(def folderDef, id string) syncproto.Role {
	if id == def.Owner {
		return syncproto.RoleOwner
	}
	if s, ok := def.Roles[id]; ok {
		if r, err := syncproto.ParseRole(s); err == nil {
			return r
		}
	}
	return syncproto.RoleEditor
}

func (fw *formerWriters) until(obj syncproto.ObjectID, d syncproto.DeviceID) (hlc.Timestamp, bool) {
	if fw == nil {
		return hlc.Timestamp{}, false
	}
	if m, ok := fw.folders[obj]; ok {
		t, ok := m[d]
		return t, ok
	}
	t, ok := fw.shared[d]
	return t, ok
}

// formerHolder holds the current formerWriters.
type formerHolder struct{ p atomic.Pointer[formerWriters] }

func (h *formerHolder) until(obj syncproto.ObjectID, d syncproto.DeviceID) (hlc.Timestamp, bool) {
	return h.p.Load().until(obj, d)
}

// updateFormerWriters recomputes who could write until when.
func (n *Node) updateFormerWriters() {
	n.former.p.Store(computeFormerWriters(n.membership(), n.catalog()))
}
