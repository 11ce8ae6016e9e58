package feeds

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/meshwork/meshwork/syncproto"
)

type jsonFeed struct {
	Version     string       `json:"version"`
	Title       string       `json:"title"`
	HomePageURL string       `json:"home_page_url,omitempty"`
	FeedURL     string       `json:"feed_url,omitempty"`
	Authors     []jsonAuthor `json:"authors,omitempty"`
	Items       []jsonItem   `json:"items"`
	Meshwork    *jsonFeedExt `json:"_meshwork,omitempty"`
}

type jsonFeedExt struct {
	Version int    `json:"version"`
	Object  string `json:"object"`
	Type    string `json:"type"`
}

type jsonAuthor struct {
	Name string `json:"name"`
}

type jsonItem struct {
	ID           string           `json:"id"`
	Title        string           `json:"title"`
	ContentText  *string          `json:"content_text,omitempty"`
	DateModified string           `json:"date_modified,omitempty"`
	Authors      []jsonAuthor     `json:"authors,omitempty"`
	Attachments  []jsonAttachment `json:"attachments,omitempty"`
	Sync         *jsonSync        `json:"_sx"`
	Meshwork     *jsonItemExt     `json:"_meshwork,omitempty"`
	Sig          string           `json:"_meshwork_sig,omitempty"` // base64 of Sync.Signature
}

type jsonAttachment struct {
	URL      string      `json:"url"`
	MimeType string      `json:"mime_type"`
	Size     int64       `json:"size_in_bytes"`
	Meshwork *jsonEncExt `json:"_meshwork,omitempty"`
}

type jsonEncExt struct {
	Ref string `json:"ref"`
}

// jsonItemExt carries a body that is not Text: Kind is "none", "bytes"
// or "file".
type jsonItemExt struct {
	Kind  string    `json:"kind"`
	Bytes []byte    `json:"bytes,omitempty"`
	File  *jsonFile `json:"file,omitempty"`
}

type jsonFile struct {
	Path    string `json:"path"`
	Mode    string `json:"mode"`
	MTime   string `json:"mtime"`
	Size    int64  `json:"size"`
	Blob    string `json:"blob,omitempty"`
	Symlink string `json:"symlink,omitempty"`
}

type jsonSync struct {
	ID          *string       `json:"id"`
	Updates     uint32        `json:"updates"`
	Deleted     bool          `json:"deleted"`
	NoConflicts bool          `json:"noconflicts"`
	History     []jsonHistory `json:"history"`
	Conflicts   []jsonItem    `json:"conflicts,omitempty"`
}

type jsonHistory struct {
	Sequence uint32 `json:"sequence"`
	When     string `json:"when,omitempty"`
	By       string `json:"by,omitempty"`
	Logical  uint32 `json:"logical,omitempty"`
}

