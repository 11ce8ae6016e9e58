package localapi

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meshwork/meshwork/node"
)

// fakeObjects is an objectCore with one list "todo" and one view
// "devices"; it records the feed format and base it was asked for.
type fakeObjects struct {
	format, base, merged string
	puts                 int
}

func (f *fakeObjects) Objects() ([]node.ObjectInfo, error) {
	return []node.ObjectInfo{{Name: "todo", ID: "obj-1", Kind: "list", Items: 1}}, nil
}

func (f *fakeObjects) CreateObject(name, typ string) (node.ObjectInfo, error) {
	if name == "todo" {
		return node.ObjectInfo{}, fmt.Errorf("object %q exists already: %w", name, node.ErrConflict)
	}
	return node.ObjectInfo{Name: name, ID: "obj-2", Kind: typ}, nil
}

func (f *fakeObjects) find(name string) error {
	if name != "todo" && name != "devices" {
		return fmt.Errorf("object %q: no such folder, list or view: %w", name, node.ErrNotFound)
	}
	return nil
}

func (f *fakeObjects) Feed(name, format, base string) (string, []byte, error) {
	f.format, f.base = format, base
	return "application/atom+xml; charset=utf-8", []byte("<feed/>"), f.find(name)
}

func (f *fakeObjects) FeedWritable(name string) error {
	if err := f.find(name); err != nil {
		return err
	}
	if name == "devices" {
		return fmt.Errorf("%q is a read-only view: %w", name, node.ErrReadOnly)
	}
	return nil
}

func (f *fakeObjects) MergeFeed(name, format string, body io.Reader) (node.FeedPostResult, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return node.FeedPostResult{}, fmt.Errorf("parse %s feed: %w: %w", format, err, node.ErrInvalid)
	}
	f.merged = format + ":" + string(b)
	return node.FeedPostResult{Items: 1, Changed: 1}, nil
}

func (f *fakeObjects) ObjectItems(name string) ([]node.APIItem, error) {
	return []node.APIItem{{ID: "1", Title: "milk", Conflicts: []node.APIConflict{}}}, f.find(name)
}

func (f *fakeObjects) ItemsWritable(name string) error {
	if name == "devices" {
		return fmt.Errorf("%q is not writable through items: %w", name, node.ErrConflict)
	}
	return f.find(name)
}

func (f *fakeObjects) PutItem(name, id, title, text string) (node.APIItem, error) {
	f.puts++
	return node.APIItem{ID: id, Title: title, Text: text}, nil
}

func (f *fakeObjects) DeleteItem(name, id string) (node.APIItem, error) {
	return node.APIItem{ID: id, Deleted: true}, f.find(name)
}

func (f *fakeObjects) ResolveItem(name, id string, keep int) (node.APIItem, error) {
	return node.APIItem{}, fmt.Errorf("item %q has 0 conflicts; keep %d is not one: %w", id, keep, node.ErrInvalid)
}

