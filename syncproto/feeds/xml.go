package feeds

import (
	"encoding/xml"
	"fmt"
	"html"
	"time"

	"github.com/meshwork/meshwork/syncproto"
)

// This file holds what the Atom and RSS renderings share: the sx:sync
// element and Meshwork's elements. Writers use literal prefixed names
// ("sx:sync", declared on the root element); readers match namespace URIs,
// so any prefix works on input.

const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// textW is a text element. Text XML cannot hold is written in base64 with
// meshwork:encoding="base64".
type textW struct {
	Type  string `xml:"type,attr,omitempty"`
	Enc   string `xml:"meshwork:encoding,attr,omitempty"`
	Value string `xml:",chardata"`
}

func newText(typ, s string) textW {
	if xmlSafe(s) {
		return textW{Type: typ, Value: s}
	}
	return textW{Type: typ, Enc: "base64", Value: encodeBytes([]byte(s))}
}

type textR struct {
	Type  string `xml:"type,attr"`
	Enc   string `xml:"https://github.com/meshwork/meshwork/syncproto/feeds/v1 encoding,attr"`
	Value string `xml:",chardata"`
}

func (t *textR) text(what string) (string, error) {
	switch t.Enc {
	case "":
		return t.Value, nil
	case "base64":
		b, err := decodeBytes(t.Value)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		return string(b), nil
	}
	return "", fmt.Errorf("%s: encoding %q: %w", what, t.Enc, ErrMalformed)
}

type syncAttrsW struct {
	ID          string `xml:"id,attr"`
	Updates     uint32 `xml:"updates,attr"`
	Deleted     bool   `xml:"deleted,attr,omitempty"`
	NoConflicts bool   `xml:"noconflicts,attr,omitempty"`
	Sig         string `xml:"meshwork:sig,attr,omitempty"` // base64 of Sync.Signature
}

type historyW struct {
	Sequence uint32 `xml:"sequence,attr"`
	When     string `xml:"when,attr,omitempty"`
	By       string `xml:"by,attr,omitempty"`
	Logical  uint32 `xml:"meshwork:logical,attr,omitempty"`
}

type syncAttrsR struct {
	ID          *string `xml:"id,attr"`
	Updates     string  `xml:"updates,attr"`
	Deleted     string  `xml:"deleted,attr"`
	NoConflicts string  `xml:"noconflicts,attr"`
	Sig         string  `xml:"https://github.com/meshwork/meshwork/syncproto/feeds/v1 sig,attr"`
}

type historyR struct {
	Sequence string `xml:"sequence,attr"`
	When     string `xml:"when,attr"`
	By       string `xml:"by,attr"`
	Logical  string `xml:"https://github.com/meshwork/meshwork/syncproto/feeds/v1 logical,attr"`
}

// bodyW is the meshwork: rendering of a non-text body.
type bodyW struct {
	File  *fileW `xml:"meshwork:file"`
	Bytes *textW `xml:"meshwork:bytes"`
}

type fileW struct {
	Path    string `xml:"path,attr"`
	Mode    string `xml:"mode,attr"`
	MTime   string `xml:"mtime,attr"`
	Size    int64  `xml:"size,attr"`
	Blob    string `xml:"blob,attr,omitempty"`
	Symlink string `xml:"symlink,attr,omitempty"`
}

type bodyR struct {
	File  *fileR `xml:"https://github.com/meshwork/meshwork/syncproto/feeds/v1 file"`
	Bytes *textR `xml:"https://github.com/meshwork/meshwork/syncproto/feeds/v1 bytes"`
}

type fileR struct {
	Path    string `xml:"path,attr"`
	Mode    string `xml:"mode,attr"`
	MTime   string `xml:"mtime,attr"`
	Size    string `xml:"size,attr"`
	Blob    string `xml:"blob,attr"`
	Symlink string `xml:"symlink,attr"`
}

// encW is the meshwork:ref attribute of an enclosure link.
type encAttrsR struct {
	Ref    string `xml:"https://github.com/meshwork/meshwork/syncproto/feeds/v1 ref,attr"`
	Length string `xml:"length,attr"`
	Type   string `xml:"type,attr"`
}

// syncW returns the sx:sync attributes and history of it.
func syncW(it syncproto.Item) (syncAttrsW, []historyW, error) {
	s := it.Sync
	id, err := attr(string(s.ID), "item id")
	if err != nil {
		return syncAttrsW{}, nil, err
	}
	a := syncAttrsW{ID: id, Updates: s.Updates, Deleted: s.Deleted, NoConflicts: s.NoConflicts}
	if len(s.Signature) > 0 {
		a.Sig = encodeBytes(s.Signature)
	}
	hs := make([]historyW, len(s.History))
	for i, h := range s.History {
		hs[i] = historyW{Sequence: h.Sequence, By: string(h.By), Logical: h.When.Logical}
		if !h.When.IsZero() {
			if hs[i].When, err = formatWhen(h.When); err != nil {
				return syncAttrsW{}, nil, fmt.Errorf("item %q: history %d: %w", s.ID, i, err)
			}
		}
	}
	return a, hs, nil
}

