package feeds

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/meshwork/meshwork/syncproto"
)

type atomFeedW struct {
	XMLName xml.Name     `xml:"feed"`
	NS      string       `xml:"xmlns,attr"`
	NSsx    string       `xml:"xmlns:sx,attr"`
	NSmw    string       `xml:"xmlns:meshwork,attr"`
	Object  string       `xml:"meshwork:object,attr"`
	Type    string       `xml:"meshwork:type,attr"`
	ID      string       `xml:"id"`
	Title   textW        `xml:"title"`
	Updated string       `xml:"updated"`
	Author  atomPerson   `xml:"author"`
	Links   []atomLinkW  `xml:"link"`
	Entries []atomEntryW `xml:"entry"`
}

type atomPerson struct {
	Name string `xml:"name"`
}

type atomLinkW struct {
	Rel    string `xml:"rel,attr"`
	Href   string `xml:"href,attr"`
	Type   string `xml:"type,attr,omitempty"`
	Length string `xml:"length,attr,omitempty"`
	Ref    string `xml:"meshwork:ref,attr,omitempty"`
}

type atomEntryW struct {
	ID      string      `xml:"id"`
	Title   textW       `xml:"title"`
	Updated string      `xml:"updated"`
	Author  *atomPerson `xml:"author"`
	Content *textW      `xml:"content"`
	Links   []atomLinkW `xml:"link"`
	bodyW
	Sync atomSyncW `xml:"sx:sync"`
}

type atomSyncW struct {
	syncAttrsW
	History   []historyW      `xml:"sx:history"`
	Conflicts *atomConflictsW `xml:"sx:conflicts"`
}

type atomConflictsW struct {
	Entries []atomEntryW `xml:"entry"`
}

// WriteAtom writes items as an Atom 1.0 feed with FeedSync elements.
// The items must be valid (syncproto.Item.Validate); enclosureURL gives
// the href of blobs (nil: a urn:meshwork:blob: URN).
func WriteAtom(w io.Writer, info FeedInfo, items []syncproto.Item, enclosureURL EnclosureURL) error {
	if err := checkFeed(info, items); err != nil {
		return fmt.Errorf("write atom: %w", err)
	}
	updated := feedUpdated(info, items)
	up, err := formatTime(updated, time.RFC3339Nano)
	if err != nil {
		return fmt.Errorf("write atom: feed updated: %w", err)
	}
	f := atomFeedW{
		NS: NSAtom, NSsx: NSFeedSync, NSmw: NSMeshwork,
		ID:      feedID(info.Object),
		Title:   newText("text", title(info)),
		Updated: up,
		Author:  atomPerson{Name: "Meshwork"},
	}
	if f.Object, err = attr(string(info.Object), "object id"); err != nil {
		return fmt.Errorf("write atom: %w", err)
	}
	f.Type = string(info.Type)
	if info.SelfURL != "" {
		f.Links = append(f.Links, atomLinkW{Rel: "self", Href: info.SelfURL, Type: "application/atom+xml"})
	}
	if info.HomeURL != "" {
		f.Links = append(f.Links, atomLinkW{Rel: "alternate", Href: info.HomeURL})
	}
	for _, it := range items {
		e, err := atomEntry(info, it, updated, enclosureURL)
		if err != nil {
			return fmt.Errorf("write atom: %w", err)
		}
		f.Entries = append(f.Entries, e)
	}
	b, err := marshalXML(f)
	if err != nil {
		return fmt.Errorf("write atom: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write atom: %w", err)
	}
	return nil
}

