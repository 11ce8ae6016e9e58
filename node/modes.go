package node

import (
	"context"
	"sort"

	"github.com/meshwork/meshwork/syncproto"
)

// Folder modes on this device (folder.Mode, chosen with 'mesh folder join
// --mode'): full (default), metadata (content on demand: mesh fetch, mesh
// evict), send-only, receive-only. API:
//
//	POST /v1/fetch {"paths": [...]} → [{"path","error"}]  bring a file's content here
//	POST /v1/evict {"paths": [...]} → [{"path","error"}]  drop it; its item stays
//	GET  /v1/folders/{name}/files   → [FileInfo]          every file item, and if it is here

// FileInfo is one element of GET /v1/folders/{name}/files.
type FileInfo struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	Local bool   `json:"local"` // content present on this device
}

// PathResult is one element of the fetch and evict answers.
type PathResult struct {
	Path  string `json:"path"`
	Error string `json:"error,omitempty"`
}

// onPaths runs op on each path's folder, a result per path.
func (n *Node) onPaths(paths []string, op func(lf *localFolder, rel string) error) []PathResult {
	out := []PathResult{} // an error per path that failed
	for _, p := range paths {
		res := PathResult{Path: p}
		lf, rel, err := n.folderForPath(p)
		if err == nil {
			err = op(lf, rel)
		}
		if err != nil {
			res.Error = err.Error()
		}
		out = append(out, res)
	}
	return out
}

// FetchPaths brings the content of files (paths on this device inside
// synced folders) here, first asking a storage peer for the newest items
// (POST /v1/fetch).
func (n *Node) FetchPaths(ctx context.Context, paths []string) []PathResult {
	n.st.round(ctx, false) // the newest items, also from a storage peer
	return n.onPaths(paths, func(lf *localFolder, rel string) error { return lf.f.Fetch(ctx, rel) })
}

// EvictPaths drops the content of files here; their items stay (POST
// /v1/evict).
func (n *Node) EvictPaths(ctx context.Context, paths []string) []PathResult {
	return n.onPaths(paths, func(lf *localFolder, rel string) error { return lf.f.Evict(ctx, rel) })
}

// FolderFiles lists the regular files of the folder synced here as name
// and whether each one's content is here (GET /v1/folders/{name}/files);
// ErrNotFound when this device does not sync it.
func (n *Node) FolderFiles(name string) ([]FileInfo, error) {
	lf := n.folderByName(name)
	if lf == nil {
		return nil, withKind(ErrNotFound, errNoSuchLocalFolder(name))
	}
	out := []FileInfo{}
	_ = n.sync.View(lf.conf.ID, func(o *syncproto.Object) error {
		for _, it := range o.Items() {
			fe, ok := it.Body.(*syncproto.FileEntry)
			if it.Sync.Deleted || !ok || fe == nil || !fe.Mode.IsRegular() {
				continue
			}
			out = append(out, FileInfo{Path: fe.Path, Size: fe.Size})
		}
		return nil
	})
	for i := range out {
		out[i].Local = lf.f.Present(out[i].Path)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

type errNoSuchLocalFolder string

func (e errNoSuchLocalFolder) Error() string {
	return "folder " + string(e) + ": this device does not sync it (see 'mesh folder list')"
}
