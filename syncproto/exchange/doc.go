// Package exchange is the delta exchange of mesh objects between devices:
// the libp2p protocol /meshwork/sync/1.0.0 that moves the changes of
// syncproto replicas to the connected mesh members, pushing each change at
// once and catching up by cursor when a device connects.
//
// # Model
//
// Every device appends each change to a replica — its own, or a merge of a
// peer's that changed something — to its change log of the object, with a
// monotonically increasing sequence number (syncproto). A device remembers,
// per peer device and object, a Cursor: the epoch and highest sequence of
// the peer's log it holds; it asks only for what is newer. Because a log
// holds the merges its device made, items from third devices are relayed:
// A and C converge through B without ever meeting. Cursors are part of the
// replica snapshot the Store keeps, so a restart resumes where it stopped.
//
// # Push, never poll
//
// A change is announced at once to every connected member of the object
// over the connections that are already open (one short stream per push).
// Each connected member peer has an outbound goroutine and a set of dirty
// objects: a change marks its object dirty for those peers and signals
// their goroutines; a goroutine announces all its dirty objects in one
// session, so a burst of changes becomes one push and a slow peer delays
// only itself. When a member peer connects (the host's connectedness event),
// both sides announce every object they share: the catch-up. A two-way
// catch-up (the announcement asks for the peer's in return: reply wanted)
// runs whenever what a device may exchange with a peer grows:
// on Engine.MembershipChanged (the peer became a mesh member after it
// connected, or roles changed: every shared object, to every member),
// on Add (a replica new here, e.g. a folder the catalog just listed: asked
// of every connected member of it) and on SetMembers/SetRole (the object's
// member list changed). Each condition of an exchange — both sides count
// each other as members, the object names the peer, the replica exists —
// becomes true on one side, and that side then starts a session that
// both can use, so a device never waits for a later change on the other
// side (an announcement it ignored earlier, because it held nothing yet,
// is asked for again). There is no periodic timer; the only timer is the
// back-off of a failed push (at most five tries, then the objects wait,
// still dirty, for the next change, catch-up or reconnection). Engine.Sync
// catches up with one peer explicitly, both ways.
//
// Why not GossipSub: a mesh has few devices, each object its own member
// list with roles, and a reader must receive but never be listened to.
// GossipSub would need a topic per object with membership validation of
// every message, would forward to peers by mesh degree rather than by
// object membership, carries no cursors (a device that was away still needs
// this catch-up protocol), and would add go-libp2p-pubsub to the module.
// Announcing on the open connections gives the same one-hop latency in a
// small mesh; relaying through devices that hold the object gives the
// multi-hop reach, checked by every hop (a hop applies, and so relays, only
// what the object's roles allow).
//
// # Authorization
//
//   - Mesh membership (Config.Members): a non-member's stream is reset
//     before anything is read, and nothing is ever sent to a non-member.
//   - Object membership (syncproto roles): an object is announced to, and
//     its changes served to, only its members; announcements of an object
//     not held here are ignored (objects and member lists travel by other
//     means).
//   - Writers: changes are asked for only from peers that may write to the
//     object (owner, editor); a reader's announcements are ignored, CHANGES
//     that were not asked for are a protocol violation, and every replica
//     refuses versions authored by a device that may not write, whoever
//     relays them (syncproto.Object.ApplyFrom), and versions without
//     their author's signature (see Limits). A refused item is not
//     appended to the log, so it is never relayed onward.
//
// # Full reconciliation
//
// A cursor of another epoch than the one a peer announces (the peer lost
// its database: new log epoch) or beyond the announced head (its log was
// rolled back) makes the request a full one: zero cursor plus a summary of
// the items held (ID and a 16-byte digest of each item's encoding). The
// sender lists its whole log but skips the items whose digest matches, so
// only items that differ travel. A responder that cannot honour a cursor
// (syncproto.ErrEpochMismatch) sends its whole log. The merge is
// idempotent, so a full reconciliation is always safe.
//
// # Message flow
//
// A session is one stream, in four half-duplex phases; each phase is a
// sequence of frames ended by END, and only one side writes at a time:
//
//	initiator                                responder
//	ANNOUNCE{reply?, heads}* END  ------>    (IsMember checked on open)
//	                              <------    REQUEST* [ANNOUNCE* if reply] END
//	CHANGES* (for its requests)
//	REQUEST* (for its announce)   ------>
//	END
//	                              <------    CHANGES* END
//
// A push is a session with reply clear and the dirty objects; the catch-up
// on connection is one push of every shared object from each side; the
// two-way catch-up (membership or member-list change, Add) is a session
// with reply set and the objects concerned, and the responder announces
// every object it shares with the initiator; Sync is a session with reply
// set and every shared object. A side that meets a
// protocol violation sends ERROR and closes the stream; other failures reset it.
//
// # Wire format (version 1.0.0)
//
// Every message is a frame:
//
//	type   u8
//	length u32 big-endian, of the payload; at most MaxFrameSize (8 MiB);
//	       checked before anything is allocated
//	payload
//
// A payload is read as its bytes arrive (64 KiB chunks, internal/framebuf),
// its memory reserved in the stream's resource manager scope at low
// priority while the frame is handled; a refused reservation resets the
// stream (logged with the peer). So a frame that announces 8 MiB and sends
// less costs what was sent, and the daemon's resource limits (node/host.go:
// 16 inbound sync streams per peer, 48 MiB per peer of which frames may
// take 40 %) bound what one member can make a device hold. Each frame must
// arrive within Config.IOTimeout (30 s) of the previous one, or the session
// ends. A panic in a session (a bug) is recovered, logged at ERROR with the
// peer and the stack, and the stream reset (Stats.Panics).
//
// uv is an unsigned LEB128 varint in its shortest form, str a uv length and
// that many bytes of UTF-8, [16] sixteen bytes. Payloads:
//
//	0x01 ANNOUNCE  flags:u8 (bit 0: reply wanted) n:uv (≤4096)
//	               (object:str epoch:[16] head:uv)*   objects strictly increasing,
//	                                                  epochs non-zero
//	0x02 REQUEST   object:str epoch:[16] seq:uv flags:u8 (bit 0: more frames of
//	               this request follow) n:uv (≤8192) (item:str digest:[16])*
//	               summary items strictly increasing; a summary (and bit 0) only
//	               with the zero cursor; seq 0 when the epoch is zero
//	0x03 CHANGES   syncproto.EncodeChanges of the changes after the cursor, one
//	               frame per ≤4 MiB of items; Head of a frame is its last change's
//	               sequence, of the last frame the log's head
//	0x04 END       empty
//	0x7f ERROR     code:u8 (1 refused, 2 bad request, 3 internal) text:str (≤256)
//
// Unknown types, flags and trailing bytes are errors. Object and item IDs
// are checked with syncproto.ParseObjectID/ParseItemID. A session may
// announce at most 65,536 objects, make as many requests, and a summary may
// list at most 2^21 items. A local change whose content exceeds half of
// MaxItemSize is refused (ErrTooLarge); a replica accepts from peers and
// APIs only items whose encoding fits a frame (MaxReceivedItemSize,
// syncproto.ErrTooLarge). An item in a log that does not fit a frame
// anyway (it grew through merges, or was written by an older version) is
// skipped when serving: logged with object, item, size and peer, counted in
// Stats.ItemsUnsendable, and the peer's cursor passes it, so it never
// blocks the items after it; its next change is sent again.
//
// # Version history
//
//	1.0.0  first version.
//	       Later, same protocol ID: CHANGES carry syncproto format version 2
//	       (items with version signatures). Devices that read only format 1
//	       refuse such frames (bad request): upgrade every device of a mesh.
//	       Format 1 frames from them are still read, their items unsigned.
//
// # Limits
//
//   - The Store keeps a snapshot of the whole replica, written after every
//     local change (Engine.Change batches many into one write) and every
//     applied CHANGES frame (at most 4 MiB of items): fine for lists and
//     notes, costly for folders of very many files, where a store of log
//     entries would need per-entry persistence from syncproto.
//   - A change is listed to peers only once persisted (heads and changes are
//     read under the same lock as the writes), so a crash never makes a
//     device reuse a sequence number a peer already holds.
//   - When a batch from P is applied and every merged item equals the one P
//     sent, P is not pushed to (it holds them); its cursor of this log
//     catches up on the next push, re-reading those items once.
//   - An item refused for clock skew is asked for again at the peer's next
//     announce (a change or a reconnection), not on a timer.
//   - Objects unknown to a device and member lists do not travel here; a
//     device that becomes a mesh member while connected is caught up once
//     the daemon calls Engine.MembershipChanged, and a replica it creates
//     later (Add) is caught up from the connected members at once.
//   - Versions are signed (syncproto "Signed versions"): Config.Signer,
//     by default a KeySigner with the host's identity key, signs every
//     version this device creates; Config.Verifier, by default a
//     PeerVerifier (Ed25519 keys extracted from peer IDs, cached), checks
//     every new version of a received item, wherever it was relayed from.
//     A missing or bad signature refuses the item (counted in
//     Stats.BadSignatures and ItemsRefused, logged at WARN with the peer
//     and the item); an unsigned version (from before signatures) is
//     accepted only from the session's peer when it is the version's
//     author. What a device that may write can still do is write under its
//     own `by` what its role allows.
package exchange
