package feeds

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/feeds/feedstest"
	"github.com/meshwork/meshwork/syncproto/hlc"
)

// This file checks our renderings with independent feed readers, run as
// separate programs: github.com/mmcdole/gofeed (testdata/gofeedcheck; it
// lives under testdata so that syncproto's stdlib-only import fence holds)
// and Debian's python3-feedparser.

// fakeClock is a settable wall clock for hlc.NewClock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newDevice(t testing.TB, self syncproto.DeviceID, typ syncproto.ObjectType, fc *fakeClock, members map[syncproto.DeviceID]syncproto.Role) *syncproto.Object {
	t.Helper()
	o, err := syncproto.NewObject("obj-"+syncproto.ObjectID(typ), typ, members, syncproto.Config{
		Self: self, Clock: hlc.NewClock(fc.now, hlc.DefaultMaxSkew),
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func update(t testing.TB, o *syncproto.Object, id syncproto.ItemID, c syncproto.Content) syncproto.Item {
	t.Helper()
	it, err := o.Update(id, c)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// testObjects returns a folder and a list built on device "devA".
func testObjects(t testing.TB) (folder, list *syncproto.Object) {
	fc := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	members := map[syncproto.DeviceID]syncproto.Role{"devA": syncproto.RoleOwner}
	folder = newDevice(t, "devA", syncproto.TypeFolder, fc, members)
	ref := mustRef(t, "blake3-0123456789abcdef")
	update(t, folder, "photos/cat.jpg", syncproto.Content{Title: "cat.jpg", Body: &syncproto.FileEntry{
		Path: "photos/cat.jpg", Mode: 0o644, ModTime: fc.now(), Size: 4096, Blob: ref}})
	update(t, folder, "photos", syncproto.Content{Title: "photos", Body: &syncproto.FileEntry{
		Path: "photos", Mode: os.ModeDir | 0o755, ModTime: fc.now()}})
	fc.advance(time.Second)
	update(t, folder, "readme.txt", syncproto.Content{Title: "readme.txt", Body: &syncproto.FileEntry{
		Path: "readme.txt", Mode: 0o600, ModTime: fc.now(), Size: 5, Blob: mustRef(t, "blake3-feedfeed")}})
	list = newDevice(t, "devA", syncproto.TypeList, fc, members)
	update(t, list, "milk", syncproto.Content{Title: "Milk & eggs", Body: syncproto.Text("2 litres")})
	update(t, list, "recipe", syncproto.Content{Title: "Recipe", Body: syncproto.Text("see attachment"),
		Enclosures: []syncproto.Enclosure{{Ref: mustRef(t, "blake3-abcd"), Size: 100, MediaType: "application/pdf"}}})
	return folder, list
}

// expect is what a reader must find in an entry.
type expect struct {
	title      string
	enclosures []string // URLs
	syncID     string
	updates    string
}

func expectations(o *syncproto.Object) []expect {
	var out []expect
	for _, it := range o.Items() {
		e := expect{title: it.Title, syncID: string(it.Sync.ID), updates: "1"}
		if f, ok := it.Body.(*syncproto.FileEntry); ok && !f.Blob.IsZero() {
			e.enclosures = append(e.enclosures, blobURL(f.Blob))
		}
		for _, enc := range it.Enclosures {
			e.enclosures = append(e.enclosures, blobURL(enc.Ref))
		}
		out = append(out, e)
	}
	return out
}

func render(t *testing.T, f format, o *syncproto.Object) []byte {
	t.Helper()
	var buf bytes.Buffer
	info := FeedInfo{Object: o.ID(), Type: o.Type(), Title: "My " + string(o.Type())}
	if err := f.write(&buf, info, o.Items(), blobURL); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var gofeedOnce struct {
	sync.Once
	path string
	err  error
}

// gofeedCheck builds testdata/gofeedcheck once.
func gofeedCheck(t *testing.T) string {
	t.Helper()
	gofeedOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			gofeedOnce.err = fmt.Errorf("the go tool is not on PATH: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "gofeedcheck")
		if err != nil {
			gofeedOnce.err = err
			return
		}
		gofeedOnce.path = filepath.Join(dir, "gofeedcheck")
		out, err := exec.Command(goTool, "build", "-o", gofeedOnce.path, "./testdata/gofeedcheck").CombinedOutput()
		if err != nil {
			gofeedOnce.err = errors.New(string(out))
		}
	})
	if gofeedOnce.err != nil {
		t.Fatalf("build gofeedcheck: %v", gofeedOnce.err)
	}
	return gofeedOnce.path
}

type gofeedExt struct {
	Name     string
	Value    string
	Attrs    map[string]string
	Children map[string][]gofeedExt
}

type gofeedOut struct {
	FeedType, Title string
	Items           []struct {
		Title      string
		Content    string
		Enclosures []struct{ URL, Length, Type string }
		Sync       []gofeedExt
		Meshwork   map[string][]gofeedExt
	}
}

func TestGofeedReads(t *testing.T) {
	bin := gofeedCheck(t)
	folder, list := testObjects(t)
	for _, o := range []*syncproto.Object{folder, list} {
		want := expectations(o)
		for _, f := range formats {
			t.Run(string(o.Type())+"/"+f.name, func(t *testing.T) {
				cmd := exec.Command(bin)
				cmd.Stdin = bytes.NewReader(render(t, f, o))
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				b, err := cmd.Output()
				if err != nil {
					t.Fatalf("gofeed: %v: %s", err, stderr.String())
				}
				var got gofeedOut
				if err := json.Unmarshal(b, &got); err != nil {
					t.Fatal(err)
				}
				if got.FeedType != f.name || got.Title != "My "+string(o.Type()) {
					t.Errorf("feed type %q, title %q", got.FeedType, got.Title)
				}
				if len(got.Items) != len(want) {
					t.Fatalf("gofeed found %d items, want %d", len(got.Items), len(want))
				}
				for i, w := range want {
					gi := got.Items[i]
					if gi.Title != w.title {
						t.Errorf("item %d: title %q, want %q", i, gi.Title, w.title)
					}
					var urls []string
					for _, e := range gi.Enclosures {
						urls = append(urls, e.URL)
					}
					if strings.Join(urls, " ") != strings.Join(w.enclosures, " ") {
						t.Errorf("item %d: enclosures %q, want %q", i, urls, w.enclosures)
					}
					if f.name == "json" {
						continue // gofeed does not expose JSON Feed extensions
					}
					if len(gi.Sync) != 1 || gi.Sync[0].Attrs["id"] != w.syncID || gi.Sync[0].Attrs["updates"] != w.updates {
						t.Errorf("item %d: sx:sync %+v, want id %q updates %s", i, gi.Sync, w.syncID, w.updates)
					} else if h := gi.Sync[0].Children["history"]; len(h) != 1 || h[0].Attrs["by"] != "devA" || h[0].Attrs["sequence"] != "1" || h[0].Attrs["when"] == "" {
						t.Errorf("item %d: sx:history %+v", i, h)
					}
					if o.Type() == syncproto.TypeFolder && len(gi.Meshwork["file"]) != 1 {
						t.Errorf("item %d: meshwork:file %+v", i, gi.Meshwork)
					}
				}
			})
		}
	}
}

// TestJSONExtensions checks the "_sx" objects with a generic JSON decoder
// (gofeed does not expose JSON Feed extensions).
func TestJSONExtensions(t *testing.T) {
	_, list := testObjects(t)
	var feed struct {
		Version string
		Items   []map[string]any
	}
	if err := json.Unmarshal(render(t, formats[2], list), &feed); err != nil {
		t.Fatal(err)
	}
	if feed.Version != JSONFeedVersion || len(feed.Items) != 2 {
		t.Fatalf("version %q, %d items", feed.Version, len(feed.Items))
	}
	sx, _ := feed.Items[0]["_sx"].(map[string]any)
	h, _ := sx["history"].([]any)
	if sx["id"] != "milk" || sx["updates"] != 1.0 || sx["deleted"] != false || sx["noconflicts"] != false || len(h) != 1 {
		t.Fatalf("_sx %v", sx)
	}
	if h0 := h[0].(map[string]any); h0["sequence"] != 1.0 || h0["by"] != "devA" || h0["when"] != "2026-03-01T12:00:01.000Z" {
		t.Errorf("history %v", h0)
	}
}

// TestFeedparserReads: python3-feedparser reads the Atom and RSS
// renderings (feedparser 6.0 does not read JSON Feed).
func TestFeedparserReads(t *testing.T) {
	py := feedstest.Python(t)
	folder, list := testObjects(t)
	for _, o := range []*syncproto.Object{folder, list} {
		want := expectations(o)
		for _, f := range formats[:2] {
			t.Run(string(o.Type())+"/"+f.name, func(t *testing.T) {
				got := feedstest.Feedparser(t, py, render(t, f, o))
				wantVersion := map[string]string{"atom": "atom10", "rss": "rss20"}[f.name]
				if got.Version != wantVersion || got.Bozo || got.Title != "My "+string(o.Type()) {
					t.Fatalf("version %q bozo %v title %q", got.Version, got.Bozo, got.Title)
				}
				if len(got.Entries) != len(want) {
					t.Fatalf("%d entries, want %d", len(got.Entries), len(want))
				}
				for i, w := range want {
					e := got.Entries[i]
					if e.Title != w.title || strings.Join(e.Enclosures, " ") != strings.Join(w.enclosures, " ") {
						t.Errorf("entry %d: %q %q, want %q %q", i, e.Title, e.Enclosures, w.title, w.enclosures)
					}
					if e.SxSync["id"] != w.syncID || e.SxSync["updates"] != w.updates || e.SxHistory["by"] != "devA" || e.SxHistory["sequence"] != "1" {
						t.Errorf("entry %d: sx:sync %v sx:history %v", i, e.SxSync, e.SxHistory)
					}
				}
			})
		}
	}
}
