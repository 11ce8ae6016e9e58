// Package vault is the storage peer's side of Meshwork: an always-on member
// that keeps sealed (encrypted) copies of the mesh's objects and chunks for
// devices that are never online together, and serves them back. It
// implements the protocol /meshwork/vault/1.0.0 (Server), the devices'
// client for it (Client), and the stores for sealed chunks: a directory
// (DirBackend) or an S3-compatible object store (blobs/s3store).
//
// The vault stores two kinds of things, both opaque to it:
//
//   - Records: small named byte strings, sealed by devices (package
//     blobs/crypt). Names are "obj/<object ID>/<device ID>" (one sealed
//     snapshot of a mesh object's items per writing device; only that device
//     may write it) and "man/<64 hex>" (a sealed manifest, named by a keyed
//     hash of the plaintext blob reference that only key holders can compute).
//     Records are metadata: never counted in the quota, and object records
//     are always kept.
//   - Sealed chunks, named by the BLAKE3 hash of their ciphertext, verified on
//     every Put and Get. Their total size is bounded by the quota: a Put that
//     would exceed it is refused with StatusQuota, and the devices choose what
//     to upload (newest files first, see node/storage.go).
//
// A sealed chunk can be up to crypt.MaxSealedChunkSize bytes, 17 more than
// blobs.MaxChunkSize: this package has its own limit (MaxChunk) on purpose
// and does not go through blobs/store or blobs/transfer, whose limits are for
// plaintext chunks.
//
// # Wire format (version 1.0.0)
//
// One request per stream; the asker writes one frame (node/internal/wire:
// uvarint length, type byte, payload) and closes its side, the vault answers
// with one frame whose type is a status (StatusOK, StatusNotFound,
// StatusQuota, StatusRefused, StatusBad, StatusInternal; non-OK payloads are
// a UTF-8 reason):
//
//	OpPutRecord  uvarint len, name; value           → OK
//	OpGetRecord  name                               → OK value | NOT FOUND
//	OpList       name prefix                        → OK JSON [RecordInfo]
//	OpHave       n × chunk ID[32] (n ≤ MaxHave)     → OK n bytes, 1 = held
//	OpPutChunk   chunk ID[32]; sealed chunk         → OK | QUOTA
//	OpGetChunk   chunk ID[32]                       → OK sealed chunk | NOT FOUND
//	OpUsage      (empty)                            → OK JSON Usage
//	OpDelete     manifest record name               → OK bytes freed u64
//
// A manifest record must be a sealed manifest (crypt.CipherChunks reads its
// public part) whose sealed chunks are all held, else it is refused
// (NOT FOUND names the missing chunk: upload it, then the record). The vault
// keeps, per sealed chunk, which manifest records list it; OpDelete removes
// a manifest record and deletes the chunks no remaining manifest lists. That
// is how devices make room for newer files (node/storage.go). Object records
// cannot be deleted.
//
// Who may delete: the vault notes, per manifest record, its uploader (the
// device whose stream put it). OpDelete is served only for that device or a
// current owner or admin of the mesh (Server.SetAdmin; the daemon answers
// from its membership log), else REFUSED naming the uploader. Folder roles
// are not used: folder definitions reach the vault only sealed, and
// manifest names do not say which folder they belong to, so the closest rule
// the vault can judge is "uploader or mesh admin". A manifest stored before
// uploaders were noted has none: only an admin may delete it. A put of a
// manifest name another device uploaded is answered OK and changes nothing
// (the name, a keyed hash of the blob reference, says the content is the
// same), so a member can neither replace nor take over another's manifest;
// the uploader itself may replace its record. The quota is enforced by the
// vault itself (a chunk that does not fit is refused); making room is left
// to the devices, each with what it may delete.
//
// OpList answers every record under the prefix to any member, with its
// uploader for manifests (RecordInfo.Uploader, omitted when not known; an
// addition that older clients ignore). A member with folder role "none" can
// thus list manifest names and sizes of folders it cannot read: the names
// are keyed hashes it cannot link to a file without the folder's key, and
// every member holds the mesh content key anyway (see node/storage.go), so
// the listing tells it nothing the sealed records would not.
//
// # Bounds
//
// A request frame is bounded by the largest request (MaxRecord + MaxName +
// 16) before it is read (node/internal/wire.ReadFrame); each field is then
// checked against its own limit (MaxName, MaxRecord, MaxHave, MaxChunk).
// The client bounds each answer by what its request can legitimately get
// back (a record, a chunk, or 64 KiB). Reasons are clipped to 1 KiB. The
// stream handler recovers a panic, logs it at ERROR with the peer, protocol
// and stack, and resets the stream.
//
// # Store format
//
// In the daemon's badger under a prefix P: P 'r' name → record value
// (unchanged since 1.0.0); P 'k' chunk ID[32] manifest name → "" (the
// manifest lists the chunk); P 'u' manifest name → uploader record, version
// 1: 0x01 followed by the uploader's peer ID text form (added with
// uploaders; absent for manifests stored before, which still decode).
//
// # What it must never do
//
// It must never hold or ask for a key that opens what it stores, never store
// a chunk that does not hash to its name, never serve anything to a
// non-member (the daemon registers the handler for members only), never let
// one device overwrite another device's object record, and never exceed its
// quota with chunk bytes.
package vault
