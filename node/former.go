package node

import (
	"sync/atomic"
	"time"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/hlc"
)

// formerWriters says, for devices that may no longer write an object
// because they were revoked or made readers of a folder, until when they
// could: the revocation entry's time, or the folder definition's
// WriteUntil. A replica accepts a version such a device wrote before then
// (syncproto.Config.FormerWriter), so a device that joins after a
// revocation or a role change takes in the earlier work as every older
// member did, instead of refusing it and disagreeing with them for good
// (chaos harness, soak seeds 994 and 970: a file last written by a device
// revoked, or made a reader, later was missing on the device that joined
// after).
//
// Every device applies the same rule to the same data (the version's
// `when`, the signed log, the catalog), whenever the version reaches it,
// so they agree; a version the device wrote after the change, or in
// flight across it with a later `when`, is refused by all. No clock-skew
// margin is added: a device that learns of its change has observed the
// change's time in its clock, so what it writes after is later. What stays
// open is a device that took such a version before it learned of the
// change: it keeps it, while one that learned first refuses it.
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
		m := map[syncproto.DeviceID]hlc.Timestamp{}
		for id, t := range def.WriteUntil {
			if !folderRoleOf(def, id).CanWrite() && !t.IsZero() {
				m[id] = hlc.FromTime(t)
			}
		}
		fw.folders[def.ID] = m
	}
	if l == nil {
		return fw
	}
	for _, m := range l.Revoked() {
		if m.RevokedAt.IsZero() {
			continue
		}
		d := syncproto.DeviceID(m.ID.String())
		until := hlc.FromTime(m.RevokedAt)
		fw.shared[d] = until // every member edits the shared objects
		for _, def := range defs {
			if folderRoleOf(def, d).CanWrite() {
				fw.folders[def.ID][d] = until
			} // else it lost the right earlier (WriteUntil), or never had it
		}
	}
	return fw
}

// folderRoleOf is device id's role in a folder by its definition alone
// (folderRoles without the membership check).
func folderRoleOf(def folderDef, id syncproto.DeviceID) syncproto.Role {
	if id == def.Owner {
		return syncproto.RoleOwner
	}
	if s, ok := def.Roles[id]; ok {
		if r, err := s.parse(); err == nil {
			return r
		}
	}
	return syncproto.RoleEditor
}

// setRole gives device id role in the folder, noting when it loses the
// right to write (WriteUntil).
func (def *folderDef) setRole(id syncproto.DeviceID, role syncproto.Role, now time.Time) {
	if folderRoleOf(*def, id).CanWrite() && !role.CanWrite() {
		if def.WriteUntil == nil {
			def.WriteUntil = map[syncproto.DeviceID]time.Time{}
		}
		def.WriteUntil[id] = now.UTC()
	}
	if def.Roles == nil {
		def.Roles = map[syncproto.DeviceID]folderRole{}
	}
	def.Roles[id] = roleText(role)
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
