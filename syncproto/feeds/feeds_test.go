package feeds

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/hlc"
)

type format struct {
	name  string
	write func(io.Writer, FeedInfo, []syncproto.Item, EnclosureURL) error
	parse func(io.Reader) ([]syncproto.Item, error)
}

var formats = []format{
	{"atom", WriteAtom, ParseAtom},
	{"rss", WriteRSS, ParseRSS},
	{"json", WriteJSON, ParseJSON},
}

var testInfo = FeedInfo{Object: "obj-1", Type: syncproto.TypeFolder, Title: "Photos & <stuff>", SelfURL: "http://localhost/feed"}

func blobURL(r syncproto.BlobRef) string { return "http://localhost/blobs/" + r.String() }

func mustRef(t testing.TB, s string) syncproto.BlobRef {
	t.Helper()
	r, err := syncproto.ParseBlobRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ts(ms int64, logical uint32) hlc.Timestamp { return hlc.Timestamp{Wall: ms, Logical: logical} }

// sampleItems covers every field: all body kinds, enclosures, deleted,
// noconflicts, history with logical counters and without when, and
// conflicts; titles and texts with characters XML cannot hold.
func sampleItems(t testing.TB) []syncproto.Item {
	ref := mustRef(t, "blake3-00ff")
	ref2 := mustRef(t, "sha256-abcdef01")
	base := int64(1767225600123) // 2026-01-01T00:00:00.123Z
	winner := syncproto.Item{
		Sync: syncproto.Sync{ID: "notes/a b.txt", Updates: 4, History: []syncproto.History{
			{Sequence: 4, When: ts(base+4000, 2), By: "devB"},
			{Sequence: 3, When: ts(base+3000, 0), By: "devA"},
			{Sequence: 1, When: ts(base, 0), By: "devA"},
		}},
		Content: syncproto.Content{Title: "Winner <b>&amp;", Body: syncproto.Text("line 1\nline 2\r\n\ttab & <tag> \"q\" 'a' &amp;"),
			Enclosures: []syncproto.Enclosure{{Ref: ref, Size: 12, MediaType: "image/png"}, {Ref: ref2, Size: 0}}},
	}
	loser := syncproto.Item{
		Sync: syncproto.Sync{ID: "notes/a b.txt", Updates: 4, History: []syncproto.History{
			{Sequence: 4, When: ts(base+3500, 0), By: "devA"},
			{Sequence: 3, When: ts(base+3000, 0), By: "devA"},
		}},
		Content: syncproto.Content{Title: "Loser", Body: syncproto.Text("")},
	}
	winner.Sync.Signature = bytes.Repeat([]byte{0xa5}, 64)
	loser.Sync.Signature = bytes.Repeat([]byte{0x5a, 0xff}, 32)
	winner.Sync.Conflicts = []syncproto.Item{loser}
	return []syncproto.Item{
		winner,
		{
			Sync: syncproto.Sync{ID: "dir/file.bin", Updates: 2, History: []syncproto.History{
				{Sequence: 2, When: ts(base+10, 7), By: "devA"}, {Sequence: 1, By: "devC"},
			}, Signature: []byte{1, 2, 3}},
			Content: syncproto.Content{Title: "file.bin", Body: &syncproto.FileEntry{
				Path: "dir/file.bin", Mode: 0o644, ModTime: time.Date(2025, 12, 31, 23, 59, 59, 123456789, time.UTC), Size: 12, Blob: ref}},
		},
		{
			Sync:    syncproto.Sync{ID: "dir", Updates: 1, History: []syncproto.History{{Sequence: 1, When: ts(-5, 0), By: "devA"}}},
			Content: syncproto.Content{Title: "dir", Body: &syncproto.FileEntry{Path: "dir", Mode: fs.ModeDir | 0o755}},
		},
		{
			Sync:    syncproto.Sync{ID: "link", Updates: 1, Deleted: true, NoConflicts: true, History: []syncproto.History{{Sequence: 1, When: ts(0, 3), By: "devA"}}},
			Content: syncproto.Content{Title: "", Body: &syncproto.FileEntry{Path: "link", Mode: fs.ModeSymlink | 0o777, Symlink: "../t\u00e4rget", ModTime: time.Unix(0, 0)}},
		},
		{
			Sync:    syncproto.Sync{ID: "bytes", Updates: 1, History: []syncproto.History{{Sequence: 1, When: ts(base, 0), By: "devA"}}},
			Content: syncproto.Content{Title: "ctl \x01\x00 \uFFFE title", Body: syncproto.Bytes{0, 1, 2, 0xff}},
		},
		{
			Sync:    syncproto.Sync{ID: "text-ctl", Updates: 1, History: []syncproto.History{{Sequence: 1, When: ts(base, 0), By: "devA"}}},
			Content: syncproto.Content{Title: "t", Body: syncproto.Text("bell \x07 and NUL \x00")},
		},
		{
			Sync: syncproto.Sync{ID: "nobody", Updates: 1, History: []syncproto.History{{Sequence: 1, When: ts(base, 0), By: "devA"}}},
		},
	}
}

func equalItems(t *testing.T, got, want []syncproto.Item) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d items, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("item %d (%q):\n got %#v\nwant %#v", i, want[i].Sync.ID, got[i], want[i])
		}
	}
}

