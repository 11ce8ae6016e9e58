package node

// Mesh objects through the API (node/API.md): names, feeds (Atom, RSS,
// JSON Feed with FeedSync metadata), FeedSync merges from outside
// programs, and item edits of lists and notes.
//
// Lists and notes are catalog entries "object/NAME" (body: objectDef in
// JSON) beside the folders' "folder/NAME"; every device keeps a replica of
// each (they are small), with the shared objects' roles.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/exchange"
	"github.com/meshwork/meshwork/syncproto/feeds"
	"github.com/meshwork/meshwork/syncproto/hlc"
)

// objectDef is the body of a catalog item "object/NAME".
type objectDef struct {
	ID      syncproto.ObjectID `json:"id"`
	Name    string             `json:"name"`
	Kind    string             `json:"kind"` // list, todo, notes
	Owner   string             `json:"owner"`
	Created time.Time          `json:"created"`
}

func (d objectDef) objType() syncproto.ObjectType {
	if d.Kind == "notes" {
		return syncproto.TypeNote
	}
	return syncproto.TypeList
}

// objectDefs returns the lists and notes of the catalog, by name.
func (n *Node) objectDefs() map[string]objectDef {
	out := map[string]objectDef{}
	_ = n.sync.Change(catalogID, func(o *syncproto.Object) error {
		for _, it := range o.Items() {
			if it.Sync.Deleted || !strings.HasPrefix(string(it.Sync.ID), "object/") {
				continue
			}
			if t, ok := it.Body.(syncproto.Text); ok {
				var d objectDef
				if json.Unmarshal([]byte(t), &d) == nil && d.ID != "" {
					out[d.Name] = d
				}
			}
		}
		return nil
	})
	return out
}

// ensureCatalogObjects creates this device's replicas of the catalog's
// lists and notes.
func (n *Node) ensureCatalogObjects() {
	l := n.membership()
	if l == nil {
		return
	}
	for _, d := range n.objectDefs() {
		if n.sync.Object(d.ID) != nil {
			continue
		}
		obj, err := syncproto.NewObject(d.ID, d.objType(), sharedRoles(l), n.sync.ObjectConfig())
		if err == nil {
			err = n.sync.Add(obj)
		}
		if err != nil && !errors.Is(err, exchange.ErrExists) {
			n.log.Warn("create replica", "object", d.Name, "err", err)
		}
	}
}

// ObjectInfo is one element of GET /api/v1/objects.
type ObjectInfo struct {
	Name  string `json:"name"`
	ID    string `json:"id"`
	Kind  string `json:"kind"` // folder, list, todo, notes, news, view
	Items int    `json:"items"`
}

// meshObject is what an object name resolves to.
type meshObject struct {
	name string
	id   syncproto.ObjectID // "" for views
	kind string
	typ  syncproto.ObjectType
}

var viewNames = []string{"devices", "presence", "membership"}

func (n *Node) resolveObject(name string) (meshObject, error) {
	if n.membership() == nil {
		return meshObject{}, errNoMesh
	}
	switch name {
	case "news":
		return meshObject{name: name, id: newsID, kind: "news", typ: syncproto.TypeNews}, nil
	case "devices", "presence", "membership":
		return meshObject{name: name, kind: "view", typ: syncproto.TypeList}, nil
	}
	if def, ok := n.catalog()[name]; ok {
		return meshObject{name: name, id: def.ID, kind: "folder", typ: syncproto.TypeFolder}, nil
	}
	if d, ok := n.objectDefs()[name]; ok {
		return meshObject{name: name, id: d.ID, kind: d.Kind, typ: d.objType()}, nil
	}
	return meshObject{}, fmt.Errorf("object %q: no such folder, list or view (GET /api/v1/objects lists them)", name)
}

// objectName is the API name of an object ID ("" if unknown), and
// whether it is a folder.
func (n *Node) objectName(id syncproto.ObjectID) (name string, folder bool) {
	switch id {
	case newsID:
		return "news", false
	case presenceID:
		return "presence", false
	case catalogID:
		return "", false
	}
	for name, d := range n.catalog() {
		if d.ID == id {
			return name, true
		}
	}
	for name, d := range n.objectDefs() {
		if d.ID == id {
			return name, false
		}
	}
	return "", false
}

