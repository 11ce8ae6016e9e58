package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/exchange"
)

// Mesh objects in the daemon.
//
// The exchange engine (/meshwork/sync/1.0.0) holds every replica this
// device keeps, persisted in badger under "sync/". Two objects exist in
// every mesh and are created by each device when it inits or joins (the
// replicas of one object ID on different devices converge by merging):
//
//   - the catalog (catalogID, type list): one item per shared folder,
//     "folder/NAME", whose text body is a folderDef in JSON — the folder's
//     object ID, owner and per-device roles;
//   - the news stream (newsID, type news): what happened, one item per event,
//     written by the device where it happened and synced to all.
//
// Roles: in the catalog and news, mesh owners and admins are owners and
// every other member an editor. In a folder, its creator is owner, devices
// listed in its definition have the role given there, and every other
// current member is an editor. Revoked devices get no role (what they, or
// devices made readers, wrote before that stays valid: former.go). Roles are
// recomputed on every membership or catalog change and enforced by every
// device when it applies items (a reader's changes are refused by all).
// A version of a folder definition counts only from the folder's owners or
// a mesh admin, and never changes its owner (catalogrules.go). Known limit:
// FeedSync items are not signed, so a member can still claim another
// device's `by`; the mesh boundary itself is the signed membership log.

const (
	catalogID = syncproto.ObjectID("meshwork-catalog")
	newsID    = syncproto.ObjectID("meshwork-news")
)

type memberGate struct{ n *Node }

// IsMember leaves storage peers out of the plaintext sync, both ways.
func (g memberGate) IsMember(p peer.ID) bool {
	return !g.n.isStorage() && g.n.IsMember(p) && !g.n.st.isStoragePeer(p)
}

func (n *Node) openSync() {
	n.sync = exchange.New(n.host, exchange.Config{
		Members: memberGate{n},
		Store:   exchange.NewBadgerStore(n.db, "sync/"),
		OnChange: func(obj syncproto.ObjectID, items []syncproto.Item) {
			n.onSyncChange(obj, items)
			n.onObjectChange(obj, items)
		},
		OnLocalChange: n.onObjectChange,
		Validate:      n.validateVersion, // the catalog's rules (catalogrules.go)
		FormerWriter:  n.former.until,    // a revoked device's earlier work (former.go)
	}, n.log.With("component", "sync"))
	n.objs.engine = n.sync
}

// loadReplicas re-adds the replicas persisted by an earlier run.
func (n *Node) loadReplicas(ctx context.Context) error {
	st := exchange.NewBadgerStore(n.db, "sync/")
	ids, err := st.List(ctx)
	if err != nil {
		return fmt.Errorf("list stored objects: %w", err)
	}
	for _, id := range ids {
		b, err := st.Get(ctx, id)
		if err != nil {
			return fmt.Errorf("load object %q: %w", id, err)
		}
		obj, err := syncproto.DecodeObject(b, n.sync.ObjectConfig())
		if err != nil {
			return fmt.Errorf("load object %q: %w", id, err)
		}
		if err := n.sync.Add(obj); err != nil && !errors.Is(err, exchange.ErrExists) {
			return fmt.Errorf("load object %q: %w", id, err)
		}
	}
	return nil
}

// ensureSharedObjects creates this device's replicas of the catalog and the
// news stream once it belongs to a mesh.
func (n *Node) ensureSharedObjects() error {
	l := n.membership()
	if l == nil || n.isStorage() {
		return nil
	}
	for _, o := range []struct {
		id  syncproto.ObjectID
		typ syncproto.ObjectType
	}{{catalogID, syncproto.TypeList}, {newsID, syncproto.TypeNews}, {presenceID, syncproto.TypeList}} {
		if n.sync.Object(o.id) != nil {
			continue
		}
		obj, err := syncproto.NewObject(o.id, o.typ, sharedRoles(l), n.sync.ObjectConfig())
		if err != nil {
			return fmt.Errorf("create %s: %w", o.id, err)
		}
		if err := n.sync.Add(obj); err != nil && !errors.Is(err, exchange.ErrExists) {
			return fmt.Errorf("create %s: %w", o.id, err)
		}
	}
	return nil
}

