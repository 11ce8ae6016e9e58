package syncproto

import (
	"bytes"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/meshwork/meshwork/syncproto/hlc"
)

// History is one FeedSync sx:history record: the update with this
// sequence number was made by By at When. A record has a By, a When, or
// both; Meshwork always writes both.
type History struct {
	Sequence uint32
	When     hlc.Timestamp // zero: absent
	By       DeviceID      // empty: absent
}

// Sync is an item's FeedSync sx:sync element.
type Sync struct {
	ID          ItemID
	Updates     uint32
	Deleted     bool
	NoConflicts bool
	History     []History // newest first; History[0] is the topmost record
	Conflicts   []Item    // complete losing items; their own Conflicts are empty
	// Signature is the author's signature of this version (the item
	// without its conflicts; each conflict has its own): see sign.go. Nil:
	// unsigned (versions written before signatures, or by a replica
	// without a Signer).
	Signature []byte
}

// Top returns the topmost (newest) history record, or the zero History.
func (s Sync) Top() History {
	if len(s.History) == 0 {
		return History{}
	}
	return s.History[0]
}

// Item is one entry of an object's feed: content plus sync metadata.
type Item struct {
	Sync Sync
	Content
}

// Content is what a user edits: everything of an item except its sync
// metadata.
type Content struct {
	Title      string
	Body       Body // nil: no body
	Enclosures []Enclosure
}

// Body is an item's payload: Bytes, Text or FileEntry.
type Body interface {
	bodyKind() bodyKind
}

type bodyKind byte

// Body kinds; their values are part of the encoding.
const (
	kindNone  bodyKind = 0
	kindBytes bodyKind = 1
	kindText  bodyKind = 2
	kindFile  bodyKind = 3
)

// Bytes is an opaque payload.
type Bytes []byte

// Text is the payload of list and note items.
type Text string

// FileEntry is the payload of a folder item: one file, directory or
// symlink. The file's data is the blob Blob (absent for directories and
// symlinks).
type FileEntry struct {
	Path    string // slash-separated, relative to the folder root
	Mode    fs.FileMode
	ModTime time.Time
	Size    int64
	Blob    BlobRef // zero when the entry has no data
	Symlink string  // target of a symlink
}

func (Bytes) bodyKind() bodyKind      { return kindBytes }
func (Text) bodyKind() bodyKind       { return kindText }
func (*FileEntry) bodyKind() bodyKind { return kindFile }

// Enclosure is a blob an item refers to.
type Enclosure struct {
	Ref       BlobRef
	Size      int64
	MediaType string
}

// BlobRef names a blob: "<hash>-<lower-case hex digest>", for example
// "blake3-af13…". The zero BlobRef is "no blob". syncproto does not know
// hash functions; it only checks the form.
type BlobRef struct{ s string }

// ParseBlobRef checks s and returns it as a BlobRef.
func ParseBlobRef(s string) (BlobRef, error) {
	name, digest, ok := strings.Cut(s, "-")
	if !ok || name == "" || len(name) > 16 || len(digest) < 2 || len(digest) > 128 || len(digest)%2 != 0 {
		return BlobRef{}, fmt.Errorf("parse blob ref %q: %w", s, ErrMalformed)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return BlobRef{}, fmt.Errorf("parse blob ref %q: bad hash name: %w", s, ErrMalformed)
		}
	}
	for i := 0; i < len(digest); i++ {
		if c := digest[i]; !(c >= 'a' && c <= 'f' || c >= '0' && c <= '9') {
			return BlobRef{}, fmt.Errorf("parse blob ref %q: bad digest: %w", s, ErrMalformed)
		}
	}
	return BlobRef{s}, nil
}

// String returns the blob ref's text form ("" for the zero BlobRef).
func (r BlobRef) String() string { return r.s }

// IsZero reports whether r is the zero BlobRef.
func (r BlobRef) IsZero() bool { return r.s == "" }

// MarshalText implements encoding.TextMarshaler.
func (r BlobRef) MarshalText() ([]byte, error) { return []byte(r.s), nil }

