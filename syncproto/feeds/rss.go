package feeds

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/meshwork/meshwork/syncproto"
)

type rssW struct {
	XMLName xml.Name `xml:"rss"`
	Version string   `xml:"version,attr"`
	NSsx    string   `xml:"xmlns:sx,attr"`
	NSmw    string   `xml:"xmlns:meshwork,attr"`
	Channel rssChannelW
}

type rssChannelW struct {
	XMLName     xml.Name   `xml:"channel"`
	Object      string     `xml:"meshwork:object,attr"`
	Type        string     `xml:"meshwork:type,attr"`
	Title       textW      `xml:"title"`
	Link        string     `xml:"link"`
	Description string     `xml:"description"`
	LastBuild   string     `xml:"lastBuildDate"`
	Generator   string     `xml:"generator"`
	Items       []rssItemW `xml:"item"`
}

type rssItemW struct {
	XMLName     xml.Name       `xml:"item"`
	Title       textW          `xml:"title"`
	Description *textW         `xml:"description"`
	GUID        rssGUID        `xml:"guid"`
	PubDate     string         `xml:"pubDate,omitempty"`
	Enclosures  []rssEnclosure `xml:"enclosure"`
	bodyW
	Sync rssSyncW `xml:"sx:sync"`
}

type rssGUID struct {
	IsPermaLink string `xml:"isPermaLink,attr"`
	Value       string `xml:",chardata"`
}

type rssEnclosure struct {
	URL    string `xml:"url,attr"`
	Length string `xml:"length,attr"`
	Type   string `xml:"type,attr,omitempty"`
	Ref    string `xml:"meshwork:ref,attr,omitempty"`
}

type rssSyncW struct {
	syncAttrsW
	History   []historyW     `xml:"sx:history"`
	Conflicts *rssConflictsW `xml:"sx:conflicts"`
}

type rssConflictsW struct {
	Items []rssItemW `xml:"item"`
}

// WriteRSS writes items as an RSS 2.0 feed with FeedSync elements, like
// WriteAtom. Text bodies are the item's description, HTML-escaped.
func WriteRSS(w io.Writer, info FeedInfo, items []syncproto.Item, enclosureURL EnclosureURL) error {
	if err := checkFeed(info, items); err != nil {
		return fmt.Errorf("write rss: %w", err)
	}
	updated := feedUpdated(info, items)
	if _, err := formatTime(updated, time.RFC1123Z); err != nil {
		return fmt.Errorf("write rss: feed updated: %w", err)
	}
	f := rssW{Version: "2.0", NSsx: NSFeedSync, NSmw: NSMeshwork}
	ch := &f.Channel
	var err error
	if ch.Object, err = attr(string(info.Object), "object id"); err != nil {
		return fmt.Errorf("write rss: %w", err)
	}
	ch.Type = string(info.Type)
	ch.Title = newText("", title(info))
	ch.Link = info.HomeURL
	if ch.Link == "" {
		ch.Link = info.SelfURL
	}
	if ch.Link == "" {
		ch.Link = feedID(info.Object)
	}
	ch.Description = fmt.Sprintf("Meshwork %s %s", info.Type, feedID(info.Object))
	ch.LastBuild = updated.UTC().Format(time.RFC1123Z)
	ch.Generator = "Meshwork"
	for _, it := range items {
		ri, err := rssItem(info, it, enclosureURL)
		if err != nil {
			return fmt.Errorf("write rss: %w", err)
		}
		ch.Items = append(ch.Items, ri)
	}
	b, err := marshalXML(f)
	if err != nil {
		return fmt.Errorf("write rss: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write rss: %w", err)
	}
	return nil
}