// items returns the object's items (views are built now).
func (n *Node) objectItems(o meshObject) ([]syncproto.Item, error) {
	switch o.name {
	case "devices":
		return n.deviceItems(), nil
	case "presence":
		return n.presenceItems(), nil
	case "membership":
		return n.membershipItems(), nil
	}
	var items []syncproto.Item
	err := n.sync.Change(o.id, func(obj *syncproto.Object) error { items = obj.Items(); return nil })
	if err != nil {
		return nil, fmt.Errorf("object %q is not held on this device: %w", o.name, err)
	}
	return items, nil
}

// viewItem makes a read-only view item: one version by this device.
func (n *Node) viewItem(id, title, text string, when time.Time) syncproto.Item {
	return syncproto.Item{
		Sync: syncproto.Sync{ID: syncproto.ItemID(id), Updates: 1, History: []syncproto.History{{
			Sequence: 1, When: hlcAt(when), By: syncproto.DeviceID(n.id.String()),
		}}},
		Content: syncproto.Content{Title: title, Body: syncproto.Text(text)},
	}
}

func (n *Node) deviceItems() []syncproto.Item {
	var out []syncproto.Item
	for _, d := range n.deviceList(context.Background(), false) {
		b, _ := json.Marshal(d)
		when := time.Now()
		if d.LastSeen != nil {
			when = *d.LastSeen
		}
		out = append(out, n.viewItem(d.ID, d.Name, string(b), when))
	}
	return out
}

func (n *Node) membershipItems() []syncproto.Item {
	l := n.membership()
	if l == nil {
		return nil
	}
	var out []syncproto.Item
	for i, e := range l.Entries() {
		b, _ := json.Marshal(e)
		out = append(out, n.viewItem(fmt.Sprintf("%04d-%s", i, e.ID), e.Summary, string(b), e.Time))
	}
	return out
}

