package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshwork/meshwork/syncproto"
)

// What the local API (node/localapi) asks of the core about folders:
// list, share, history and restore by local path, and the news stream.

// FolderConf is a folder synced on this device (the answer of POST
// /v1/folders and /v1/folders/join).
type FolderConf = folderConf

// Folders lists the mesh's folders, synced here or not (GET /v1/folders).
func (n *Node) Folders() []FolderInfo { return n.folderInfos() }

// ShareFolder sets device's role (reader, editor, owner or none) in the
// folder name; only the folder's owner may (POST /v1/folders/share). Its
// failures: ErrNoMesh; ErrNotFound (folder or device); ErrForbidden (not
// the owner, or the change was refused); ErrInvalid (role).
func (n *Node) ShareFolder(name, device, roleName string) (peer.ID, syncproto.Role, error) {
	l, err := n.meshLog()
	if err != nil {
		return "", 0, err
	}
	def, ok := n.catalog()[name]
	if !ok {
		return "", 0, withKind(ErrNotFound, fmt.Errorf("share %q: no such folder", name))
	}
	if def.Owner != syncproto.DeviceID(n.id.String()) {
		return "", 0, withKind(ErrForbidden, fmt.Errorf("share %q: only the folder's owner (%s) can change roles", name, n.deviceNameS(string(def.Owner))))
	}
	m, err := findMember(l, device)
	if err != nil {
		return "", 0, withKind(ErrNotFound, fmt.Errorf("share %q with %q: %w", name, device, err))
	}
	role, err := syncproto.ParseRole(roleName)
	if err != nil {
		return "", 0, withKind(ErrInvalid, fmt.Errorf("role %q: want reader, editor, owner or none", roleName))
	}
	def.setRole(syncproto.DeviceID(m.ID.String()), role, n.now())
	if err := n.putFolderDef(def); err != nil {
		err = fmt.Errorf("share %q: %w", name, err)
		if errors.Is(err, syncproto.ErrRefused) {
			return "", 0, withKind(ErrForbidden, err)
		}
		return "", 0, err
	}
	n.kickRoles()
	return m.ID, role, nil
}

// HistoryEntry is one element of GET /v1/history.
type HistoryEntry struct {
	N       int       `json:"n"`
	Path    string    `json:"path"`
	By      string    `json:"by"`
	Kept    time.Time `json:"kept"`
	ModTime time.Time `json:"mtime"`
	Size    int64     `json:"size"`
}

// History lists the kept versions of the file at path, a path on this
// device inside a synced folder (GET /v1/history). Its failures:
// ErrNotFound (not inside a synced folder), else the folder's.
func (n *Node) History(path string) ([]HistoryEntry, error) {
	lf, rel, err := n.folderForPath(path)
	if err != nil {
		return nil, withKind(ErrNotFound, err)
	}
	return n.historyOf(lf, rel)
}

// historyOf lists the kept versions of rel in lf.
func (n *Node) historyOf(lf *localFolder, rel string) ([]HistoryEntry, error) {
	versions, err := lf.f.History(rel)
	if err != nil {
		return nil, err
	}
	out := []HistoryEntry{}
	for _, v := range versions {
		out = append(out, HistoryEntry{N: v.N, Path: v.Path, By: n.deviceNameS(string(v.By)), Kept: v.Kept, ModTime: v.ModTime, Size: v.Size})
	}
	return out, nil
}

// Restore restores version of the file at path, a path on this device
// inside a synced folder (POST /v1/restore). Its failures: ErrNotFound
// (not inside a synced folder), ErrConflict (the restore failed).
func (n *Node) Restore(ctx context.Context, path string, version int) (string, error) {
	lf, rel, err := n.folderForPath(path)
	if err != nil {
		return "", withKind(ErrNotFound, err)
	}
	return rel, n.restoreIn(ctx, lf, rel, version)
}

// restoreIn restores version of rel in lf and says so in the news.
func (n *Node) restoreIn(ctx context.Context, lf *localFolder, rel string, version int) error {
	if err := lf.f.Restore(ctx, rel, version); err != nil {
		return withKind(ErrConflict, fmt.Errorf("restore %s: %w", rel, err))
	}
	n.objs.news("restored", "", fmt.Sprintf("device %s restored %s in folder %s", n.deviceName(n.id), rel, lf.conf.Name))
	return nil
}

// folderStartWait bounds how long wait waits for a folder joined here to
// start (after meshd starts, its folders start once their definitions are
// loaded: a moment).
const folderStartWait = 30 * time.Second

// awaitFolderStart returns the running folder name. A folder this device
// joined that has not started yet (meshd has just started) is waited for,
// within folderStartWait; one it never joined is an error at once.
func (n *Node) awaitFolderStart(ctx context.Context, name string) (*localFolder, error) {
	bound := time.NewTimer(folderStartWait)
	defer bound.Stop()
	for {
		added := n.folders.addedCh() // before looking: no start is missed
		if lf := n.folderByName(name); lf != nil {
			return lf, nil
		}
		if !n.joinedHere(name) {
			return nil, fmt.Errorf("wait %q: this device does not sync that folder", name)
		}
		select {
		case <-added:
		case <-bound.C:
			return nil, fmt.Errorf("wait %q: joined on this device but not started after %s (its definition has not arrived from the mesh?): see 'mesh folder list' and the daemon's log", name, folderStartWait)
		case <-ctx.Done():
			return nil, fmt.Errorf("wait %q: the folder has not started yet: %w", name, ctx.Err())
		}
	}
}

// joinedHere reports whether the local config holds a folder named name
// (joined or added on this device, running or not).
func (n *Node) joinedHere(name string) bool {
	found := false
	n.eachJoined(func(c folderConf) bool {
		found = c.Name == name
		return !found
	})
	return found
}
