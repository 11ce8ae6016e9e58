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
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/exchange"
	"github.com/meshwork/meshwork/syncproto/feeds"
	"github.com/meshwork/meshwork/syncproto/hlc"
)

// objectSet is the mesh objects part: the lists, todo and notes objects
// of the catalog ("object/NAME", objectDef), the news stream (news.go),
// the views, their feeds and their item edits. Their items live in the
// sync engine's replicas, under the engine's locks; the part owns the news
// stream's waiters. It reads the parts it is given (memberState's log,
// folderSet's folders) and calls back into Node only through its funcs;
// Node calls it (see "Parts and call order", doc.go).
type objectSet struct {
	self    peer.ID
	engine  objectEngine // the sync engine; nil until openSync
	members *memberState
	folders *folderSet
	log     *slog.Logger
	now     func() time.Time

	// The Node steps it calls, with no lock of its own held.
	catalog       func() map[string]folderDef // the folder definitions (Node.catalog)
	devices       func() []Device             // the devices view (deviceList, without RTTs)
	presenceItems func() []syncproto.Item     // the presence view (Node.presenceItems)
	deviceName    func(id string) string      // a device ID's name, or the ID (deviceNameS)
	kickRoles     func()                      // wake rolesLoop (the catalog changed)

	newsWake newsWaiter // wakes GET /v1/news?follow (news.go)
}

// objectEngine is what the objects use of the sync engine
// (*exchange.Engine).
type objectEngine interface {
	Object(id syncproto.ObjectID) *syncproto.Object
	ObjectConfig() syncproto.Config
	Add(obj *syncproto.Object) error
	View(id syncproto.ObjectID, f func(*syncproto.Object) error) error
	Change(id syncproto.ObjectID, f func(*syncproto.Object) error) error
	Update(id syncproto.ObjectID, item syncproto.ItemID, c syncproto.Content) (syncproto.Item, error)
	Delete(id syncproto.ObjectID, item syncproto.ItemID) (syncproto.Item, error)
	Resolve(id syncproto.ObjectID, item syncproto.ItemID, keep ...syncproto.Content) (syncproto.Item, error)
}

// inMesh is errNoMesh before the device is in a mesh (as Node.meshLog).
func (s *objectSet) inMesh() error {
	if s.members.current() == nil {
		return errNoMesh
	}
	return nil
}

func (d objectDef) objType() syncproto.ObjectType {
	if d.Kind == kindNotes {
		return syncproto.TypeNote
	}
	return syncproto.TypeList
}