func TestRoundTrip(t *testing.T) {
	items := sampleItems(t)
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := f.write(&buf, testInfo, items, blobURL); err != nil {
				t.Fatal(err)
			}
			got, err := f.parse(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatalf("%v\n%s", err, buf.String())
			}
			equalItems(t, got, items)
			// Writing what was read gives the same bytes.
			var again bytes.Buffer
			if err := f.write(&again, testInfo, got, blobURL); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), buf.Bytes()) {
				t.Errorf("second rendering differs")
			}
			// An empty feed.
			buf.Reset()
			if err := f.write(&buf, testInfo, nil, nil); err != nil {
				t.Fatal(err)
			}
			if got, err := f.parse(&buf); err != nil || len(got) != 0 {
				t.Fatalf("empty feed: %v, %d items", err, len(got))
			}
		})
	}
}

func TestWriteRefusesInvalid(t *testing.T) {
	bad := []syncproto.Item{{Sync: syncproto.Sync{ID: "x", Updates: 1}}} // no history
	for _, f := range formats {
		if err := f.write(io.Discard, testInfo, bad, nil); !errors.Is(err, syncproto.ErrMalformed) {
			t.Errorf("%s: invalid item: %v", f.name, err)
		}
		if err := f.write(io.Discard, FeedInfo{}, nil, nil); !errors.Is(err, syncproto.ErrMalformed) {
			t.Errorf("%s: no object: %v", f.name, err)
		}
	}
	odd := sampleItems(t)[:1]
	odd[0].Sync.ID = "id \uFFFF"
	odd[0].Sync.Conflicts[0].Sync.ID = odd[0].Sync.ID
	for _, f := range formats[:2] {
		if err := f.write(io.Discard, testInfo, odd, nil); !errors.Is(err, ErrUnrepresentable) {
			t.Errorf("%s: unrepresentable id: %v", f.name, err)
		}
	}
	if err := WriteJSON(io.Discard, testInfo, odd, nil); err != nil {
		t.Errorf("json: %v", err)
	}
}

func TestParseLimits(t *testing.T) {
	big := io.MultiReader(strings.NewReader("<feed>"), strings.NewReader(strings.Repeat(" ", MaxFeedBytes)))
	for _, f := range formats {
		if _, err := f.parse(big); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: huge input: %v", f.name, err)
		}
		big = io.MultiReader(strings.NewReader("<feed>"), strings.NewReader(strings.Repeat(" ", MaxFeedBytes)))
	}
}

func TestParseRejects(t *testing.T) {
	cases := map[string]struct {
		parse func(io.Reader) ([]syncproto.Item, error)
		in    string
	}{
		"atom no sync":   {ParseAtom, `<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>x</title></entry></feed>`},
		"atom two syncs": {ParseAtom, `<feed xmlns="http://www.w3.org/2005/Atom" xmlns:sx="http://feedsync.org/2007/feedsync"><entry><sx:sync id="a" updates="1"><sx:history sequence="1" by="d"/></sx:sync><sx:sync id="a" updates="1"/></entry></feed>`},
		"atom no by":     {ParseAtom, `<feed xmlns="http://www.w3.org/2005/Atom" xmlns:sx="http://feedsync.org/2007/feedsync"><entry><sx:sync id="a" updates="1"><sx:history sequence="1" when="2026-01-01T00:00:00Z"/></sx:sync></entry></feed>`},
		"atom html":      {ParseAtom, `<feed xmlns="http://www.w3.org/2005/Atom" xmlns:sx="http://feedsync.org/2007/feedsync"><entry><content type="html">x</content><sx:sync id="a" updates="1"><sx:history sequence="1" by="d"/></sx:sync></entry></feed>`},
		"atom wrong ns":  {ParseAtom, `<feed><entry/></feed>`},
		"rss version":    {ParseRSS, `<rss version="0.91"><channel/></rss>`},
		"rss bad upd":    {ParseRSS, `<rss version="2.0" xmlns:sx="http://feedsync.org/2007/feedsync"><channel><item><sx:sync id="a" updates="-1"><sx:history sequence="1" by="d"/></sx:sync></item></channel></rss>`},
		"rss dup":        {ParseRSS, `<rss version="2.0" xmlns:sx="http://feedsync.org/2007/feedsync"><channel><item><sx:sync id="a" updates="1"><sx:history sequence="1" by="d"/></sx:sync></item><item><sx:sync id="a" updates="1"><sx:history sequence="1" by="d"/></sx:sync></item></channel></rss>`},
		"json no sx":     {ParseJSON, `{"version":"https://jsonfeed.org/version/1.1","items":[{"id":"x","content_text":"a"}]}`},
		"json trailing":  {ParseJSON, `{"version":"https://jsonfeed.org/version/1.1","items":[]} {}`},
		"json nested":    {ParseJSON, `{"version":"https://jsonfeed.org/version/1.1","items":[{"_sx":{"id":"a","updates":1,"history":[{"sequence":1,"by":"d"}],"conflicts":[{"_sx":{"id":"a","updates":1,"history":[{"sequence":1,"by":"e"}],"conflicts":[{"_sx":{"id":"a","updates":1,"history":[{"sequence":1,"by":"f"}]}}]}}]}}]}`},
	}
	for name, c := range cases {
		if _, err := c.parse(strings.NewReader(c.in)); !errors.Is(err, syncproto.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