// TestObjectHandlers drives the objects, feed and item routes over a fake
// core: the feed format from ?format= or the media type, 405 for a view,
// the order of checks (the object before the body), and the codes of
// the core's failures.
func TestObjectHandlers(t *testing.T) {
	f := &fakeObjects{}
	ep := &endpoint{httpAddr: "127.0.0.1:8385"}
	mux := lapiMux(&handlers{objects: &objectAPI{c: f, ep: ep}})

	code, body := lapiDo(t, mux, "GET", "/api/v1/objects", "")
	lapiWant(t, "objects", code, body, http.StatusOK, "")
	var objs []node.ObjectInfo
	lapiDecode(t, body, &objs)
	if len(objs) != 1 || objs[0].Name != "todo" {
		t.Fatalf("objects: %s", body)
	}
	code, body = lapiDo(t, mux, "POST", "/api/v1/objects", `{"name":"todo"}`)
	lapiWant(t, "create taken", code, body, http.StatusConflict, "exists already")
	code, body = lapiDo(t, mux, "POST", "/api/v1/objects", `{"name":"shop","type":"notes"}`)
	lapiWant(t, "create", code, body, http.StatusCreated, "")

	req := func(method, path, body string, hdr map[string]string) (int, http.Header, string) {
		r, _ := http.NewRequest(method, "http://localhost:8385"+path, strings.NewReader(body))
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, r)
		return rec.Code, rec.Header(), rec.Body.String()
	}
	code, hdr, text := req("GET", "/api/v1/objects/todo/feed", "", map[string]string{"Accept": "application/rss+xml, */*"})
	if code != 200 || f.format != "rss" || f.base != "http://localhost:8385" || hdr.Get("Content-Type") == "" || text != "<feed/>" {
		t.Fatalf("feed: %d %q, core asked for %q at %q", code, text, f.format, f.base)
	}
	if code, _, text = req("GET", "/api/v1/objects/todo/feed?format=json", "", map[string]string{"Accept": "application/rss+xml"}); code != 200 || f.format != "json" {
		t.Fatalf("feed ?format=json: %d %s, core asked for %q", code, text, f.format)
	}
	code, _, text = req("GET", "/api/v1/objects/nope/feed?format=yaml", "", nil)
	lapiWant(t, "feed, bad format first", code, []byte(text), http.StatusBadRequest, `format "yaml"`)
	code, _, text = req("GET", "/api/v1/objects/nope/feed", "", nil)
	lapiWant(t, "feed of nothing", code, []byte(text), http.StatusNotFound, "no such folder")

	code, _, text = req("POST", "/api/v1/objects/devices/feed?format=yaml", "x", nil)
	lapiWant(t, "merge into a view", code, []byte(text), http.StatusMethodNotAllowed, "read-only view")
	code, _, text = req("POST", "/api/v1/objects/todo/feed?format=yaml", "x", nil)
	lapiWant(t, "merge, bad format", code, []byte(text), http.StatusBadRequest, `format "yaml"`)
	code, _, text = req("POST", "/api/v1/objects/todo/feed", "<rss/>", map[string]string{"Content-Type": "application/rss+xml"})
	lapiWant(t, "merge", code, []byte(text), http.StatusOK, "")
	if f.merged != "rss:<rss/>" {
		t.Fatalf("merge: the core got %q", f.merged)
	}

	code, body = lapiDo(t, mux, "GET", "/api/v1/objects/todo/items", "")
	lapiWant(t, "items", code, body, http.StatusOK, "")
	code, body = lapiDo(t, mux, "POST", "/api/v1/objects/devices/items", `{`)
	lapiWant(t, "item into a view: the object before the body", code, body, http.StatusConflict, "not writable")
	code, body = lapiDo(t, mux, "POST", "/api/v1/objects/todo/items", `{`)
	lapiWant(t, "item, bad body", code, body, http.StatusBadRequest, "bad request body")
	if f.puts != 0 {
		t.Fatalf("refused writes reached the core %d times", f.puts)
	}
	code, body = lapiDo(t, mux, "POST", "/api/v1/objects/todo/items", `{"title":"eggs"}`)
	lapiWant(t, "item create", code, body, http.StatusCreated, "")
	code, body = lapiDo(t, mux, "PUT", "/api/v1/objects/todo/items/7", `{"title":"bread"}`)
	lapiWant(t, "item put", code, body, http.StatusOK, "")
	var it node.APIItem
	lapiDecode(t, body, &it)
	if it.ID != "7" || it.Title != "bread" {
		t.Fatalf("item put: %s", body)
	}
	code, body = lapiDo(t, mux, "POST", "/api/v1/objects/todo/items/7/resolve", `{"keep":3}`)
	lapiWant(t, "resolve, bad keep", code, body, http.StatusBadRequest, "keep 3 is not one")
	code, body = lapiDo(t, mux, "DELETE", "/api/v1/objects/nope/items/7", "")
	lapiWant(t, "delete from nothing", code, body, http.StatusNotFound, "no such folder")
}
