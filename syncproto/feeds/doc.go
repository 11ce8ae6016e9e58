// Package feeds renders a mesh object's items as Atom 1.0, RSS 2.0 and
// JSON Feed 1.1 feeds carrying FeedSync 1.0 metadata, and parses such
// feeds back into items, so that any feed reader can read a mesh object
// and an outside program can take part in sync as a FeedSync endpoint:
// it edits the feed (updates+1, a new topmost sx:history with its own
// `by`) and posts it back, and the caller merges each parsed item with
// syncproto's FeedSync merge (Object.Apply).
//
// WriteAtom, WriteRSS and WriteJSON render []syncproto.Item; ParseAtom,
// ParseRSS and ParseJSON read back exactly what was written: every field
// of Sync (conflicts included), the title, every body kind and the
// enclosures (checked by round-trip tests and Fuzz* targets).
//
// # What it must never do
//
// It does no I/O beyond the io.Writer and io.Reader it is given, merges
// nothing (that is syncproto's Merge), starts no goroutines, holds no
// globals and imports only the standard library and syncproto. Writers
// and parsers accept only valid items (syncproto.Item.Validate), so
// nothing it parses can bypass the checks of Object.Apply, which still
// refuses authors that may not write and `when` values beyond the clock's
// bound. Parsers read at most MaxFeedBytes, MaxItems items and
// MaxConflicts conflicts per item, and no DTDs or external entities
// (encoding/xml does not expand them). A writer never drops data
// silently: what a format cannot hold is an error (ErrUnrepresentable).
//
// # Mapping
//
// Namespaces: sx = NSFeedSync (http://feedsync.org/2007/feedsync),
// meshwork = NSMeshwork. Parsers match namespace URIs, so any prefix
// works on input. "View" elements are written for readers and ignored by
// the parsers.
//
//	Field                 Atom 1.0                         RSS 2.0                           JSON Feed 1.1
//	feed (object)         feed/id urn:meshwork:object:ID   channel/link, description (views) "_meshwork": {version, object, type}
//	                      @meshwork:object, @meshwork:type channel/@meshwork:object, @…type
//	Sync.ID               sx:sync/@id                      sx:sync/@id                       _sx.id
//	Sync.Updates          sx:sync/@updates                 same                              _sx.updates
//	Sync.Deleted          sx:sync/@deleted (when true)     same                              _sx.deleted
//	Sync.NoConflicts      sx:sync/@noconflicts (when true) same                              _sx.noconflicts
//	Sync.Signature        sx:sync/@meshwork:sig (base64,   same                              _meshwork_sig (base64)
//	                      absent when unsigned)
//	History[i]            sx:sync/sx:history, newest first same                              _sx.history[i]
//	  .Sequence           @sequence                        same                              .sequence
//	  .When               @when (RFC 3339 UTC, ms) and     same                              .when and .logical
//	                      @meshwork:logical (HLC counter,
//	                      absent when 0)
//	  .By                 @by                              same                              .by
//	Sync.Conflicts        sx:sync/sx:conflicts/entry       sx:sync/sx:conflicts/item         _sx.conflicts (full items)
//	Title                 entry/title type="text"          item/title                        title
//	Body Text             entry/content type="text"        item/description (HTML-escaped)   content_text
//	Body Bytes            meshwork:bytes (base64)          same                              _meshwork {kind: "bytes", bytes}
//	Body *FileEntry       meshwork:file @path @mode (octal same                              _meshwork {kind: "file", file:
//	                      fs.FileMode bits) @mtime (RFC                                        {path, mode, mtime, size, blob,
//	                      3339, ns) @size @blob @symlink                                       symlink}}
//	no body               none of the above                none of the above                 _meshwork {kind: "none"}
//	Enclosures[i]         link rel="enclosure" href type   enclosure url type length          attachments[i] url mime_type
//	                      length @meshwork:ref             @meshwork:ref                     size_in_bytes _meshwork.ref
//	view: file's blob     link rel="enclosure" without     enclosure without meshwork:ref    attachment without _meshwork
//	                      meshwork:ref
//	view: entry id        entry/id urn:…:item:ID           guid isPermaLink="false"          id
//	view: time, author    updated (topmost when), author   pubDate                           date_modified, authors
//	                      (topmost by)
//
// Titles and texts XML 1.0 cannot hold (control characters, U+FFFE…) are
// written in base64 with meshwork:encoding="base64" on the element. Item
// IDs, device IDs, paths, symlink targets and media types that XML cannot
// hold make the Atom and RSS writers fail (ErrUnrepresentable); JSON Feed
// carries them. A `when` is read as any RFC 3339 time, truncated to the
// millisecond; the HLC counter is lossless only through meshwork:logical
// (JSON: logical). Atom content of type html or xhtml is refused. Input
// enclosures without meshwork:ref (JSON: _meshwork.ref) are views and are
// ignored.
//
// Known reader behaviour: python3-feedparser also lists the entries inside
// sx:conflicts as entries of the feed (with the same id); gofeed exposes
// sx:sync under item.Extensions["sx"] but no JSON Feed extensions.
//
// # Versioning
//
// The sx: elements follow FeedSync 1.0 and do not change. Meshwork's own
// markup is versioned by its namespace (NSMeshwork ends in "/v1") and, in
// JSON, by "_meshwork": {"version": JSONVersion}; a change old parsers
// would misread means a new namespace and version. The JSON parser refuses
// a "_meshwork" version it does not know; the XML parsers do not recognise
// elements of another meshwork namespace (a v2 meshwork:file would read as
// no body), so a v2 must keep writing the v1 elements or be refused by
// version negotiation in the HTTP API.
//
// Version history:
//
//	v1: first version. Later in v1: sx:sync/@meshwork:sig and
//	    _meshwork_sig, the version signature (syncproto "Signed
//	    versions"); old parsers ignore it, and items read without it are
//	    unsigned.
package feeds