func atomEntry(info FeedInfo, it syncproto.Item, fallback time.Time, u EnclosureURL) (atomEntryW, error) {
	up, err := formatTime(itemUpdated(it, fallback), time.RFC3339Nano)
	if err != nil {
		return atomEntryW{}, fmt.Errorf("item %q: %w", it.Sync.ID, err)
	}
	e := atomEntryW{
		ID:      entryID(info.Object, it.Sync.ID),
		Title:   newText("text", it.Title),
		Updated: up,
	}
	if by := it.Sync.Top().By; by != "" {
		e.Author = &atomPerson{Name: string(by)}
	}
	body, text, err := bodyOf(it)
	if err != nil {
		return atomEntryW{}, fmt.Errorf("item %q: %w", it.Sync.ID, err)
	}
	e.bodyW = body
	if text != nil {
		t := newText("text", *text)
		e.Content = &t
	}
	if ref := fileBlob(it); !ref.IsZero() {
		size := it.Body.(*syncproto.FileEntry).Size
		e.Links = append(e.Links, atomLinkW{Rel: "enclosure", Href: u.url(ref), Length: strconv.FormatInt(size, 10)})
	}
	for _, enc := range it.Enclosures {
		typ, err := attr(enc.MediaType, "media type")
		if err != nil {
			return atomEntryW{}, fmt.Errorf("item %q: %w", it.Sync.ID, err)
		}
		e.Links = append(e.Links, atomLinkW{Rel: "enclosure", Href: u.url(enc.Ref), Type: typ,
			Length: strconv.FormatInt(enc.Size, 10), Ref: enc.Ref.String()})
	}
	if e.Sync.syncAttrsW, e.Sync.History, err = syncW(it); err != nil {
		return atomEntryW{}, err
	}
	if len(it.Sync.Conflicts) > 0 {
		e.Sync.Conflicts = &atomConflictsW{}
		for _, c := range it.Sync.Conflicts {
			ce, err := atomEntry(info, c, fallback, u)
			if err != nil {
				return atomEntryW{}, fmt.Errorf("item %q: conflict: %w", it.Sync.ID, err)
			}
			e.Sync.Conflicts.Entries = append(e.Sync.Conflicts.Entries, ce)
		}
	}
	return e, nil
}

type atomFeedR struct {
	XMLName xml.Name     `xml:"http://www.w3.org/2005/Atom feed"`
	Entries []atomEntryR `xml:"http://www.w3.org/2005/Atom entry"`
}

type atomEntryR struct {
	Title   *textR      `xml:"http://www.w3.org/2005/Atom title"`
	Content *textR      `xml:"http://www.w3.org/2005/Atom content"`
	Links   []atomLinkR `xml:"http://www.w3.org/2005/Atom link"`
	bodyR
	Syncs []atomSyncR `xml:"http://feedsync.org/2007/feedsync sync"`
}

type atomLinkR struct {
	Rel string `xml:"rel,attr"`
	encAttrsR
}

type atomSyncR struct {
	syncAttrsR
	History   []historyR       `xml:"http://feedsync.org/2007/feedsync history"`
	Conflicts []atomConflictsR `xml:"http://feedsync.org/2007/feedsync conflicts"`
}

type atomConflictsR struct {
	Entries []atomEntryR `xml:"http://www.w3.org/2005/Atom entry"`
}

// ParseAtom reads an Atom feed with FeedSync elements, as WriteAtom
// writes them, and returns its items, validated. Entries without sx:sync
// are errors.
func ParseAtom(r io.Reader) ([]syncproto.Item, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, fmt.Errorf("parse atom: %w", err)
	}
	var f atomFeedR
	if err := xml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse atom: %w: %v", ErrMalformed, err)
	}
	if len(f.Entries) > MaxItems {
		return nil, fmt.Errorf("parse atom: %d entries: %w", len(f.Entries), ErrTooLarge)
	}
	items := make([]syncproto.Item, 0, len(f.Entries))
	for i := range f.Entries {
		it, err := f.Entries[i].item(true)
		if err != nil {
			return nil, fmt.Errorf("parse atom: entry %d: %w", i, err)
		}
		items = append(items, it)
	}
	if err := checkItems(items); err != nil {
		return nil, fmt.Errorf("parse atom: %w", err)
	}
	return items, nil
}

func (e *atomEntryR) item(top bool) (syncproto.Item, error) {
	p := xmlParts{Title: e.Title, Body: e.bodyR, Syncs: len(e.Syncs)}
	if e.Content != nil {
		if e.Content.Type != "" && e.Content.Type != "text" {
			return syncproto.Item{}, fmt.Errorf("content type %q (only text): %w", e.Content.Type, ErrMalformed)
		}
		s, err := e.Content.text("content")
		if err != nil {
			return syncproto.Item{}, err
		}
		p.Text = &s
	}
	for _, l := range e.Links {
		if l.Rel == "enclosure" {
			p.Encs = append(p.Encs, l.encAttrsR)
		}
	}
	if len(e.Syncs) == 1 {
		s := e.Syncs[0]
		p.Sync, p.History = s.syncAttrsR, s.History
		var entries []atomEntryR
		if len(s.Conflicts) > 0 {
			entries = s.Conflicts[0].Entries
		}
		cs, err := conflictItems(top, len(s.Conflicts), entries, func(e *atomEntryR) (syncproto.Item, error) { return e.item(false) })
		if err != nil {
			return syncproto.Item{}, err
		}
		p.Conflicts = cs
	}
	return p.item(top)
}
