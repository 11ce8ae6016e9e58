package feeds

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/hlc"
)

// Namespaces and versions. They are permanent once shipped: a change of
// the meshwork: elements that old readers would misread means a new
// NSMeshwork (".../v2") and a new JSONVersion.
const (
	// NSFeedSync is the FeedSync 1.0 namespace (prefix "sx").
	NSFeedSync = "http://feedsync.org/2007/feedsync"
	// NSMeshwork is the namespace of Meshwork's own elements and
	// attributes (prefix "meshwork").
	NSMeshwork = "https://github.com/meshwork/meshwork/syncproto/feeds/v1"
	// NSAtom is the Atom 1.0 namespace.
	NSAtom = "http://www.w3.org/2005/Atom"
	// JSONFeedVersion is the JSON Feed version URL written and accepted.
	JSONFeedVersion = "https://jsonfeed.org/version/1.1"
	// JSONVersion is the version of the "_sx" and "_meshwork" JSON
	// extension objects (the "version" member of the feed's "_meshwork").
	JSONVersion = 1
)

// Limits on what the parsers accept.
const (
	MaxFeedBytes = 64 << 20 // bytes of input
	MaxItems     = 1 << 18  // items of one feed
	MaxConflicts = 1024     // conflicts of one item
)

// Errors. The wrapping error names the item and the field at fault.
var (
	// ErrMalformed reports input that is not a feed as this package
	// writes them, or items that are not valid (syncproto.Item.Validate).
	// It wraps syncproto.ErrMalformed.
	ErrMalformed = fmt.Errorf("feed %w", syncproto.ErrMalformed)
	// ErrTooLarge reports input above MaxFeedBytes, MaxItems or
	// MaxConflicts.
	ErrTooLarge = errors.New("feed too large")
	// ErrUnrepresentable reports an item the writer cannot carry in the
	// format without loss: an ID, device ID, path, symlink target or media
	// type with characters XML 1.0 cannot hold (Atom and RSS only), or a
	// time outside the years 0000-9999.
	ErrUnrepresentable = errors.New("not representable in feed")
)

// FeedInfo describes the object a feed renders.
type FeedInfo struct {
	Object syncproto.ObjectID   // required
	Type   syncproto.ObjectType // required
	Title  string               // the object's name; Object when empty
	// SelfURL is where the feed is served (Atom link rel="self", JSON
	// feed_url); HomeURL is a page of the object (Atom link
	// rel="alternate", RSS link, JSON home_page_url). Both optional.
	SelfURL string
	HomeURL string
	// Updated is the feed's time; zero means the latest `when` of the
	// items.
	Updated time.Time
}

// EnclosureURL returns the URL at which a blob is served. A nil one gives
// "urn:meshwork:blob:<ref>".
type EnclosureURL func(syncproto.BlobRef) string

func (u EnclosureURL) url(r syncproto.BlobRef) string {
	if u == nil {
		return "urn:meshwork:blob:" + r.String()
	}
	return u(r)
}

func feedID(o syncproto.ObjectID) string {
	return "urn:meshwork:object:" + url.PathEscape(string(o))
}

func entryID(o syncproto.ObjectID, id syncproto.ItemID) string {
	return feedID(o) + ":item:" + url.PathEscape(string(id))
}

const (
	whenLayout  = "2006-01-02T15:04:05.000Z07:00"
	mtimeLayout = time.RFC3339Nano
)

// formatWhen returns the RFC 3339 form of the physical part of t and its
// logical counter.
func formatWhen(t hlc.Timestamp) (string, error) {
	return formatTime(t.Time(), whenLayout)
}

func formatTime(t time.Time, layout string) (string, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("time %v: year %d: %w", t, y, ErrUnrepresentable)
	}
	return t.Format(layout), nil
}

// parseWhen parses an RFC 3339 `when` (truncated to the millisecond) and
// the logical counter.
func parseWhen(s string, logical uint32) (hlc.Timestamp, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return hlc.Timestamp{}, fmt.Errorf("when %q: %w", s, ErrMalformed)
	}
	ts := hlc.FromTime(t)
	ts.Logical = logical
	if ts.IsZero() {
		return hlc.Timestamp{}, fmt.Errorf("when %q: the Unix epoch is reserved for no time: %w", s, ErrMalformed)
	}
	return ts, nil
}