func rssItem(info FeedInfo, it syncproto.Item, u EnclosureURL) (rssItemW, error) {
	ri := rssItemW{
		Title: newText("", it.Title),
		GUID:  rssGUID{IsPermaLink: "false", Value: entryID(info.Object, it.Sync.ID)},
	}
	if w := it.Sync.Top().When; !w.IsZero() {
		if _, err := formatTime(w.Time(), time.RFC1123Z); err != nil {
			return rssItemW{}, fmt.Errorf("item %q: %w", it.Sync.ID, err)
		}
		ri.PubDate = w.Time().Format(time.RFC1123Z)
	}
	body, text, err := bodyOf(it)
	if err != nil {
		return rssItemW{}, fmt.Errorf("item %q: %w", it.Sync.ID, err)
	}
	ri.bodyW = body
	if text != nil {
		t := newText("", *text)
		if t.Enc == "" {
			t.Value = htmlText(t.Value)
		}
		ri.Description = &t
	}
	if ref := fileBlob(it); !ref.IsZero() {
		size := it.Body.(*syncproto.FileEntry).Size
		ri.Enclosures = append(ri.Enclosures, rssEnclosure{URL: u.url(ref), Length: strconv.FormatInt(size, 10), Type: "application/octet-stream"})
	}
	for _, enc := range it.Enclosures {
		typ, err := attr(enc.MediaType, "media type")
		if err != nil {
			return rssItemW{}, fmt.Errorf("item %q: %w", it.Sync.ID, err)
		}
		ri.Enclosures = append(ri.Enclosures, rssEnclosure{URL: u.url(enc.Ref), Type: typ,
			Length: strconv.FormatInt(enc.Size, 10), Ref: enc.Ref.String()})
	}
	if ri.Sync.syncAttrsW, ri.Sync.History, err = syncW(it); err != nil {
		return rssItemW{}, err
	}
	if len(it.Sync.Conflicts) > 0 {
		ri.Sync.Conflicts = &rssConflictsW{}
		for _, c := range it.Sync.Conflicts {
			ci, err := rssItem(info, c, u)
			if err != nil {
				return rssItemW{}, fmt.Errorf("item %q: conflict: %w", it.Sync.ID, err)
			}
			ri.Sync.Conflicts.Items = append(ri.Sync.Conflicts.Items, ci)
		}
	}
	return ri, nil
}

type rssR struct {
	XMLName  xml.Name      `xml:"rss"`
	Version  string        `xml:"version,attr"`
	Channels []rssChannelR `xml:"channel"`
}

type rssChannelR struct {
	Items []rssItemR `xml:"item"`
}

type rssItemR struct {
	Title       *textR        `xml:"title"`
	Description *textR        `xml:"description"`
	Enclosures  []encAttrsURL `xml:"enclosure"`
	bodyR
	Syncs []rssSyncR `xml:"http://feedsync.org/2007/feedsync sync"`
}

type encAttrsURL struct {
	encAttrsR
}

type rssSyncR struct {
	syncAttrsR
	History   []historyR      `xml:"http://feedsync.org/2007/feedsync history"`
	Conflicts []rssConflictsR `xml:"http://feedsync.org/2007/feedsync conflicts"`
}

type rssConflictsR struct {
	Items []rssItemR `xml:"item"`
}

// ParseRSS reads an RSS 2.0 feed with FeedSync elements, as WriteRSS
// writes them, and returns its items, validated.
func ParseRSS(r io.Reader) ([]syncproto.Item, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, fmt.Errorf("parse rss: %w", err)
	}
	var f rssR
	if err := xml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse rss: %w: %v", ErrMalformed, err)
	}
	if f.XMLName.Space != "" || f.Version != "2.0" || len(f.Channels) != 1 {
		return nil, fmt.Errorf("parse rss: not an RSS 2.0 feed with one channel: %w", ErrMalformed)
	}
	ch := f.Channels[0]
	if len(ch.Items) > MaxItems {
		return nil, fmt.Errorf("parse rss: %d items: %w", len(ch.Items), ErrTooLarge)
	}
	items := make([]syncproto.Item, 0, len(ch.Items))
	for i := range ch.Items {
		it, err := ch.Items[i].item(true)
		if err != nil {
			return nil, fmt.Errorf("parse rss: item %d: %w", i, err)
		}
		items = append(items, it)
	}
	if err := checkItems(items); err != nil {
		return nil, fmt.Errorf("parse rss: %w", err)
	}
	return items, nil
}

func (ri *rssItemR) item(top bool) (syncproto.Item, error) {
	p := xmlParts{Title: ri.Title, Body: ri.bodyR, Syncs: len(ri.Syncs)}
	if d := ri.Description; d != nil {
		s, err := d.text("description")
		if err != nil {
			return syncproto.Item{}, err
		}
		if d.Enc == "" {
			s = unhtmlText(s)
		}
		p.Text = &s
	}
	for _, e := range ri.Enclosures {
		p.Encs = append(p.Encs, e.encAttrsR)
	}
	if len(ri.Syncs) == 1 {
		s := ri.Syncs[0]
		p.Sync, p.History = s.syncAttrsR, s.History
		var entries []rssItemR
		if len(s.Conflicts) > 0 {
			entries = s.Conflicts[0].Items
		}
		cs, err := conflictItems(top, len(s.Conflicts), entries, func(e *rssItemR) (syncproto.Item, error) { return e.item(false) })
		if err != nil {
			return syncproto.Item{}, err
		}
		p.Conflicts = cs
	}
	return p.item(top)
}
