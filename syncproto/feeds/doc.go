// Package feeds renders a mesh object's items as Atom 1.0, RSS 2.0 and
// JSON Feed 1.1 feeds carrying FeedSync 1.0 metadata, and parses such
// feeds back into items.
package feeds
