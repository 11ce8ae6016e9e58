// Package transfer moves chunks between mesh members over the libp2p
// protocol /meshwork/blobs/1.0.0: it serves the local store's chunks to
// members allowed to read them, and fetches a blob's missing chunks from
// every peer that has them at once.
//
// Fetch puts chunks into the store's chunk store (for a device without a
// working copy); FetchInto writes them into a store.Partial, straight into
// the file being received. Both resume: chunks already verified locally are
// not requested again. Stats exposes counters; Progress callbacks feed a
// progress bar or the API.
//
// It must never serve a byte to a non-member or a chunk of a blob the asker
// may not read, never write or pass on a chunk that does not hash to its ID,
// and never allocate from a length it has not bounded.
//
// # Message flow
//
// The fetching side opens one long-lived stream per peer and pipelines
// requests on it; the serving side answers in order.
//
//	fetcher                                  server
//	HAVE(blob, ids...) ×⌈n/1024⌉  ------>    (checks IsMember on stream open
//	                                          and per request, CanRead per blob)
//	                              <------    HAVE_RESP(bitmap) per HAVE
//	GET(blob, id) ×window         ------>
//	                              <------    CHUNK(id, bytes) or ERROR(not found)
//	GET ... (one per answer, window adapting)
//
// A non-member's stream gets one ERROR(refused, request 0) and is closed
// before anything is read from it. A request for a blob the peer may not read
// gets ERROR(refused). A chunk is served only if it is listed by the named
// blob (which the server retains) and reads back from disk with the right
// hash. MANIFEST(blob) asks for a blob's chunk list; the answer is verified
// against the blob ref.
//
// With a single peer the fetcher sends its first GETs right behind the
// HAVEs instead of waiting for the answer (nothing to choose between; a
// missing chunk answers "not found"), so a one-chunk blob costs one round
// trip; a one-chunk blob asked of a single peer sends no HAVE at all.
// MANIFEST requests may be pipelined on one stream like the others
// (Service.FetchManifests).
//
// Every request names its blob and the server keeps no state between
// requests, so a stream may carry one fetch after another: the fetcher
// keeps the stream of a fetch that ended with every request answered and
// nothing unread for its next fetch from that peer (streampool.go), and the
// server checks IsMember and CanRead per request, not only at stream open.
//
// Scheduling: chunks are requested in manifest order; each peer takes the
// next chunk it has that nobody is fetching, as long as its window of
// requests in flight has room. Windows start at 2 and adapt per peer, TCP
// Vegas style, from the time each answer takes per byte (see peerState.adapt),
// so a slow peer holds few chunks and a fast one many. When nothing fresh is
// left, an idle peer may request a chunk still in flight at one other peer
// (endgame), and the first verified copy wins. A peer that sends a chunk with
// the wrong hash, or an unexpected message, is dropped for the transfer; its
// outstanding chunks go back to the queue for the others, as do those of a
// peer whose stream fails, and of a peer that owes answers (requests in
// flight or a HAVE unanswered) and sends no byte for StallTimeout (60 s):
// a frozen or hostile member that keeps its connection up but never answers
// cannot hold a fetch, and the caller's transfer slot, for good. Alone, such
// a peer makes the fetch fail with ErrStalled and ErrUnavailable, and the
// caller tries again later. As a backstop, a whole fetch that stores no
// chunk and reads no byte from any peer for StallTimeout ends the same way.
//
// # Wire format (version 1.0.0)
//
// Every message is a frame:
//
//	type   u8
//	length u32 big-endian, of the payload; at most 36 + MaxChunkSize (4 MiB)
//	payload
//
// A reader checks length before reading the payload into a buffer of that
// fixed maximum; nothing is allocated from a peer-supplied length. Integers
// are big-endian; a blob ref on the wire is hash[32] size u64; IDs are 32
// bytes. Payloads:
//
//	0x01 HAVE           req u32, blob[40], count u16 (≤1024), count × id[32]
//	0x02 GET            req u32, blob[40], id[32]
//	0x03 MANIFEST       req u32, blob[40]
//	0x81 HAVE_RESP      req u32, count u16, ⌈count/8⌉ bitmap bytes (bit i = byte i/8,
//	                    bit i%8, LSB first; padding bits zero)
//	0x82 CHUNK          req u32, id[32], data (1..MaxChunkSize bytes)
//	0x83 MANIFEST_RESP  req u32, manifest (blobs.Manifest binary form)
//	0x8f ERROR          req u32 (0: the whole stream), code u8, text (≤256 bytes)
//
// Bounds per message type: a frame's length is checked against the largest
// valid payload of its type, and against the buffer the reader has, before
// any of the payload is read (readFrame). The largest payloads are
//
//	HAVE 32,814 (1024 IDs)   GET 76   MANIFEST 44
//	HAVE_RESP 134   CHUNK 36 + MaxChunkSize   MANIFEST_RESP 36 + MaxChunkSize
//	ERROR 261
//
// The serving side reads requests into a buffer of the largest request
// (32,819 bytes with the header), so a longer frame, a frame of a response
// type longer than that, or a frame of an unknown type is answered
// ERROR(bad request, request 0) and the stream is closed without its
// payload being read; the fetching side resets a stream with such a frame.
// A frame of a known type within its bound whose payload does not decode
// is a bad request too. Before this check was per type (1.0.0 as first
// shipped), a request frame longer than 32,814 bytes panicked the server;
// the format is unchanged.
//
// Memory: each chunk answer holds a pooled frame buffer from loading until
// it is written, of the size class (16 KiB doubling up to MaxChunkSize plus
// header and a page: bufclass.go) that holds the request's blob when that is
// smaller than a chunk's maximum, else a whole frame; a chunk that proves
// larger than the blob the request names is refused (not found), never sent
// from memory that was not reserved. The fetcher reads each answer into a
// buffer of the class its frame header announces. The server reserves the
// buffer on the stream's resource-manager scope first (so libp2p's stream,
// peer, protocol and system memory limits hold). While the service holds
// any such buffers a failed reservation waits for one to be released; when
// it holds none, the request is answered ERROR(internal).
//
// Error codes: 1 refused, 2 not found, 3 bad request (the stream is then
// closed), 4 internal. Request IDs are chosen by the fetcher and echoed.
// Unknown message types are a bad request. A MANIFEST_RESP must fit one
// frame, which limits a blob served this way to about 116,000 chunks
// (~130 GiB at the average chunk size) in this version.
//
// # Version history
//
//	1.0.0  first version.
package transfer
