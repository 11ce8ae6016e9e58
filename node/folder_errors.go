package node

import (
	"fmt"
	"time"

	"github.com/meshwork/meshwork/node/folder"
)

// A folder's apply error (disk full, permission denied, an item refused;
// folder.ApplyError) is shown in FolderInfo.Error, counted in
// Status.FolderErrs, and written to the news when it appears and when it
// clears.

// FolderError is a folder's last failure to write a change here (disk
// full, permission denied, an item refused); it clears when the files
// concerned are written.
type FolderError struct {
	Time  time.Time `json:"time"`  // when it last failed
	Path  string    `json:"path"`  // the file it concerned, relative to the folder
	Kind  string    `json:"kind"`  // "disk full", "quota exceeded", "permission denied", "read-only filesystem", "i/o error", "too many open files", "name too long", "blocked", "error"
	Error string    `json:"error"` // the error text
	Files int       `json:"files"` // how many files fail to be written now
}

func folderError(e *folder.ApplyError) *FolderError {
	if e == nil {
		return nil
	}
	return &FolderError{Time: e.Time.UTC(), Path: e.Path, Kind: e.Kind, Error: e.Err, Files: e.Files}
}

// folderErrorNews writes one news entry when a folder's apply error
// appears (e) and one when it clears (e nil), and wakes the live events
// (the folder's state changed). Called by the folder's Apply, with no node
// lock held. The path is quoted: a peer chose it (a refused one may hold
// control characters).
func (n *Node) folderErrorNews(name string, e *folder.ApplyError) {
	me := n.deviceName(n.id)
	if e != nil {
		n.log.Warn("folder cannot write changes", "folder", name, "kind", e.Kind, "path", e.Path, "files", e.Files, "err", e.Err)
		n.objs.news("folder-error", "", fmt.Sprintf("device %s cannot write folder %s: %s (%q%s)", me, name, e.Kind, e.Path, moreFiles(e.Files)))
	} else {
		n.log.Info("folder writes changes again", "folder", name)
		n.objs.news("folder-recovered", "", fmt.Sprintf("device %s writes folder %s again: its error cleared", me, name))
	}
	n.live.wake()
}

func moreFiles(files int) string {
	switch {
	case files <= 1:
		return ""
	case files == 2:
		return " and 1 more file"
	}
	return fmt.Sprintf(" and %d more files", files-1)
}