// UnmarshalText implements encoding.TextUnmarshaler; "" is the zero BlobRef.
func (r *BlobRef) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*r = BlobRef{}
		return nil
	}
	v, err := ParseBlobRef(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Clone returns a deep copy of it.
func (it Item) Clone() Item {
	out := it
	out.Sync.History = slices.Clone(it.Sync.History)
	out.Sync.Signature = bytes.Clone(it.Sync.Signature)
	if it.Sync.Conflicts != nil {
		out.Sync.Conflicts = make([]Item, len(it.Sync.Conflicts))
		for i, c := range it.Sync.Conflicts {
			out.Sync.Conflicts[i] = c.Clone()
		}
	}
	out.Content = it.Content.Clone()
	return out
}

// Clone returns a deep copy of c.
func (c Content) Clone() Content {
	out := c
	out.Enclosures = slices.Clone(c.Enclosures)
	switch b := c.Body.(type) {
	case Bytes:
		out.Body = Bytes(bytes.Clone(b))
	case *FileEntry:
		if b != nil {
			f := *b
			out.Body = &f
		}
	}
	return out
}

// Equal reports whether it and other are the same item, conflicts
// included: whether their encodings are equal.
func (it Item) Equal(other Item) bool {
	return bytes.Equal(appendItem(nil, it), appendItem(nil, other))
}

// stripped returns it without its conflicts.
func (it Item) stripped() Item {
	it.Sync.Conflicts = nil
	return it
}

// Validate checks that it is a well-formed item as Meshwork writes them:
// valid IDs, at least one history record, every record with a By, the
// topmost record's sequence equal to Updates, no record's sequence above
// it, and conflicts that are valid items with the same ID and no conflicts
// of their own.
func (it Item) Validate() error {
	return it.validate(true)
}

func (it Item) validate(top bool) error {
	s := it.Sync
	if _, err := ParseItemID(string(s.ID)); err != nil {
		return fmt.Errorf("item: %w", err)
	}
	if len(s.History) == 0 {
		return fmt.Errorf("item %q: no history: %w", s.ID, ErrMalformed)
	}
	if s.History[0].Sequence != s.Updates {
		return fmt.Errorf("item %q: topmost sequence %d != updates %d: %w", s.ID, s.History[0].Sequence, s.Updates, ErrMalformed)
	}
	for i, h := range s.History {
		if h.Sequence == 0 || h.Sequence > s.Updates {
			return fmt.Errorf("item %q: history %d: sequence %d not in 1..%d: %w", s.ID, i, h.Sequence, s.Updates, ErrMalformed)
		}
		if _, err := ParseDeviceID(string(h.By)); err != nil {
			return fmt.Errorf("item %q: history %d: %w", s.ID, i, err)
		}
	}
	if len(s.Signature) > MaxSignatureLen {
		return fmt.Errorf("item %q: signature of %d bytes exceeds %d: %w", s.ID, len(s.Signature), MaxSignatureLen, ErrMalformed)
	}
	if !utf8.ValidString(it.Title) {
		return fmt.Errorf("item %q: title is not UTF-8: %w", s.ID, ErrMalformed)
	}
	switch b := it.Body.(type) {
	case nil, Bytes:
	case Text:
		if !utf8.ValidString(string(b)) {
			return fmt.Errorf("item %q: text is not UTF-8: %w", s.ID, ErrMalformed)
		}
	case *FileEntry:
		if b == nil || !utf8.ValidString(b.Path) || !utf8.ValidString(b.Symlink) || b.Size < 0 {
			return fmt.Errorf("item %q: bad file entry: %w", s.ID, ErrMalformed)
		}
	default:
		return fmt.Errorf("item %q: unknown body type %T: %w", s.ID, b, ErrMalformed)
	}
	for i, e := range it.Enclosures {
		if e.Ref.IsZero() || e.Size < 0 || !utf8.ValidString(e.MediaType) {
			return fmt.Errorf("item %q: enclosure %d: %w", s.ID, i, ErrMalformed)
		}
	}
	if !top && len(s.Conflicts) > 0 {
		return fmt.Errorf("item %q: conflict has conflicts: %w", s.ID, ErrMalformed)
	}
	for i, c := range s.Conflicts {
		if c.Sync.ID != s.ID {
			return fmt.Errorf("item %q: conflict %d has id %q: %w", s.ID, i, c.Sync.ID, ErrMalformed)
		}
		if err := c.validate(false); err != nil {
			return fmt.Errorf("item %q: conflict %d: %w", s.ID, i, err)
		}
	}
	return nil
}