// bodyOf returns the meshwork: body elements of it, and its text when the
// body is Text.
func bodyOf(it syncproto.Item) (bodyW, *string, error) {
	switch b := it.Body.(type) {
	case syncproto.Text:
		s := string(b)
		return bodyW{}, &s, nil
	case syncproto.Bytes:
		t := newText("", encodeBytes(b))
		return bodyW{Bytes: &t}, nil, nil
	case *syncproto.FileEntry:
		if b == nil {
			return bodyW{}, nil, nil
		}
		f := fileW{Mode: formatMode(b.Mode), Size: b.Size, Blob: b.Blob.String()}
		var err error
		if f.Path, err = attr(b.Path, "file path"); err != nil {
			return bodyW{}, nil, err
		}
		if f.Symlink, err = attr(b.Symlink, "symlink target"); err != nil {
			return bodyW{}, nil, err
		}
		if f.MTime, err = formatTime(b.ModTime, mtimeLayout); err != nil {
			return bodyW{}, nil, err
		}
		return bodyW{File: &f}, nil, nil
	}
	return bodyW{}, nil, nil
}

// xmlParts is what an Atom entry or RSS item carries, read.
type xmlParts struct {
	Title     *textR
	Text      *string // the text body, already decoded
	Encs      []encAttrsR
	Body      bodyR
	Syncs     int // number of sx:sync elements
	Sync      syncAttrsR
	History   []historyR
	Conflicts []syncproto.Item
}

// item is the Item p describes; top is false for a conflict's.
func (p *xmlParts) item(top bool) (syncproto.Item, error) {
	var it syncproto.Item
	s := &it.Sync
	if err := p.syncAttrs(s); err != nil {
		return it, err
	}
	id := s.ID
	if err := p.history(s); err != nil {
		return it, err
	}
	if !top && len(p.Conflicts) > 0 {
		return it, fmt.Errorf("item %q: conflict with conflicts: %w", id, ErrMalformed)
	}
	if len(p.Conflicts) > MaxConflicts {
		return it, fmt.Errorf("item %q: %d conflicts: %w", id, len(p.Conflicts), ErrTooLarge)
	}
	s.Conflicts = p.Conflicts
	if p.Title != nil {
		var err error
		if it.Title, err = p.Title.text(fmt.Sprintf("item %q: title", id)); err != nil {
			return it, err
		}
	}
	if err := p.body(&it); err != nil {
		return it, err
	}
	if err := p.enclosures(&it); err != nil {
		return it, err
	}
	return it, nil
}

// syncAttrs reads the one sx:sync element's attributes into s.
func (p *xmlParts) syncAttrs(s *syncproto.Sync) error {
	if p.Syncs != 1 {
		return fmt.Errorf("entry with %d sx:sync elements: %w", p.Syncs, ErrMalformed)
	}
	if p.Sync.ID == nil {
		return fmt.Errorf("sx:sync without id: %w", ErrMalformed)
	}
	id, err := syncproto.ParseItemID(*p.Sync.ID)
	if err != nil {
		return fmt.Errorf("sx:sync: %w", err)
	}
	s.ID = id
	if s.Updates, err = parseUint32(p.Sync.Updates, "item "+string(id)+": updates"); err != nil {
		return err
	}
	if s.Deleted, err = parseBool(p.Sync.Deleted, "item "+string(id)+": deleted"); err != nil {
		return err
	}
	if s.NoConflicts, err = parseBool(p.Sync.NoConflicts, "item "+string(id)+": noconflicts"); err != nil {
		return err
	}
	if s.Signature, err = parseSig(p.Sync.Sig, "item "+string(id)); err != nil {
		return err
	}
	return nil
}