func (a *apiServer) objectList(w http.ResponseWriter, _ *http.Request) {
	n := a.n
	if n.membership() == nil {
		writeErr(w, http.StatusConflict, errNoMesh)
		return
	}
	out := []ObjectInfo{}
	count := func(id syncproto.ObjectID) int {
		c := 0
		_ = n.sync.Change(id, func(o *syncproto.Object) error {
			for _, it := range o.Items() {
				if !it.Sync.Deleted {
					c++
				}
			}
			return nil
		})
		return c
	}
	for name, d := range n.catalog() {
		out = append(out, ObjectInfo{Name: name, ID: string(d.ID), Kind: "folder", Items: count(d.ID)})
	}
	for name, d := range n.objectDefs() {
		out = append(out, ObjectInfo{Name: name, ID: string(d.ID), Kind: d.Kind, Items: count(d.ID)})
	}
	out = append(out, ObjectInfo{Name: "news", ID: string(newsID), Kind: "news", Items: count(newsID)})
	for _, v := range viewNames {
		items, _ := n.objectItems(meshObject{name: v})
		out = append(out, ObjectInfo{Name: v, Kind: "view", Items: len(items)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
}

func (a *apiServer) objectCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	n := a.n
	if n.membership() == nil {
		writeErr(w, http.StatusConflict, errNoMesh)
		return
	}
	if req.Type == "" {
		req.Type = "list"
	}
	if req.Type != "list" && req.Type != "todo" && req.Type != "notes" {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("object type %q: want list, todo or notes", req.Type))
		return
	}
	if err := checkFolderName(req.Name); err != nil || req.Name == "news" || req.Name == "catalog" || contains(viewNames, req.Name) {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("object name %q: want a short name of letters, digits, '-', '_' or '.', not a reserved one", req.Name))
		return
	}
	if _, err := n.resolveObject(req.Name); err == nil {
		writeErr(w, http.StatusConflict, fmt.Errorf("object %q exists already", req.Name))
		return
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	d := objectDef{ID: syncproto.ObjectID("obj-" + hex.EncodeToString(rnd[:])), Name: req.Name, Kind: req.Type, Owner: n.id.String(), Created: time.Now().UTC()}
	b, _ := json.Marshal(d)
	if _, err := n.sync.Update(catalogID, syncproto.ItemID("object/"+d.Name), syncproto.Content{Title: d.Name, Body: syncproto.Text(b)}); err != nil {
		writeErr(w, http.StatusInternalServerError, fmt.Errorf("create object %q: %w", req.Name, err))
		return
	}
	n.ensureCatalogObjects()
	n.kickRoles()
	writeJSON(w, http.StatusCreated, ObjectInfo{Name: d.Name, ID: string(d.ID), Kind: d.Kind})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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

func (a *apiServer) feedGet(w http.ResponseWriter, r *http.Request) {
	format, err := feedFormat(r, r.Header.Get("Accept"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	o, items, ok := a.objectReq(w, r)
	if !ok {
		return
	}
	// Links point at the HTTP API: the Host asked for there, its own
	// address when the request came over the Unix socket.
	base := "http://" + r.Host
	if _, unix := r.Context().Value(http.LocalAddrContextKey).(*net.UnixAddr); unix {
		base = ""
		if a.httpAddr != "" {
			base = "http://" + a.httpAddr
		}
	}
	id := o.id
	if id == "" {
		id = syncproto.ObjectID("meshwork-view-" + o.name)
	}
	info := feeds.FeedInfo{Object: id, Type: o.typ, Title: o.name,
		SelfURL: base + "/api/v1/objects/" + url.PathEscape(o.name) + "/feed?format=" + format, HomeURL: base + "/"}
	enc := func(ref syncproto.BlobRef) string { return base + "/api/v1/blobs/" + url.PathEscape(ref.String()) }
	var buf bytes.Buffer
	var ctype string
	switch format {
	case "atom":
		ctype, err = "application/atom+xml; charset=utf-8", feeds.WriteAtom(&buf, info, items, enc)
	case "rss":
		ctype, err = "application/rss+xml; charset=utf-8", feeds.WriteRSS(&buf, info, items, enc)
	default:
		ctype, err = "application/feed+json; charset=utf-8", feeds.WriteJSON(&buf, info, items, enc)
	}
	if err != nil {
		writeErr(w, http.StatusInternalServerError, fmt.Errorf("render %q as %s: %w", o.name, format, err))
		return
	}
	w.Header().Set("Content-Type", ctype)
	_, _ = w.Write(buf.Bytes())
}

// FeedPostResult is POST /api/v1/objects/{name}/feed.
type FeedPostResult struct {
	Items   int `json:"items"`
	Changed int `json:"changed"`
}

func (a *apiServer) feedPost(w http.ResponseWriter, r *http.Request) {
	n := a.n
	o, err := n.resolveObject(r.PathValue("name"))
	if err != nil {
		writeErr(w, http.StatusNotFound, err)
		return
	}
	if o.id == "" {
		writeErr(w, http.StatusMethodNotAllowed, fmt.Errorf("%q is a read-only view", o.name))
		return
	}
	format, err := feedFormat(r, r.Header.Get("Content-Type"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	body := http.MaxBytesReader(w, r.Body, feeds.MaxFeedBytes)
	var items []syncproto.Item
	switch format {
	case "atom":
		items, err = feeds.ParseAtom(body)
	case "rss":
		items, err = feeds.ParseRSS(body)
	default:
		items, err = feeds.ParseJSON(body)
	}
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("parse %s feed for %q: %w", format, o.name, err))
		return
	}
	for _, it := range items {
		if n := len(syncproto.EncodeItem(it)); n > exchange.MaxItemSize {
			writeErr(w, http.StatusRequestEntityTooLarge, fmt.Errorf("item %q of %q: %d bytes encoded exceed the limit of %d bytes per item", it.Sync.ID, o.name, n, exchange.MaxItemSize))
			return
		}
	}
	if o.kind == "folder" {
		for _, it := range items {
			if _, ok := it.Body.(*syncproto.FileEntry); !ok && !it.Sync.Deleted {
				writeErr(w, http.StatusBadRequest, fmt.Errorf("item %q: a folder's items are files (meshwork:file)", it.Sync.ID))
				return
			}
		}
	}
	self := n.id.String()
	res := FeedPostResult{Items: len(items)}
	err = n.sync.Change(o.id, func(obj *syncproto.Object) error {
		// Versions this device does not hold yet must be by this device or
		// one of its endpoints: an API client speaks for this device only.
		for _, it := range items {
			local, _ := obj.Item(it.Sync.ID)
			for _, v := range append([]syncproto.Item{it}, it.Sync.Conflicts...) {
				by := string(v.Sync.Top().By)
				if by == self || strings.HasPrefix(by, self+"/") {
					continue
				}
				if !heldVersion(local, v) {
					return fmt.Errorf("item %q: version %d by %q is not this device's or one of its endpoints' (%s/NAME): %w",
						it.Sync.ID, v.Sync.Top().Sequence, by, self, syncproto.ErrReadOnly)
				}
			}
		}
		for _, it := range items {
			// The endpoint has no key: this device signs its versions
			// (and its own), having checked above that they are.
			it, err := obj.SignOwn(it)
			if err != nil {
				return err
			}
			changed, _, err := obj.Apply(it)
			if err != nil {
				return err
			}
			if changed {
				res.Changed++
			}
		}
		return nil
	})
	if err != nil {
		code := http.StatusBadRequest
		switch {
		case errors.Is(err, syncproto.ErrReadOnly), errors.Is(err, syncproto.ErrRefused):
			code = http.StatusForbidden
		case errors.Is(err, syncproto.ErrTooLarge):
			code = http.StatusRequestEntityTooLarge
		}
		writeErr(w, code, fmt.Errorf("merge feed into %q: %w", o.name, err))
		return
	}
	if o.kind == "folder" && res.Changed > 0 {
		if lf := n.folderByName(o.name); lf != nil {
			lf.queueAll()
		}
	}
	writeJSON(w, http.StatusOK, res)
}

// heldVersion reports whether the replica's item (or one of its
// conflicts) already holds version v.
func heldVersion(local syncproto.Item, v syncproto.Item) bool {
	if local.Sync.ID == "" {
		return false
	}
	top := v.Sync.Top()
	for _, h := range append([]syncproto.Item{local}, local.Sync.Conflicts...) {
		for _, x := range h.Sync.History {
			if x.By == top.By && x.Sequence >= top.Sequence {
				return true
			}
		}
	}
	return false
}

// APIItem is the plain JSON form of an item.
type APIItem struct {
	ID        string         `json:"id"`
	Title     string         `json:"title"`
	Text      string         `json:"text"`
	Deleted   bool           `json:"deleted"`
	Updates   uint32         `json:"updates"`
	By        string         `json:"by"`
	When      time.Time      `json:"when"`
	Conflicts []APIConflict  `json:"conflicts"`
	File      *APIFileFields `json:"file"`
}

// APIConflict is a losing version of an item.
type APIConflict struct {
	Title string    `json:"title"`
	Text  string    `json:"text"`
	By    string    `json:"by"`
	When  time.Time `json:"when"`
}

// APIFileFields describe a folder item's file.
type APIFileFields struct {
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
	Blob    string    `json:"blob,omitempty"`
	Dir     bool      `json:"dir"`
	Symlink string    `json:"symlink,omitempty"`
}

func textOf(b syncproto.Body) string {
	switch v := b.(type) {
	case syncproto.Text:
		return string(v)
	case syncproto.Bytes:
		return base64.StdEncoding.EncodeToString(v)
	}
	return ""
}

func (n *Node) apiItem(it syncproto.Item) APIItem {
	top := it.Sync.Top()
	out := APIItem{ID: string(it.Sync.ID), Title: it.Title, Text: textOf(it.Body), Deleted: it.Sync.Deleted,
		Updates: it.Sync.Updates, By: n.deviceNameS(string(top.By)), When: top.When.Time().UTC(), Conflicts: []APIConflict{}}
	for _, c := range it.Sync.Conflicts {
		ct := c.Sync.Top()
		out.Conflicts = append(out.Conflicts, APIConflict{Title: c.Title, Text: textOf(c.Body), By: n.deviceNameS(string(ct.By)), When: ct.When.Time().UTC()})
	}
	if fe, ok := it.Body.(*syncproto.FileEntry); ok {
		out.File = &APIFileFields{Path: fe.Path, Size: fe.Size, ModTime: fe.ModTime.UTC(), Blob: fe.Blob.String(), Dir: fe.Mode.IsDir(), Symlink: fe.Symlink}
	}
	return out
}

// objectReq resolves the object named in the request and lists its items.
func (a *apiServer) objectReq(w http.ResponseWriter, r *http.Request) (meshObject, []syncproto.Item, bool) {
	o, err := a.n.resolveObject(r.PathValue("name"))
	if err != nil {
		writeErr(w, http.StatusNotFound, err)
		return o, nil, false
	}
	items, err := a.n.objectItems(o)
	if err != nil {
		writeErr(w, http.StatusNotFound, err)
		return o, nil, false
	}
	return o, items, true
}

func (a *apiServer) itemList(w http.ResponseWriter, r *http.Request) {
	_, items, ok := a.objectReq(w, r)
	if !ok {
		return
	}
	out := make([]APIItem, 0, len(items))
	for _, it := range items {
		out = append(out, a.n.apiItem(it))
	}
	writeJSON(w, http.StatusOK, out)
}

// editable resolves a list or notes object that items may be written to.
func (a *apiServer) editable(w http.ResponseWriter, r *http.Request) (meshObject, bool) {
	o, err := a.n.resolveObject(r.PathValue("name"))
	if err != nil {
		writeErr(w, http.StatusNotFound, err)
		return o, false
	}
	switch o.kind {
	case "list", "todo", "notes":
		return o, true
	case "folder":
		writeErr(w, http.StatusConflict, fmt.Errorf("%q is a folder: its items are its files; use /api/v1/folders/%s/files", o.name, o.name))
	default:
		writeErr(w, http.StatusConflict, fmt.Errorf("%q is not writable through items", o.name))
	}
	return o, false
}

type itemReq struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Text  string `json:"text"`
}

func (a *apiServer) writeItem(w http.ResponseWriter, o meshObject, id string, req itemReq, code int) {
	iid, err := syncproto.ParseItemID(id)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	it, err := a.n.sync.Update(o.id, iid, syncproto.Content{Title: req.Title, Body: syncproto.Text(req.Text)})
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("write item %q of %q: %w", id, o.name, err))
		return
	}
	writeJSON(w, code, a.n.apiItem(it))
}

func (a *apiServer) itemCreate(w http.ResponseWriter, r *http.Request) {
	o, ok := a.editable(w, r)
	if !ok {
		return
	}
	var req itemReq
	if !readJSON(w, r, &req) {
		return
	}
	if req.ID == "" {
		var rnd [6]byte
		_, _ = rand.Read(rnd[:])
		req.ID = fmt.Sprintf("%d-%s", time.Now().UnixMilli(), hex.EncodeToString(rnd[:]))
	}
	a.writeItem(w, o, req.ID, req, http.StatusCreated)
}

func (a *apiServer) itemPut(w http.ResponseWriter, r *http.Request) {
	o, ok := a.editable(w, r)
	if !ok {
		return
	}
	var req itemReq
	if !readJSON(w, r, &req) {
		return
	}
	a.writeItem(w, o, r.PathValue("id"), req, http.StatusOK)
}

func (a *apiServer) itemDelete(w http.ResponseWriter, r *http.Request) {
	o, ok := a.editable(w, r)
	if !ok {
		return
	}
	it, err := a.n.sync.Delete(o.id, syncproto.ItemID(r.PathValue("id")))
	if err != nil {
		writeErr(w, http.StatusNotFound, fmt.Errorf("delete item %q of %q: %w", r.PathValue("id"), o.name, err))
		return
	}
	writeJSON(w, http.StatusOK, a.n.apiItem(it))
}

func (a *apiServer) itemResolve(w http.ResponseWriter, r *http.Request) {
	o, ok := a.editable(w, r)
	if !ok {
		return
	}
	var req struct {
		Keep int `json:"keep"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	id := syncproto.ItemID(r.PathValue("id"))
	var keep []syncproto.Content
	if req.Keep >= 0 {
		var cur syncproto.Item
		_ = a.n.sync.Change(o.id, func(obj *syncproto.Object) error { cur, _ = obj.Item(id); return nil })
		if req.Keep >= len(cur.Sync.Conflicts) {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("item %q has %d conflicts; keep %d is not one", id, len(cur.Sync.Conflicts), req.Keep))
			return
		}
		keep = []syncproto.Content{cur.Sync.Conflicts[req.Keep].Content.Clone()}
	}
	it, err := a.n.sync.Resolve(o.id, id, keep...)
	if err != nil {
		writeErr(w, http.StatusConflict, fmt.Errorf("resolve item %q of %q: %w", id, o.name, err))
		return
	}
	writeJSON(w, http.StatusOK, a.n.apiItem(it))
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func checkFolderName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("name %q: want 1-64 letters, digits, '.', '-' or '_'", name)
	}
	return nil
}

func hlcAt(t time.Time) hlc.Timestamp { return hlc.FromTime(t) }
