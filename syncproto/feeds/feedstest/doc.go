// Package feedstest holds what the tests of package feeds and the
// end-to-end tests of the HTTP API share: an outside FeedSync client's edit
// of an Atom feed (done on the text, without package feeds) and a run of
// Debian's python3-feedparser, an independent feed reader.
//
// It is for tests only and must never be imported by non-test code; like
// the rest of syncproto it imports only the standard library.
package feedstest
