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
// # What it must never do
//
// It must never hold or ask for a key that opens what it stores, never store
// a chunk that does not hash to its name, never serve anything to a
// non-member (the daemon registers the handler for members only), never let
// one device overwrite another device's object record, and never exceed its
// quota with chunk bytes.
package vault