// WriteJSON writes items as a JSON Feed 1.1 with the FeedSync metadata of
// each item in its "_sx" extension object, like WriteAtom.
func WriteJSON(w io.Writer, info FeedInfo, items []syncproto.Item, enclosureURL EnclosureURL) error {
	if err := checkFeed(info, items); err != nil {
		return fmt.Errorf("write json feed: %w", err)
	}
	f := jsonFeed{
		Version:     JSONFeedVersion,
		Title:       title(info),
		HomePageURL: info.HomeURL,
		FeedURL:     info.SelfURL,
		Authors:     []jsonAuthor{{Name: "Meshwork"}},
		Items:       []jsonItem{},
		Meshwork:    &jsonFeedExt{Version: JSONVersion, Object: string(info.Object), Type: string(info.Type)},
	}
	for _, it := range items {
		ji, err := toJSONItem(info, it, enclosureURL)
		if err != nil {
			return fmt.Errorf("write json feed: %w", err)
		}
		f.Items = append(f.Items, ji)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(f); err != nil {
		return fmt.Errorf("write json feed: %w", err)
	}
	return nil
}

func toJSONItem(info FeedInfo, it syncproto.Item, u EnclosureURL) (jsonItem, error) {
	s := it.Sync
	id := string(s.ID)
	ji := jsonItem{
		ID:    entryID(info.Object, s.ID),
		Title: it.Title,
		Sync:  &jsonSync{ID: &id, Updates: s.Updates, Deleted: s.Deleted, NoConflicts: s.NoConflicts},
	}
	if len(s.Signature) > 0 {
		ji.Sig = encodeBytes(s.Signature)
	}
	if w := s.Top().When; !w.IsZero() {
		d, err := formatTime(w.Time(), time.RFC3339Nano)
		if err != nil {
			return jsonItem{}, fmt.Errorf("item %q: %w", s.ID, err)
		}
		ji.DateModified = d
	}
	if by := s.Top().By; by != "" {
		ji.Authors = []jsonAuthor{{Name: string(by)}}
	}
	for i, h := range s.History {
		jh := jsonHistory{Sequence: h.Sequence, By: string(h.By), Logical: h.When.Logical}
		if !h.When.IsZero() {
			var err error
			if jh.When, err = formatWhen(h.When); err != nil {
				return jsonItem{}, fmt.Errorf("item %q: history %d: %w", s.ID, i, err)
			}
		}
		ji.Sync.History = append(ji.Sync.History, jh)
	}
	empty := ""
	switch b := it.Body.(type) {
	case syncproto.Text:
		t := string(b)
		ji.ContentText = &t
	case syncproto.Bytes:
		ji.ContentText = &empty
		ji.Meshwork = &jsonItemExt{Kind: "bytes", Bytes: []byte(b)}
	case *syncproto.FileEntry:
		ji.ContentText = &empty
		if b == nil {
			ji.Meshwork = &jsonItemExt{Kind: "none"}
			break
		}
		mt, err := formatTime(b.ModTime, mtimeLayout)
		if err != nil {
			return jsonItem{}, fmt.Errorf("item %q: %w", s.ID, err)
		}
		ji.Meshwork = &jsonItemExt{Kind: "file", File: &jsonFile{
			Path: b.Path, Mode: formatMode(b.Mode), MTime: mt, Size: b.Size, Blob: b.Blob.String(), Symlink: b.Symlink,
		}}
		if !b.Blob.IsZero() {
			ji.Attachments = append(ji.Attachments, jsonAttachment{URL: u.url(b.Blob), MimeType: "application/octet-stream", Size: b.Size})
		}
	default:
		ji.ContentText = &empty
		ji.Meshwork = &jsonItemExt{Kind: "none"}
	}
	for _, e := range it.Enclosures {
		ji.Attachments = append(ji.Attachments, jsonAttachment{URL: u.url(e.Ref), MimeType: e.MediaType, Size: e.Size,
			Meshwork: &jsonEncExt{Ref: e.Ref.String()}})
	}
	for _, c := range s.Conflicts {
		jc, err := toJSONItem(info, c, u)
		if err != nil {
			return jsonItem{}, fmt.Errorf("item %q: conflict: %w", s.ID, err)
		}
		ji.Sync.Conflicts = append(ji.Sync.Conflicts, jc)
	}
	return ji, nil
}

// ParseJSON reads a JSON Feed with "_sx" objects, as WriteJSON writes
// them, and returns its items, validated.
func ParseJSON(r io.Reader) ([]syncproto.Item, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, fmt.Errorf("parse json feed: %w", err)
	}
	var f jsonFeed
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse json feed: %w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("parse json feed: trailing data: %w", ErrMalformed)
	}
	if f.Version != JSONFeedVersion && f.Version != "https://jsonfeed.org/version/1" {
		return nil, fmt.Errorf("parse json feed: version %q: %w", f.Version, ErrMalformed)
	}
	if f.Meshwork != nil && f.Meshwork.Version != JSONVersion {
		return nil, fmt.Errorf("parse json feed: _meshwork version %d: %w", f.Meshwork.Version, ErrMalformed)
	}
	if len(f.Items) > MaxItems {
		return nil, fmt.Errorf("parse json feed: %d items: %w", len(f.Items), ErrTooLarge)
	}
	items := make([]syncproto.Item, 0, len(f.Items))
	for i := range f.Items {
		it, err := f.Items[i].item(true)
		if err != nil {
			return nil, fmt.Errorf("parse json feed: item %d: %w", i, err)
		}
		items = append(items, it)
	}
	if err := checkItems(items); err != nil {
		return nil, fmt.Errorf("parse json feed: %w", err)
	}
	return items, nil
}