// defs returns the lists and notes of the catalog, by name.
func (s *objectSet) defs() map[string]objectDef {
	out := map[string]objectDef{}
	_ = s.engine.View(catalogID, func(o *syncproto.Object) error {
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

// ensureReplicas creates this device's replicas of the catalog's lists
// and notes (rolesLoop, and create).
func (s *objectSet) ensureReplicas() {
	l := s.members.current()
	if l == nil {
		return
	}
	for _, d := range s.defs() {
		if s.engine.Object(d.ID) != nil {
			continue
		}
		obj, err := syncproto.NewObject(d.ID, d.objType(), sharedRoles(l), s.engine.ObjectConfig())
		if err == nil {
			err = s.engine.Add(obj)
		}
		if err != nil && !errors.Is(err, exchange.ErrExists) {
			s.log.Warn("create replica", "object", d.Name, "err", err)
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
	kind objectKind
	typ  syncproto.ObjectType
}

var viewNames = []string{"devices", "presence", "membership"}

// resolve finds what the API name name is: the news, a view, a folder, or
// a list or notes object; errNoMesh before a mesh.
func (s *objectSet) resolve(name string) (meshObject, error) {
	if err := s.inMesh(); err != nil {
		return meshObject{}, err
	}
	switch name {
	case "news":
		return meshObject{name: name, id: newsID, kind: kindNews, typ: syncproto.TypeNews}, nil
	case "devices", "presence", "membership":
		return meshObject{name: name, kind: kindView, typ: syncproto.TypeList}, nil
	}
	if def, ok := s.catalog()[name]; ok {
		return meshObject{name: name, id: def.ID, kind: kindFolder, typ: syncproto.TypeFolder}, nil
	}
	if d, ok := s.defs()[name]; ok {
		return meshObject{name: name, id: d.ID, kind: d.Kind, typ: d.objType()}, nil
	}
	return meshObject{}, fmt.Errorf("object %q: no such folder, list or view (GET /api/v1/objects lists them)", name)
}

// nameOf is the API name of an object ID ("" if unknown), and
// whether it is a folder.
func (s *objectSet) nameOf(id syncproto.ObjectID) (name string, folder bool) {
	switch id {
	case newsID:
		return "news", false
	case presenceID:
		return "presence", false
	case catalogID:
		return "", false
	}
	for name, d := range s.catalog() {
		if d.ID == id {
			return name, true
		}
	}
	for name, d := range s.defs() {
		if d.ID == id {
			return name, false
		}
	}
	return "", false
}

// items returns the object's items (views are built now).
func (s *objectSet) items(o meshObject) ([]syncproto.Item, error) {
	switch o.name {
	case "devices":
		return s.deviceItems(), nil
	case "presence":
		return s.presenceItems(), nil
	case "membership":
		return s.membershipItems(), nil
	}
	var items []syncproto.Item
	err := s.engine.View(o.id, func(obj *syncproto.Object) error { items = obj.Items(); return nil })
	if err != nil {
		return nil, fmt.Errorf("object %q is not held on this device: %w", o.name, err)
	}
	return items, nil
}

// viewItem makes a read-only view item: one version by this device.
func viewItem(self peer.ID, id, title, text string, when time.Time) syncproto.Item {
	return syncproto.Item{
		Sync: syncproto.Sync{ID: syncproto.ItemID(id), Updates: 1, History: []syncproto.History{{
			Sequence: 1, When: hlcAt(when), By: syncproto.DeviceID(self.String()),
		}}},
		Content: syncproto.Content{Title: title, Body: syncproto.Text(text)},
	}
}

func (s *objectSet) deviceItems() []syncproto.Item {
	var out []syncproto.Item
	for _, d := range s.devices() {
		b, _ := json.Marshal(d)
		when := s.now()
		if d.LastSeen != nil {
			when = *d.LastSeen
		}
		out = append(out, viewItem(s.self, d.ID, d.Name, string(b), when))
	}
	return out
}

func (s *objectSet) membershipItems() []syncproto.Item {
	l := s.members.current()
	if l == nil {
		return nil
	}
	var out []syncproto.Item
	for i, e := range l.Entries() {
		b, _ := json.Marshal(e)
		out = append(out, viewItem(s.self, fmt.Sprintf("%04d-%s", i, e.ID), e.Summary, string(b), e.Time))
	}
	return out
}

// Objects lists the mesh's objects: folders, lists, notes, the news and
// the views (GET /api/v1/objects); ErrNoMesh before a mesh.
func (n *Node) Objects() ([]ObjectInfo, error) { return n.objs.list() }

// list is Node.Objects.
func (s *objectSet) list() ([]ObjectInfo, error) {
	if err := s.inMesh(); err != nil {
		return nil, err
	}
	out := []ObjectInfo{}
	count := func(id syncproto.ObjectID) int {
		c := 0
		_ = s.engine.View(id, func(o *syncproto.Object) error {
			for _, it := range o.Items() {
				if !it.Sync.Deleted {
					c++
				}
			}
			return nil
		})
		return c
	}
	for name, d := range s.catalog() {
		out = append(out, ObjectInfo{Name: name, ID: string(d.ID), Kind: string(kindFolder), Items: count(d.ID)})
	}
	for name, d := range s.defs() {
		out = append(out, ObjectInfo{Name: name, ID: string(d.ID), Kind: string(d.Kind), Items: count(d.ID)})
	}
	out = append(out, ObjectInfo{Name: "news", ID: string(newsID), Kind: string(kindNews), Items: count(newsID)})
	for _, v := range viewNames {
		items, _ := s.items(meshObject{name: v})
		out = append(out, ObjectInfo{Name: v, Kind: string(kindView), Items: len(items)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// CreateObject creates a list, todo or notes object (typ; "" is list)
// named name (POST /api/v1/objects). Its failures: ErrNoMesh; ErrInvalid
// (type or name); ErrConflict (the name is taken).
func (n *Node) CreateObject(name, typ string) (ObjectInfo, error) { return n.objs.create(name, typ) }

// create is Node.CreateObject.
func (s *objectSet) create(name, typ string) (ObjectInfo, error) {
	if err := s.inMesh(); err != nil {
		return ObjectInfo{}, err
	}
	kind := objectKind(typ)
	if kind == "" {
		kind = kindList
	}
	if !kind.definable() {
		return ObjectInfo{}, withKind(ErrInvalid, fmt.Errorf("object type %q: want list, todo or notes", typ))
	}
	if err := checkFolderName(name); err != nil || name == "news" || name == "catalog" || contains(viewNames, name) {
		return ObjectInfo{}, withKind(ErrInvalid, fmt.Errorf("object name %q: want a short name of letters, digits, '-', '_' or '.', not a reserved one", name))
	}
	if _, err := s.resolve(name); err == nil {
		return ObjectInfo{}, withKind(ErrConflict, fmt.Errorf("object %q exists already", name))
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	d := objectDef{ID: syncproto.ObjectID("obj-" + hex.EncodeToString(rnd[:])), Name: name, Kind: kind, Owner: syncproto.DeviceID(s.self.String()), Created: s.now().UTC()}
	b, _ := json.Marshal(d)
	if _, err := s.engine.Update(catalogID, syncproto.ItemID("object/"+d.Name), syncproto.Content{Title: d.Name, Body: syncproto.Text(b)}); err != nil {
		return ObjectInfo{}, fmt.Errorf("create object %q: %w", name, err)
	}
	s.ensureReplicas()
	s.kickRoles()
	return ObjectInfo{Name: d.Name, ID: string(d.ID), Kind: string(d.Kind)}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Feed renders the object name as a feed in format (atom, rss or json)
// whose links start with base (GET /api/v1/objects/{name}/feed), with its
// content type. Its failures: ErrNotFound (no such object here), else
// the rendering's.
func (n *Node) Feed(name, format, base string) (ctype string, body []byte, _ error) {
	return n.objs.feed(name, format, base)
}

// feed is Node.Feed.
func (s *objectSet) feed(name, format, base string) (ctype string, body []byte, _ error) {
	o, items, err := s.objectAndItems(name)
	if err != nil {
		return "", nil, err
	}
	id := o.id
	if id == "" {
		id = syncproto.ObjectID("meshwork-view-" + o.name)
	}
	info := feeds.FeedInfo{Object: id, Type: o.typ, Title: o.name,
		SelfURL: base + "/api/v1/objects/" + url.PathEscape(o.name) + "/feed?format=" + format, HomeURL: base + "/"}
	enc := func(ref syncproto.BlobRef) string { return base + "/api/v1/blobs/" + url.PathEscape(ref.String()) }
	var buf bytes.Buffer
	switch format {
	case "atom":
		ctype, err = "application/atom+xml; charset=utf-8", feeds.WriteAtom(&buf, info, items, enc)
	case "rss":
		ctype, err = "application/rss+xml; charset=utf-8", feeds.WriteRSS(&buf, info, items, enc)
	default:
		ctype, err = "application/feed+json; charset=utf-8", feeds.WriteJSON(&buf, info, items, enc)
	}
	if err != nil {
		return "", nil, fmt.Errorf("render %q as %s: %w", o.name, format, err)
	}
	return ctype, buf.Bytes(), nil
}

// FeedPostResult is POST /api/v1/objects/{name}/feed.
type FeedPostResult struct {
	Items   int `json:"items"`
	Changed int `json:"changed"`
}

// FeedWritable checks that a feed may be merged into the object name:
// ErrNotFound (no such object), ErrReadOnly (a view).
func (n *Node) FeedWritable(name string) error { return n.objs.feedWritable(name) }

// feedWritable is Node.FeedWritable.
func (s *objectSet) feedWritable(name string) error {
	o, err := s.resolve(name)
	if err != nil {
		return withKind(ErrNotFound, err)
	}
	if o.id == "" {
		return withKind(ErrReadOnly, fmt.Errorf("%q is a read-only view", o.name))
	}
	return nil
}

// MergeFeed merges the feed body in format (atom, rss or json) into the
// object name (POST /api/v1/objects/{name}/feed). Versions this device
// does not hold yet must be by this device or one of its endpoints. Its
// failures: those of FeedWritable; ErrInvalid (parse, or not a folder's
// item); ErrTooLarge (an item); ErrForbidden (another device's version, or
// refused by roles).
func (n *Node) MergeFeed(name, format string, body io.Reader) (FeedPostResult, error) {
	return n.objs.mergeFeed(name, format, body)
}

// mergeFeed is Node.MergeFeed.
func (s *objectSet) mergeFeed(name, format string, body io.Reader) (FeedPostResult, error) {
	if err := s.feedWritable(name); err != nil {
		return FeedPostResult{}, err
	}
	o, _ := s.resolve(name)
	var items []syncproto.Item
	var err error
	switch format {
	case "atom":
		items, err = feeds.ParseAtom(body)
	case "rss":
		items, err = feeds.ParseRSS(body)
	default:
		items, err = feeds.ParseJSON(body)
	}
	if err != nil {
		return FeedPostResult{}, withKind(ErrInvalid, fmt.Errorf("parse %s feed for %q: %w", format, o.name, err))
	}
	for _, it := range items {
		if n := len(syncproto.EncodeItem(it)); n > exchange.MaxItemSize {
			return FeedPostResult{}, withKind(ErrTooLarge, fmt.Errorf("item %q of %q: %d bytes encoded exceed the limit of %d bytes per item", it.Sync.ID, o.name, n, exchange.MaxItemSize))
		}
	}
	if o.kind == kindFolder {
		for _, it := range items {
			if _, ok := it.Body.(*syncproto.FileEntry); !ok && !it.Sync.Deleted {
				return FeedPostResult{}, withKind(ErrInvalid, fmt.Errorf("item %q: a folder's items are files (meshwork:file)", it.Sync.ID))
			}
		}
	}
	res := FeedPostResult{Items: len(items)}
	if err := s.engine.Change(o.id, func(obj *syncproto.Object) error { return s.mergeItems(obj, items, &res) }); err != nil {
		kind := ErrInvalid
		switch {
		case errors.Is(err, syncproto.ErrReadOnly), errors.Is(err, syncproto.ErrRefused):
			kind = ErrForbidden
		case errors.Is(err, syncproto.ErrTooLarge):
			kind = ErrTooLarge
		}
		return FeedPostResult{}, withKind(kind, fmt.Errorf("merge feed into %q: %w", o.name, err))
	}
	if o.kind == kindFolder && res.Changed > 0 {
		if lf := s.folders.find(func(lf *localFolder) bool { return lf.conf.Name == o.name }); lf != nil {
			lf.queueAll()
		}
	}
	return res, nil
}

// mergeItems applies a feed's items to obj, counting the changed ones.
func (s *objectSet) mergeItems(obj *syncproto.Object, items []syncproto.Item, res *FeedPostResult) error {
	self := s.self.String()
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

func (s *objectSet) apiItem(it syncproto.Item) APIItem {
	top := it.Sync.Top()
	out := APIItem{ID: string(it.Sync.ID), Title: it.Title, Text: textOf(it.Body), Deleted: it.Sync.Deleted,
		Updates: it.Sync.Updates, By: s.deviceName(string(top.By)), When: top.When.Time().UTC(), Conflicts: []APIConflict{}}
	for _, c := range it.Sync.Conflicts {
		ct := c.Sync.Top()
		out.Conflicts = append(out.Conflicts, APIConflict{Title: c.Title, Text: textOf(c.Body), By: s.deviceName(string(ct.By)), When: ct.When.Time().UTC()})
	}
	if fe, ok := it.Body.(*syncproto.FileEntry); ok {
		out.File = &APIFileFields{Path: fe.Path, Size: fe.Size, ModTime: fe.ModTime.UTC(), Blob: fe.Blob.String(), Dir: fe.Mode.IsDir(), Symlink: fe.Symlink}
	}
	return out
}

// objectAndItems resolves the object name and lists its items
// (ErrNotFound when either fails).
func (s *objectSet) objectAndItems(name string) (meshObject, []syncproto.Item, error) {
	o, err := s.resolve(name)
	if err != nil {
		return o, nil, withKind(ErrNotFound, err)
	}
	items, err := s.items(o)
	if err != nil {
		return o, nil, withKind(ErrNotFound, err)
	}
	return o, items, nil
}

// ObjectItems lists the items of the object name (GET
// /api/v1/objects/{name}/items); ErrNotFound when it is not here.
func (n *Node) ObjectItems(name string) ([]APIItem, error) { return n.objs.objectItems(name) }

// objectItems is Node.ObjectItems.
func (s *objectSet) objectItems(name string) ([]APIItem, error) {
	_, items, err := s.objectAndItems(name)
	if err != nil {
		return nil, err
	}
	out := make([]APIItem, 0, len(items))
	for _, it := range items {
		out = append(out, s.apiItem(it))
	}
	return out, nil
}

// editable resolves a list or notes object that items may be written to.
func (s *objectSet) editable(name string) (meshObject, error) {
	o, err := s.resolve(name)
	if err != nil {
		return o, withKind(ErrNotFound, err)
	}
	switch o.kind {
	case kindList, kindTodo, kindNotes:
		return o, nil
	case kindFolder:
		return o, withKind(ErrConflict, fmt.Errorf("%q is a folder: its items are its files; use /api/v1/folders/%s/files", o.name, o.name))
	default:
		return o, withKind(ErrConflict, fmt.Errorf("%q is not writable through items", o.name))
	}
}

// ItemsWritable checks that items of the object name may be written: a
// list, todo or notes object. Its failures: ErrNotFound, ErrConflict.
func (n *Node) ItemsWritable(name string) error { return n.objs.itemsWritable(name) }

// itemsWritable is Node.ItemsWritable.
func (s *objectSet) itemsWritable(name string) error {
	_, err := s.editable(name)
	return err
}

// PutItem writes item id (a new one when id is "") of the list or notes
// object name. Its failures: those of ItemsWritable; ErrInvalid.
func (n *Node) PutItem(name, id, title, text string) (APIItem, error) {
	return n.objs.putItem(name, id, title, text)
}

// putItem is Node.PutItem.
func (s *objectSet) putItem(name, id, title, text string) (APIItem, error) {
	o, err := s.editable(name)
	if err != nil {
		return APIItem{}, err
	}
	if id == "" {
		var rnd [6]byte
		_, _ = rand.Read(rnd[:])
		id = fmt.Sprintf("%d-%s", time.Now().UnixMilli(), hex.EncodeToString(rnd[:]))
	}
	iid, err := syncproto.ParseItemID(id)
	if err != nil {
		return APIItem{}, withKind(ErrInvalid, err)
	}
	it, err := s.engine.Update(o.id, iid, syncproto.Content{Title: title, Body: syncproto.Text(text)})
	if err != nil {
		return APIItem{}, withKind(ErrInvalid, fmt.Errorf("write item %q of %q: %w", id, o.name, err))
	}
	return s.apiItem(it), nil
}

// DeleteItem deletes item id of the list or notes object name. Its
// failures: those of ItemsWritable; ErrNotFound.
func (n *Node) DeleteItem(name, id string) (APIItem, error) { return n.objs.deleteItem(name, id) }

// deleteItem is Node.DeleteItem.
func (s *objectSet) deleteItem(name, id string) (APIItem, error) {
	o, err := s.editable(name)
	if err != nil {
		return APIItem{}, err
	}
	it, err := s.engine.Delete(o.id, syncproto.ItemID(id))
	if err != nil {
		return APIItem{}, withKind(ErrNotFound, fmt.Errorf("delete item %q of %q: %w", id, o.name, err))
	}
	return s.apiItem(it), nil
}

// ResolveItem resolves the conflicts of item id of the list or notes
// object name, keeping conflict number keep (negative: the current
// version). Its failures: those of ItemsWritable; ErrInvalid (keep);
// ErrConflict.
func (n *Node) ResolveItem(name, id string, keep int) (APIItem, error) {
	return n.objs.resolveItem(name, id, keep)
}

// resolveItem is Node.ResolveItem.
func (s *objectSet) resolveItem(name, id string, keep int) (APIItem, error) {
	o, err := s.editable(name)
	if err != nil {
		return APIItem{}, err
	}
	iid := syncproto.ItemID(id)
	var kept []syncproto.Content
	if keep >= 0 {
		var cur syncproto.Item
		_ = s.engine.View(o.id, func(obj *syncproto.Object) error { cur, _ = obj.Item(iid); return nil })
		if keep >= len(cur.Sync.Conflicts) {
			return APIItem{}, withKind(ErrInvalid, fmt.Errorf("item %q has %d conflicts; keep %d is not one", iid, len(cur.Sync.Conflicts), keep))
		}
		kept = []syncproto.Content{cur.Sync.Conflicts[keep].Content.Clone()}
	}
	it, err := s.engine.Resolve(o.id, iid, kept...)
	if err != nil {
		return APIItem{}, withKind(ErrConflict, fmt.Errorf("resolve item %q of %q: %w", iid, o.name, err))
	}
	return s.apiItem(it), nil
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func checkFolderName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("name %q: want 1-64 letters, digits, '.', '-' or '_'", name)
	}
	return nil
}

func hlcAt(t time.Time) hlc.Timestamp { return hlc.FromTime(t) }