// history appends the sx:history elements to s.History, in order.
func (p *xmlParts) history(s *syncproto.Sync) error {
	var err error
	for i, hr := range p.History {
		what := fmt.Sprintf("item %q: history %d", s.ID, i)
		var h syncproto.History
		if h.Sequence, err = parseUint32(hr.Sequence, what+": sequence"); err != nil {
			return err
		}
		var logical uint32
		if hr.Logical != "" {
			if logical, err = parseUint32(hr.Logical, what+": logical"); err != nil {
				return err
			}
		}
		if hr.When != "" {
			if h.When, err = parseWhen(hr.When, logical); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		} else if logical != 0 {
			return fmt.Errorf("%s: logical without when: %w", what, ErrMalformed)
		}
		if hr.By != "" {
			if h.By, err = syncproto.ParseDeviceID(hr.By); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		s.History = append(s.History, h)
	}
	return nil
}

// body sets it.Body from p's text, meshwork:bytes or meshwork:file (one).
func (p *xmlParts) body(it *syncproto.Item) error {
	id := it.Sync.ID
	n := 0
	if p.Text != nil {
		it.Body = syncproto.Text(*p.Text)
		n++
	}
	if p.Body.Bytes != nil {
		b, err := p.Body.Bytes.text(fmt.Sprintf("item %q: bytes", id))
		if err != nil {
			return err
		}
		raw, err := decodeBytes(b)
		if err != nil {
			return fmt.Errorf("item %q: bytes: %w", id, err)
		}
		it.Body = syncproto.Bytes(raw)
		n++
	}
	if f := p.Body.File; f != nil {
		fe, err := f.entry()
		if err != nil {
			return fmt.Errorf("item %q: %w", id, err)
		}
		it.Body = fe
		n++
	}
	if n > 1 {
		return fmt.Errorf("item %q: %d bodies: %w", id, n, ErrMalformed)
	}
	return nil
}

// enclosures appends the enclosures with a meshwork:ref to it.Enclosures.
func (p *xmlParts) enclosures(it *syncproto.Item) error {
	id := it.Sync.ID
	var err error
	for i, e := range p.Encs {
		if e.Ref == "" {
			continue // a view of the file's blob, or not Meshwork's
		}
		what := fmt.Sprintf("item %q: enclosure %d", id, i)
		var enc syncproto.Enclosure
		if enc.Ref, err = parseRef(e.Ref, what); err != nil {
			return err
		}
		if enc.Size, err = parseInt64(e.Length, what+": length"); err != nil {
			return err
		}
		enc.MediaType = e.Type
		it.Enclosures = append(it.Enclosures, enc)
	}
	return nil
}

func (f *fileR) entry() (*syncproto.FileEntry, error) {
	fe := &syncproto.FileEntry{Path: f.Path, Symlink: f.Symlink}
	var err error
	if fe.Mode, err = parseMode(f.Mode); err != nil {
		return nil, err
	}
	t, err := time.Parse(time.RFC3339Nano, f.MTime)
	if err != nil {
		return nil, fmt.Errorf("file mtime %q: %w", f.MTime, ErrMalformed)
	}
	fe.ModTime = t.UTC()
	if fe.Size, err = parseInt64(f.Size, "file size"); err != nil {
		return nil, err
	}
	if fe.Blob, err = parseRef(f.Blob, "file blob"); err != nil {
		return nil, err
	}
	return fe, nil
}

// htmlText is plain text as an RSS description: HTML-escaped, so that
// readers that take descriptions as HTML show the text as it is.
func htmlText(s string) string { return html.EscapeString(s) }

func unhtmlText(s string) string { return html.UnescapeString(s) }

func marshalXML(v any) ([]byte, error) {
	b, err := xml.MarshalIndent(v, "", " ")
	if err != nil {
		return nil, fmt.Errorf("marshal feed: %w", err)
	}
	return append([]byte(xmlHeader), append(b, '\n')...), nil
}

// conflictItems reads the sx:conflicts of one sx:sync (groups elements,
// the first holding entries), the same in Atom and RSS: at most one
// element, only on a top-level item (a conflict has no conflicts of its
// own), at most MaxConflicts entries, each parsed as a non-top item.
func conflictItems[E any](top bool, groups int, entries []E, parse func(*E) (syncproto.Item, error)) ([]syncproto.Item, error) {
	switch {
	case groups == 0:
		return nil, nil
	case groups > 1:
		return nil, fmt.Errorf("%d sx:conflicts: %w", groups, ErrMalformed)
	case !top:
		return nil, fmt.Errorf("conflict with sx:conflicts: %w", ErrMalformed)
	case len(entries) > MaxConflicts:
		return nil, fmt.Errorf("%d conflicts: %w", len(entries), ErrTooLarge)
	}
	var out []syncproto.Item
	for i := range entries {
		c, err := parse(&entries[i])
		if err != nil {
			return nil, fmt.Errorf("conflict %d: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// parseSig decodes a signature (meshwork:sig, JSON _meshwork_sig): base64
// of at most syncproto.MaxSignatureLen bytes; "" is unsigned.
func parseSig(v, what string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	if len(v) > 4*(syncproto.MaxSignatureLen+2)/3 {
		return nil, fmt.Errorf("%s: signature of %d characters: %w", what, len(v), ErrMalformed)
	}
	b, err := decodeBytes(v)
	if err != nil {
		return nil, fmt.Errorf("%s: signature: %w", what, err)
	}
	if len(b) == 0 || len(b) > syncproto.MaxSignatureLen {
		return nil, fmt.Errorf("%s: signature of %d bytes: %w", what, len(b), ErrMalformed)
	}
	return b, nil
}
