package localapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/node/folder"
	"github.com/meshwork/meshwork/syncproto"
)

// fakeFolders is a folderCore with canned answers that records its calls.
type fakeFolders struct {
	folders  []node.FolderInfo
	shareErr error
	waitErr  error
	waited   time.Duration // the deadline WaitFolder saw, from now
	joinMode folder.Mode
	removed  string
}

func (f *fakeFolders) AddFolder(_ context.Context, path, name string) (node.FolderConf, error) {
	if name == "taken" {
		return node.FolderConf{}, fmt.Errorf("add folder %q: a folder has that name", name)
	}
	return node.FolderConf{ID: "f-1", Name: name, Path: path}, nil
}

func (f *fakeFolders) JoinFolderMode(_ context.Context, name, path string, mode folder.Mode) (node.FolderConf, error) {
	f.joinMode = mode
	return node.FolderConf{ID: "f-2", Name: name, Path: path, Mode: mode}, nil
}

func (f *fakeFolders) RemoveFolder(name string) error {
	if name != "docs" {
		return fmt.Errorf("remove folder %q: this device does not sync it", name)
	}
	f.removed = name
	return nil
}

func (f *fakeFolders) Folders() []node.FolderInfo { return f.folders }

func (f *fakeFolders) ShareFolder(name, device, role string) (peer.ID, syncproto.Role, error) {
	if f.shareErr != nil {
		return "", 0, f.shareErr
	}
	r, err := syncproto.ParseRole(role)
	return peer.ID("dev-" + device), r, err
}

func (f *fakeFolders) WaitFolder(ctx context.Context, name string) (node.WaitResult, error) {
	if d, ok := ctx.Deadline(); ok {
		f.waited = time.Until(d)
	}
	if f.waitErr != nil {
		return node.WaitResult{}, f.waitErr
	}
	return node.WaitResult{Name: name, Peers: []string{"bravo"}}, nil
}

func (f *fakeFolders) FolderFiles(name string) ([]node.FileInfo, error) {
	if name != "docs" {
		return nil, fmt.Errorf("folder %s: this device does not sync it: %w", name, node.ErrNotFound)
	}
	return []node.FileInfo{{Path: "a.txt", Size: 3, Local: true}}, nil
}

func (f *fakeFolders) History(path string) ([]node.HistoryEntry, error) {
	return nil, fmt.Errorf("%q is not inside a synced folder: %w", path, node.ErrNotFound)
}

func (f *fakeFolders) Restore(_ context.Context, path string, version int) (string, error) {
	return "", fmt.Errorf("restore %s: no version %d: %w", path, version, node.ErrConflict)
}

func (f *fakeFolders) FetchPaths(_ context.Context, paths []string) []node.PathResult {
	out := []node.PathResult{}
	for _, p := range paths {
		out = append(out, node.PathResult{Path: p, Error: "not inside a synced folder"})
	}
	return out
}

func (f *fakeFolders) EvictPaths(ctx context.Context, paths []string) []node.PathResult {
	return f.FetchPaths(ctx, paths)
}

func (f *fakeFolders) News() []node.NewsEntry       { return []node.NewsEntry{} }
func (f *fakeFolders) NewsChanged() <-chan struct{} { return make(chan struct{}) }

