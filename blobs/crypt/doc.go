// Package crypt encrypts a folder's content for a storage peer: a mesh
// member that keeps chunks, manifests and item records for the owners'
// devices but never sees plaintext. Devices seal before they upload and open
// after they download; the storage peer stores and verifies ciphertext only.
//
// # Key hierarchy
//
// Each folder has a FolderKey, held only by member devices, never by a
// storage peer. The daemon derives it per folder from the mesh content key
// (32 random bytes drawn with NewFolderKey at 'mesh init' and carried, out of
// band, by invite codes): see node/storage.go for the derivation and why.
// Every other key is derived from it with BLAKE3 in derive-key mode, one
// context per purpose:
//
//	chunkRoot   = BLAKE3-derive("meshwork crypt v1 chunk",    folderKey)
//	manifestKey = BLAKE3-derive("meshwork crypt v1 manifest", folderKey)
//	nameKey     = BLAKE3-derive("meshwork crypt v1 name",     folderKey)
//	nameSIV     = BLAKE3-derive("meshwork crypt v1 name siv", folderKey)
//	recordKey   = BLAKE3-derive("meshwork crypt v1 record",   folderKey)
//	keyID       = BLAKE3-derive("meshwork crypt v1 key id",   folderKey)[:8]
//
// The keyID is public: it names a key in logs and errors (FolderKey.String)
// without revealing it. Rotating a folder key means re-sealing everything.
//
// # Chunks: convergent encryption (format version 1)
//
// For a plaintext chunk P with ChunkID p = BLAKE3(P):
//
//	key || nonce = BLAKE3-keyed(chunkRoot, "chunk" || p), 32+24 bytes of output
//	sealed       = 0x01 || XChaCha20-Poly1305(key, nonce, P, ad = 0x01)
//	ctID         = BLAKE3(sealed)              (an ordinary blobs.ChunkID)
//
// The key depends only on the folder key and the plaintext, so equal chunks
// in one folder seal to equal bytes (the storage peer keeps one copy) and
// the same chunk in two folders seals to unrelated bytes. A key is only ever
// used for one plaintext, so the deterministic nonce is never reused with a
// different message. The sealed chunk is Overhead (17) bytes longer than the
// plaintext, so a full 4 MiB chunk seals to MaxSealedChunkSize bytes, more
// than blobs.MaxChunkSize: a store that keeps sealed chunks must allow that.
// OpenChunk needs p (from the sealed manifest), checks the tag and then
// checks that the plaintext hashes to p.
//
// # Manifests (format version 1)
//
// A Manifest pairs each plaintext chunk (ID, size) with its ciphertext ID. A
// sealed manifest has a public part, readable by the storage peer with
// CipherChunks, and a private part:
//
//	0x01
//	uvarint n, then n × (ctID[32] || sealed size u32 big-endian)   public
//	nonce[24] || XChaCha20-Poly1305(manifestKey, nonce,
//	    blobs.Manifest binary form of the plaintext chunks,
//	    ad = everything before the nonce)                          private
//
// The nonce is random, so sealing the same manifest twice gives different
// bytes; the public part is deterministic, and its BLAKE3 manifest hash
// (CipherManifest().Ref()) is the blob's stable name on a storage peer. The
// public list lets a storage peer retain, garbage-collect and verify a blob's
// sealed chunks without being able to open them. OpenManifest checks that
// each sealed size is the plaintext size plus Overhead.
//
// # Names: deterministic (SIV) encryption (format version 1)
//
// A name (a folder-relative path, sealed whole) is padded and sealed
// deterministically, so a sealed name is a stable, comparable key for an
// item (the storage peer can replace an item's record in place, and devices
// can look it up) without revealing the name:
//
//	padded = uvarint len(name) || name || zero bytes to a multiple of 32
//	nonce  = BLAKE3-keyed(nameSIV, padded)[:24]     (a synthetic IV)
//	sealed = 0x01 || nonce || XChaCha20-Poly1305(nameKey, nonce, padded, ad = 0x01)
//	text   = "n" + lower-case base32 (no padding) of sealed    (SealedName)
//
// OpenName recomputes the synthetic IV from the plaintext and refuses a
// mismatch, so each name has exactly one sealed form. Deterministic on
// purpose: equality of whole paths is what an item key must show. Because
// the whole path is sealed as one string, two files in the same directory
// do not share any visible prefix.
//
// # Records: randomized encryption (format version 1)
//
// Item metadata that changes (versions, sizes, mtimes, modes, blob refs) is
// sealed with SealRecord: 0x01 || random nonce[24] || XChaCha20-Poly1305(
// recordKey, nonce, data, ad = 0x01 || caller's ad). Pass the item's sealed
// name as ad so a record cannot be moved to another item.
//
// # What a storage peer learns
//
//   - Sizes: of every sealed chunk (plaintext size + 17), of every sealed
//     manifest (so the number of chunks in each blob), of every sealed
//     record, and of every sealed name rounded up to 32 bytes of padding.
//   - Counts: how many chunks, blobs, items and record versions a folder has.
//   - Structure: which sealed chunks make up each blob, in order (the public
//     part of a sealed manifest), hence each file's approximate size.
//   - Equality within a folder: two equal plaintext chunks are one sealed
//     chunk, so it sees deduplication, repeated content across files and
//     versions, and two items with the same path are one sealed name.
//     A party that can guess a chunk's whole plaintext and holds the folder
//     key could confirm it; without the key, nobody can (the key derivation
//     is keyed, unlike classic convergent encryption of Douceur et al.).
//   - Access pattern: when devices upload, which chunks and records they
//     fetch and when, from which peers, and how often a record changes.
//
// # What a storage peer never learns
//
//   - Any plaintext byte of a chunk, a manifest's plaintext chunk IDs (so it
//     cannot link its ciphertexts to a plaintext ChunkID or BlobRef seen
//     elsewhere), a name or path, or the content of a record.
//   - Equality of content across folders (different folder keys give
//     unrelated ciphertexts) or of records (randomized).
//   - Any folder key: none is sent to it, and nothing it stores opens without one.
//
// It can still delete or withhold what it stores, or serve an older sealed
// record: integrity here means a device never accepts a forged or altered
// byte (every open checks an AEAD tag, chunks also their plaintext hash), not
// that a storage peer is available or serves the newest version. Freshness
// of records is for the sync protocol (version vectors signed by members).
//
// This package does no I/O; it never returns plaintext that failed a check.
package crypt
