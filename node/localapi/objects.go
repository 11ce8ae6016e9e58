package localapi

// Mesh objects through the HTTP API (node/API.md): names, feeds (Atom,
// RSS, JSON Feed with FeedSync metadata), FeedSync merges from outside
// programs, and item edits of lists and notes.

import (
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"

	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/syncproto/feeds"
)

// objectCore is what the object handlers ask of the core.
type objectCore interface {
	Objects() ([]node.ObjectInfo, error)
	CreateObject(name, typ string) (node.ObjectInfo, error)
	Feed(name, format, base string) (ctype string, body []byte, _ error)
	FeedWritable(name string) error
	MergeFeed(name, format string, body io.Reader) (node.FeedPostResult, error)
	ObjectItems(name string) ([]node.APIItem, error)
	ItemsWritable(name string) error
	PutItem(name, id, title, text string) (node.APIItem, error)
	DeleteItem(name, id string) (node.APIItem, error)
	ResolveItem(name, id string, keep int) (node.APIItem, error)
}

type objectAPI struct {
	c  objectCore
	ep *endpoint
}

// list is GET /api/v1/objects.
func (a *objectAPI) list(w http.ResponseWriter, _ *http.Request) {
	answer(w)(a.c.Objects())
}

// create is POST /api/v1/objects {"name","type"}.
func (a *objectAPI) create(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	info, err := a.c.CreateObject(req.Name, req.Type)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, info)
}

// feedFormat picks atom, rss or json from ?format=, then a media type.
func feedFormat(r *http.Request, mediaType string) (string, error) {
	if f := r.URL.Query().Get("format"); f != "" {
		switch f {
		case "atom", "rss", "json":
			return f, nil
		}
		return "", fmt.Errorf("format %q: want atom, rss or json", f)
	}
	for _, part := range strings.Split(mediaType, ",") {
		mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
		switch mt {
		case "application/atom+xml":
			return "atom", nil
		case "application/rss+xml":
			return "rss", nil
		case "application/feed+json", "application/json":
			return "json", nil
		}
	}
	return "atom", nil
}

// feedGet is GET /api/v1/objects/{name}/feed.
func (a *objectAPI) feedGet(w http.ResponseWriter, r *http.Request) {
	format, err := feedFormat(r, r.Header.Get("Accept"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	// Links point at the HTTP API: the Host asked for there, its own
	// address when the request came over the Unix socket.
	base := "http://" + r.Host
	if _, unix := r.Context().Value(http.LocalAddrContextKey).(*net.UnixAddr); unix {
		base = ""
		if a.ep.httpAddr != "" {
			base = "http://" + a.ep.httpAddr
		}
	}
	ctype, body, err := a.c.Feed(r.PathValue("name"), format, base)
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Content-Type", ctype)
	_, _ = w.Write(body)
}

// feedPost is POST /api/v1/objects/{name}/feed: merge a FeedSync feed.
func (a *objectAPI) feedPost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := a.c.FeedWritable(name); err != nil {
		fail(w, err)
		return
	}
	format, err := feedFormat(r, r.Header.Get("Content-Type"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	answer(w)(a.c.MergeFeed(name, format, http.MaxBytesReader(w, r.Body, feeds.MaxFeedBytes)))
}

// items is GET /api/v1/objects/{name}/items.
func (a *objectAPI) items(w http.ResponseWriter, r *http.Request) {
	answer(w)(a.c.ObjectItems(r.PathValue("name")))
}

type itemReq struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Text  string `json:"text"`
}

// writable answers when the object's items may not be written, and reads
// the request's body into v otherwise.
func (a *objectAPI) writable(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := a.c.ItemsWritable(r.PathValue("name")); err != nil {
		fail(w, err)
		return false
	}
	return v == nil || readJSON(w, r, v)
}

// writeItem answers a write of an item with code.
func (a *objectAPI) writeItem(w http.ResponseWriter, it node.APIItem, err error, code int) {
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, code, it)
}

// itemCreate is POST /api/v1/objects/{name}/items {"id","title","text"}
// (no id: a new one).
func (a *objectAPI) itemCreate(w http.ResponseWriter, r *http.Request) {
	var req itemReq
	if !a.writable(w, r, &req) {
		return
	}
	it, err := a.c.PutItem(r.PathValue("name"), req.ID, req.Title, req.Text)
	a.writeItem(w, it, err, http.StatusCreated)
}

// itemPut is PUT /api/v1/objects/{name}/items/{id}.
func (a *objectAPI) itemPut(w http.ResponseWriter, r *http.Request) {
	var req itemReq
	if !a.writable(w, r, &req) {
		return
	}
	it, err := a.c.PutItem(r.PathValue("name"), r.PathValue("id"), req.Title, req.Text)
	a.writeItem(w, it, err, http.StatusOK)
}

// itemDelete is DELETE /api/v1/objects/{name}/items/{id}.
func (a *objectAPI) itemDelete(w http.ResponseWriter, r *http.Request) {
	it, err := a.c.DeleteItem(r.PathValue("name"), r.PathValue("id"))
	a.writeItem(w, it, err, http.StatusOK)
}

// itemResolve is POST /api/v1/objects/{name}/items/{id}/resolve {"keep"}.
func (a *objectAPI) itemResolve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Keep int `json:"keep"`
	}
	if !a.writable(w, r, &req) {
		return
	}
	it, err := a.c.ResolveItem(r.PathValue("name"), r.PathValue("id"), req.Keep)
	a.writeItem(w, it, err, http.StatusOK)
}