// TestFolderHandlers drives the folder routes of the control socket over
// a fake core: the JSON they answer with, and the status code each kind
// of failure gets (404, 403, 400, 409 for no mesh, 500).
func TestFolderHandlers(t *testing.T) {
	path := "/home/a/docs"
	f := &fakeFolders{folders: []node.FolderInfo{{Name: "docs", ID: "f-1", Path: &path, Role: "owner", InSync: 1, Transferring: []folder.Transfer{}}}}
	mux := lapiMux(&handlers{folders: &folderAPI{c: f}})

	code, body := lapiDo(t, mux, "GET", "/v1/folders", "")
	lapiWant(t, "list", code, body, http.StatusOK, "")
	var list []node.FolderInfo
	lapiDecode(t, body, &list)
	if len(list) != 1 || list[0].Name != "docs" || list[0].Path == nil || *list[0].Path != path || list[0].InSync != 1 {
		t.Fatalf("list: %s", body)
	}
	code, body = lapiDo(t, mux, "POST", "/v1/folders", `{"path":"/x","name":"docs"}`)
	lapiWant(t, "add", code, body, http.StatusOK, "")
	var conf node.FolderConf
	lapiDecode(t, body, &conf)
	if conf.Name != "docs" || conf.Path != "/x" || conf.ID != "f-1" {
		t.Fatalf("add: %s", body)
	}
	code, body = lapiDo(t, mux, "POST", "/v1/folders", `{"path":"/x","name":"taken"}`)
	lapiWant(t, "add taken", code, body, http.StatusConflict, "a folder has that name")
	code, body = lapiDo(t, mux, "POST", "/v1/folders", `{"path":`)
	lapiWant(t, "add, bad body", code, body, http.StatusBadRequest, "bad request body")

	code, body = lapiDo(t, mux, "POST", "/v1/folders/join", `{"name":"docs","path":"/y","mode":"sideways"}`)
	lapiWant(t, "join, bad mode", code, body, http.StatusBadRequest, "sideways")
	code, body = lapiDo(t, mux, "POST", "/v1/folders/join", `{"name":"docs","path":"/y","mode":"metadata"}`)
	lapiWant(t, "join", code, body, http.StatusOK, "")
	if f.joinMode != folder.ModeMetadata {
		t.Fatalf("join: mode %q reached the core, want metadata", f.joinMode)
	}

	code, body = lapiDo(t, mux, "DELETE", "/v1/folders/docs", "")
	lapiWant(t, "remove", code, body, http.StatusOK, "")
	if f.removed != "docs" {
		t.Fatalf("remove: core saw %q", f.removed)
	}
	code, body = lapiDo(t, mux, "DELETE", "/v1/folders/other", "")
	lapiWant(t, "remove unknown", code, body, http.StatusNotFound, "does not sync it")

	code, body = lapiDo(t, mux, "POST", "/v1/folders/share", `{"name":"docs","device":"bravo","role":"reader"}`)
	lapiWant(t, "share", code, body, http.StatusOK, "")
	var shared map[string]string
	lapiDecode(t, body, &shared)
	if shared["name"] != "docs" || shared["device"] != peer.ID("dev-bravo").String() || shared["role"] != "reader" {
		t.Fatalf("share: %s", body)
	}
	for _, tc := range []struct {
		err  error
		code int
	}{
		{node.ErrNoMesh, http.StatusConflict},
		{fmt.Errorf("share %q: no such folder: %w", "docs", node.ErrNotFound), http.StatusNotFound},
		{fmt.Errorf("share %q: only the owner: %w", "docs", node.ErrForbidden), http.StatusForbidden},
		{fmt.Errorf("role %q: want reader: %w", "x", node.ErrInvalid), http.StatusBadRequest},
		{errors.New("save folder: disk on fire"), http.StatusInternalServerError},
	} {
		f.shareErr = tc.err
		code, body = lapiDo(t, mux, "POST", "/v1/folders/share", `{"name":"docs","device":"bravo","role":"reader"}`)
		lapiWant(t, "share: "+tc.err.Error(), code, body, tc.code, tc.err.Error())
	}

}

// TestFolderWaitAndPaths drives wait (its timeout, and 504 when the core's
// wait fails), the metadata-mode files, history, restore, fetch and news
// routes over a fake core.
func TestFolderWaitAndPaths(t *testing.T) {
	f := &fakeFolders{}
	mux := lapiMux(&handlers{folders: &folderAPI{c: f}})
	code, body := lapiDo(t, mux, "GET", "/v1/folders/docs/wait?timeout=soon", "")
	lapiWant(t, "wait, bad timeout", code, body, http.StatusBadRequest, `timeout "soon"`)
	code, body = lapiDo(t, mux, "GET", "/v1/folders/docs/wait?timeout=30s", "")
	lapiWant(t, "wait", code, body, http.StatusOK, "")
	var wr node.WaitResult
	lapiDecode(t, body, &wr)
	if wr.Name != "docs" || len(wr.Peers) != 1 || f.waited <= 0 || f.waited > 30*time.Second {
		t.Fatalf("wait: %s, deadline in %v (want within 30s)", body, f.waited)
	}
	f.waitErr = errors.New(`wait "docs": bravo is behind`)
	code, body = lapiDo(t, mux, "GET", "/v1/folders/docs/wait", "")
	lapiWant(t, "wait fails", code, body, http.StatusGatewayTimeout, "bravo is behind")
	if f.waited <= 9*time.Minute {
		t.Fatalf("wait without timeout: deadline in %v, want the 10m default", f.waited)
	}

	code, body = lapiDo(t, mux, "GET", "/v1/folders/docs/files", "")
	lapiWant(t, "files", code, body, http.StatusOK, "")
	var files []node.FileInfo
	lapiDecode(t, body, &files)
	if len(files) != 1 || files[0].Path != "a.txt" || !files[0].Local {
		t.Fatalf("files: %s", body)
	}
	code, body = lapiDo(t, mux, "GET", "/v1/folders/nope/files", "")
	lapiWant(t, "files of an unsynced folder", code, body, http.StatusNotFound, "does not sync it")
	code, body = lapiDo(t, mux, "GET", "/v1/history?path=/tmp/x", "")
	lapiWant(t, "history outside folders", code, body, http.StatusNotFound, "not inside a synced folder")
	code, body = lapiDo(t, mux, "POST", "/v1/restore", `{"path":"/tmp/x","version":9}`)
	lapiWant(t, "restore fails", code, body, http.StatusConflict, "no version 9")
	code, body = lapiDo(t, mux, "POST", "/v1/fetch", `{"paths":["/tmp/x"]}`)
	lapiWant(t, "fetch", code, body, http.StatusOK, "")
	var res []node.PathResult
	lapiDecode(t, body, &res)
	if len(res) != 1 || res[0].Path != "/tmp/x" || res[0].Error == "" {
		t.Fatalf("fetch: %s", body)
	}
	code, body = lapiDo(t, mux, "GET", "/v1/news", "")
	if code != http.StatusOK || string(body) != "[]\n" {
		t.Fatalf("news: %d %s, want 200 []", code, body)
	}
}
