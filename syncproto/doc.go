// Package syncproto is Meshwork's sync data model: mesh objects as feeds of
// items carrying FeedSync 1.0 sync metadata, the merge that makes replicas
// converge, and the per-object change logs that the delta exchange
// (/meshwork/sync/1.0.0, in another package) reads and feeds.
//
// # Model
//
// An Object is one device's replica of a mesh object: an ID, an
// ObjectType (folder, list, note, news, …), members with a Role (owner,
// editor, reader) on top of mesh membership, and items. An Item is Content
// (title, Body — Bytes, Text or FileEntry — and blob Enclosures) plus Sync:
// the FeedSync sx:sync element (id, updates, deleted, noconflicts, history
// newest first, conflicts).
//
// FeedSync itself is in merge.go as pure functions: History.SubsumedBy,
// Item.SubsumedBy, CompareWinner, Merge, UpdateItem, FoldConflicts and
// BaseVersion. The
// `by` of a history record is a DeviceID (a libp2p peer ID in text form)
// compared by ordinal (byte-wise) collation; the `when` is an hlc.Timestamp
// from the device's hybrid logical clock, which bounds how far in the future
// a peer's `when` may be (see package hlc).
//
// Local changes go through Object.Update, Object.Delete and Object.Resolve,
// and Object.UpdateFrom for an edit made to an earlier version of an item
// (a file edited while its device was offline): when the item has moved on
// since that version (BaseVersion), the edit is merged beside the newer
// updates as a conflict instead of superseding updates it never saw; items
// from peers through Object.Apply, which refuses versions authored by
// devices that may not write (readers, non-members) and `when` values beyond
// the clock's bound.
//
// # Judging versions
//
// Apply judges every version it receives that the replica does not hold
// yet (item and conflicts apart) before anything counts, and refuses the
// whole item when one fails:
//
//   - its author (topmost `by`) must be allowed to write (ErrReadOnly);
//   - its update count may exceed the highest count of the replica's
//     versions of the item (zero for an item it does not hold) by at most
//     MaxUpdateStep, 2^24 (ErrUpdateStep): every local update adds one, so
//     an honest device never jumps further, while a hostile one cannot push
//     an item to the top of the count in one version;
//   - the object's Validator (Config.Validate), when set, must accept it
//     (ErrRefused): rules on what a version means, such as who may rewrite
//     a catalog entry; it judges local edits too;
//   - the whole item's encoding must fit Config.MaxItemSize (ErrTooLarge).
//
// A refused version is not merged, so it is never logged and never
// relayed. Local edits never stop: at the top of the count (math.MaxUint32,
// which only hostile versions can approach, MaxUpdateStep at a time) an
// update keeps the count and replaces its device's own record there;
// versions that subsume each other are told apart by their `when`, and the
// newest is kept (see UpdateItem).
//
// # Delta exchange
//
// Every change to a replica — local or merged — is appended to the device's
// change log of the object with the next sequence number; the log keeps the
// latest change of each item only. A log has a random Epoch, created with
// the device's database. The exchange between devices A and B for object O
// is meant to run:
//
//	A: c := objA.Cursor(B)                     // zero the first time
//	A → B: want O since c
//	B: batch, err := objB.ChangesSince(c)      // ErrEpochMismatch: B's log is new
//	B → A: EncodeChanges(batch)                //   (A retries with a zero Cursor)
//	A: batch, err := DecodeChanges(msg)
//	A: objA.ApplyChanges(B, batch)             // merges, advances A's cursor of B
//
// and the same in the other direction. A zero Cursor lists every item: the
// full reconciliation, which is always safe since the merge is idempotent.
// Because a device's log contains the merges it made, changes travel
// through intermediate devices.
//
// # Encoding
//
// Items, change batches and replica snapshots have a versioned, canonical
// binary encoding (EncodeItem, EncodeChanges, Object.MarshalBinary and their
// decoders); its layout and version history are in codec.go. Decoders
// validate what they decode and accept only what the encoders write.
//
// # Signed versions
//
// Every version a device creates (Update, UpdateFrom, Delete, Resolve:
// each pushes a history record with the device's `by`) is signed by the
// device's key through Config.Signer (SignVersion), and the signature
// travels with the version: Sync.Signature of the item, and of each
// conflict for its own version. Merge moves versions whole, so a relayed
// version keeps its author's signature. A version written by an outside
// FeedSync endpoint through a device's API has `by` "DEVICE/NAME" and is
// signed by DEVICE (Object.SignOwn): an endpoint has no key of its own.
//
// The signed bytes (VersionMessage) identify the version:
//
//	"meshwork/version/v1\x00"                 domain separation and layout version
//	object:str item:str updates:uv flags:u8   flags bit 0 deleted, bit 1 noconflicts
//	top:history                               the topmost record (sequence, when, by)
//	history-hash:[32]                         SHA-256 of nhist:uv history* (every record)
//	content-hash:[32]                         SHA-256 of the content encoding
//
// with uv, str, history and content as in codec.go. The content hash
// covers title, body and enclosures; for a folder item the FileEntry's
// blob ref names the file's data, so the data is covered too. Meshwork
// signs with Ed25519 (64-byte signatures; MaxSignatureLen bounds the
// field); the signer of `by` "D" or "D/NAME" is device D (AuthorDevice),
// whose public key a Verifier finds from D (in Meshwork D is an Ed25519
// libp2p peer ID, which embeds the key).
//
// Verification rule (Object.ApplyFrom, with a Config.Verifier): each
// version an incoming item brings that the replica does not hold (not
// subsumed by a held version) — the item's own and each conflict's — must
// verify (VerifyVersion), after the role check of its author; otherwise the
// whole item is refused with ErrBadSignature: not merged, not logged, so
// never relayed. Versions the replica already holds are kept as held: an
// incoming copy with the same `by` and sequence but other bytes never
// replaces them.
//
// Compatibility: versions written before signatures (format version 1
// snapshots, older devices) are unsigned. An unsigned version is accepted
// only from its author: when the device it is received from (ApplyFrom's
// from: the exchange's sending peer, the storage peer record's uploader) is
// the version's AuthorDevice. Apply (no sender, e.g. a feed POST) accepts
// no unsigned new version. So in a mesh upgraded from unsigned versions, an
// old version relayed by a third device is refused until a new, signed
// version supersedes it (an edit of the item; a conflict by a third device
// needs a Resolve). Re-signing or migrating stored unsigned versions is
// not done: a device can only sign its own.
//
// # Limits
//
// Tombstones are never purged. Roles are checked when an item is applied,
// against the replica's current members, except that Config.FormerWriter
// can vouch for a device's versions up to the time it lost the right to
// write (the daemon does so for revoked devices): a device demoted to
// reader has its not-yet-received earlier changes refused too. How member lists travel
// between devices is not part of this package (SetRole is local).
//
// # What it must never do
//
// It does no I/O, starts no goroutines, reads no wall clock (the clock is
// passed in) and holds no globals. It does not import node/ or identity/:
// it depends on the standard library only.
package syncproto