func parseUint32(s, what string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", what, s, ErrMalformed)
	}
	return uint32(n), nil
}

func parseInt64(s, what string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s %q: %w", what, s, ErrMalformed)
	}
	return n, nil
}

// parseBool parses an xs:boolean; "" is false.
func parseBool(s, what string) (bool, error) {
	switch s {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, fmt.Errorf("%s %q: %w", what, s, ErrMalformed)
}

func formatMode(m fs.FileMode) string { return strconv.FormatUint(uint64(m), 8) }

func parseMode(s string) (fs.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("file mode %q: %w", s, ErrMalformed)
	}
	return fs.FileMode(n), nil
}

func parseRef(s, what string) (syncproto.BlobRef, error) {
	var r syncproto.BlobRef
	if err := r.UnmarshalText([]byte(s)); err != nil {
		return r, fmt.Errorf("%s: %w", what, errors.Join(ErrMalformed, err))
	}
	return r, nil
}

// xmlSafe reports whether XML 1.0 can hold s as it is.
func xmlSafe(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !(r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF ||
			r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF) {
			return false
		}
	}
	return true
}

// attr checks that s can be written as an XML attribute value.
func attr(s, what string) (string, error) {
	if !xmlSafe(s) {
		return "", fmt.Errorf("%s %q: %w", what, s, ErrUnrepresentable)
	}
	return s, nil
}

// readAll reads at most MaxFeedBytes.
func readAll(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFeedBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read feed: %w", err)
	}
	if len(b) > MaxFeedBytes {
		return nil, fmt.Errorf("read feed: more than %d bytes: %w", MaxFeedBytes, ErrTooLarge)
	}
	return b, nil
}

func encodeBytes(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func decodeBytes(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace([]byte(s))))
	if err != nil {
		return nil, fmt.Errorf("base64: %w", ErrMalformed)
	}
	return b, nil
}

// checkItems validates written or parsed items and the limits.
func checkItems(items []syncproto.Item) error {
	if len(items) > MaxItems {
		return fmt.Errorf("%d items, more than %d: %w", len(items), MaxItems, ErrTooLarge)
	}
	seen := make(map[syncproto.ItemID]bool, len(items))
	for _, it := range items {
		if len(it.Sync.Conflicts) > MaxConflicts {
			return fmt.Errorf("item %q: %d conflicts, more than %d: %w", it.Sync.ID, len(it.Sync.Conflicts), MaxConflicts, ErrTooLarge)
		}
		if err := it.Validate(); err != nil {
			return errors.Join(ErrMalformed, err)
		}
		if seen[it.Sync.ID] {
			return fmt.Errorf("item %q twice: %w", it.Sync.ID, ErrMalformed)
		}
		seen[it.Sync.ID] = true
	}
	return nil
}

// checkFeed checks what a writer is given: the feed info and the items.
func checkFeed(info FeedInfo, items []syncproto.Item) error {
	if _, err := syncproto.ParseObjectID(string(info.Object)); err != nil {
		return fmt.Errorf("feed info: %w", err)
	}
	if _, err := syncproto.ParseObjectType(string(info.Type)); err != nil {
		return fmt.Errorf("feed info: %w", err)
	}
	return checkItems(items)
}

// feedUpdated returns info.Updated or the latest `when` of the items.
func feedUpdated(info FeedInfo, items []syncproto.Item) time.Time {
	if !info.Updated.IsZero() {
		return info.Updated
	}
	var latest hlc.Timestamp
	for _, it := range items {
		for _, h := range it.Sync.History {
			if h.When.After(latest) {
				latest = h.When
			}
		}
	}
	if latest.IsZero() {
		return time.Unix(0, 0)
	}
	return latest.Time()
}

// itemUpdated returns the time an entry was last updated: its topmost
// `when`, or fallback.
func itemUpdated(it syncproto.Item, fallback time.Time) time.Time {
	if w := it.Sync.Top().When; !w.IsZero() {
		return w.Time()
	}
	return fallback
}

func title(info FeedInfo) string {
	if info.Title != "" {
		return info.Title
	}
	return string(info.Object)
}

// fileBlob returns the blob of a FileEntry body, or the zero ref.
func fileBlob(it syncproto.Item) syncproto.BlobRef {
	if f, ok := it.Body.(*syncproto.FileEntry); ok && f != nil {
		return f.Blob
	}
	return syncproto.BlobRef{}
}