func (ji *jsonItem) item(top bool) (syncproto.Item, error) {
	var it syncproto.Item
	s := ji.Sync
	if s == nil || s.ID == nil {
		return it, fmt.Errorf("no _sx id: %w", ErrMalformed)
	}
	id, err := syncproto.ParseItemID(*s.ID)
	if err != nil {
		return it, fmt.Errorf("_sx: %w", err)
	}
	it.Sync = syncproto.Sync{ID: id, Updates: s.Updates, Deleted: s.Deleted, NoConflicts: s.NoConflicts}
	if it.Sync.Signature, err = parseSig(ji.Sig, "item "+string(id)); err != nil {
		return it, err
	}
	for i, jh := range s.History {
		h := syncproto.History{Sequence: jh.Sequence}
		what := fmt.Sprintf("item %q: history %d", id, i)
		if jh.When != "" {
			if h.When, err = parseWhen(jh.When, jh.Logical); err != nil {
				return it, fmt.Errorf("%s: %w", what, err)
			}
		} else if jh.Logical != 0 {
			return it, fmt.Errorf("%s: logical without when: %w", what, ErrMalformed)
		}
		if jh.By != "" {
			if h.By, err = syncproto.ParseDeviceID(jh.By); err != nil {
				return it, fmt.Errorf("%s: %w", what, err)
			}
		}
		it.Sync.History = append(it.Sync.History, h)
	}
	if len(s.Conflicts) > 0 && !top {
		return it, fmt.Errorf("item %q: conflict with conflicts: %w", id, ErrMalformed)
	}
	if len(s.Conflicts) > MaxConflicts {
		return it, fmt.Errorf("item %q: %d conflicts: %w", id, len(s.Conflicts), ErrTooLarge)
	}
	for i := range s.Conflicts {
		c, err := s.Conflicts[i].item(false)
		if err != nil {
			return it, fmt.Errorf("item %q: conflict %d: %w", id, i, err)
		}
		it.Sync.Conflicts = append(it.Sync.Conflicts, c)
	}
	it.Title = ji.Title
	switch m := ji.Meshwork; {
	case m == nil:
		if ji.ContentText != nil {
			it.Body = syncproto.Text(*ji.ContentText)
		}
	case m.Kind == "none":
	case m.Kind == "bytes":
		it.Body = syncproto.Bytes(m.Bytes)
	case m.Kind == "file" && m.File != nil:
		fr := fileR{Path: m.File.Path, Mode: m.File.Mode, MTime: m.File.MTime, Blob: m.File.Blob, Symlink: m.File.Symlink}
		fr.Size = fmt.Sprint(m.File.Size)
		fe, err := fr.entry()
		if err != nil {
			return it, fmt.Errorf("item %q: %w", id, err)
		}
		it.Body = fe
	default:
		return it, fmt.Errorf("item %q: _meshwork kind %q: %w", id, m.Kind, ErrMalformed)
	}
	for i, a := range ji.Attachments {
		if a.Meshwork == nil || a.Meshwork.Ref == "" {
			continue // a view of the file's blob, or not Meshwork's
		}
		what := fmt.Sprintf("item %q: attachment %d", id, i)
		e := syncproto.Enclosure{Size: a.Size, MediaType: a.MimeType}
		if e.Ref, err = parseRef(a.Meshwork.Ref, what); err != nil {
			return it, err
		}
		if e.Size < 0 {
			return it, fmt.Errorf("%s: size %d: %w", what, e.Size, ErrMalformed)
		}
		it.Enclosures = append(it.Enclosures, e)
	}
	return it, nil
}