// sharedRoles: mesh owners and admins own the shared objects, members edit.
func sharedRoles(l *identity.Log) map[syncproto.DeviceID]syncproto.Role {
	roles := map[syncproto.DeviceID]syncproto.Role{}
	for _, m := range l.Members() {
		r := syncproto.RoleEditor
		if m.Role.CanAdmin() {
			r = syncproto.RoleOwner
		}
		roles[syncproto.DeviceID(m.ID.String())] = r
	}
	return roles
}

// folderRoles computes a folder's roles from its definition and the mesh.
func folderRoles(l *identity.Log, def folderDef) map[syncproto.DeviceID]syncproto.Role {
	roles := map[syncproto.DeviceID]syncproto.Role{}
	for _, m := range l.Members() {
		id := syncproto.DeviceID(m.ID.String())
		r := syncproto.RoleEditor
		if s, ok := def.Roles[id]; ok {
			if pr, err := s.parse(); err == nil {
				r = pr
			}
		}
		if id == def.Owner {
			r = syncproto.RoleOwner
		}
		if r == syncproto.RoleNone {
			continue // not a member of the folder's object at all
		}
		roles[id] = r
	}
	return roles
}

// catalog returns the folder definitions, by name.
func (n *Node) catalog() map[string]folderDef {
	out := map[string]folderDef{}
	_ = n.sync.View(catalogID, func(o *syncproto.Object) error {
		for _, it := range o.Items() {
			if it.Sync.Deleted || !strings.HasPrefix(string(it.Sync.ID), "folder/") {
				continue
			}
			t, ok := it.Body.(syncproto.Text)
			if !ok {
				continue
			}
			var def folderDef
			if json.Unmarshal([]byte(t), &def) == nil && def.ID != "" {
				out[def.Name] = def
			}
		}
		return nil
	})
	return out
}

func (n *Node) putFolderDef(def folderDef) error {
	b, err := json.Marshal(def)
	if err != nil {
		return err
	}
	_, err = n.sync.Update(catalogID, syncproto.ItemID("folder/"+def.Name), syncproto.Content{Title: def.Name, Body: syncproto.Text(b)})
	return err
}

// syncRoles brings every replica's member roles in line with the mesh and
// the catalog.
func (n *Node) syncRoles() {
	l := n.membership()
	if l == nil {
		return
	}
	want := map[syncproto.ObjectID]map[syncproto.DeviceID]syncproto.Role{
		catalogID:  sharedRoles(l),
		newsID:     sharedRoles(l),
		presenceID: sharedRoles(l),
	}
	for _, d := range n.objs.defs() {
		want[d.ID] = sharedRoles(l)
	}
	defs := n.catalog()
	for _, def := range defs {
		want[def.ID] = folderRoles(l, def)
	}
	n.former.p.Store(computeFormerWriters(l, defs))
	for id, roles := range want {
		obj := n.sync.Object(id)
		if obj == nil {
			continue
		}
		var have map[syncproto.DeviceID]syncproto.Role
		_ = n.sync.View(id, func(o *syncproto.Object) error { have = o.Members(); return nil })
		if maps.Equal(have, roles) {
			continue
		}
		if err := n.sync.SetMembers(id, roles); err != nil {
			n.log.Warn("set object members", "object", id, "err", err)
		}
	}
}

// rolesLoop recomputes roles when membership or the catalog changes.
func (n *Node) rolesLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.rolesKick:
		}
		if err := n.ensureSharedObjects(); err != nil {
			n.log.Warn("shared objects", "err", err)
		}
		n.objs.ensureReplicas()
		n.syncRoles()
		n.sync.MembershipChanged()
		n.startJoinedFolders(ctx)
	}
}

func (n *Node) kickRoles() {
	select {
	case n.rolesKick <- struct{}{}:
	default:
	}
}

// onSyncChange is called by the engine with items applied from a peer.
func (n *Node) onSyncChange(obj syncproto.ObjectID, items []syncproto.Item) {
	switch obj {
	case catalogID:
		n.kickRoles()
	case newsID:
		n.objs.newsMerged()
	default:
		if lf := n.folders.get(obj); lf != nil {
			lf.queue(items)
		}
	}
}

func (n *Node) deviceNameS(id string) string {
	p, err := peer.Decode(id)
	if err != nil {
		return id
	}
	return n.deviceName(p)
}
