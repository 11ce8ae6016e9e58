// Package blobs names file content: it cuts bytes into content-defined
// chunks, names each chunk by its BLAKE3 hash (ChunkID) and names a blob (the
// content of one file) by the hash of its ordered chunk list (BlobRef). A
// Manifest is that chunk list; it verifies against its BlobRef.
//
// Sub-packages: store keeps the index of which chunks this device has and
// where (in synced files or in an on-disk chunk store); transfer moves chunks
// between mesh members over the /meshwork/blobs/1.0.0 protocol.
//
// # Chunking (version 1, permanent)
//
// Chunk boundaries are chosen by FastCDC (Xia et al., USENIX ATC 2016) with a
// gear rolling hash, normalised chunking (level 2) and cut-point skipping:
//
//	MinChunkSize = 256 KiB   no boundary is considered before this many bytes
//	AvgChunkSize =   1 MiB   the normalisation point (strict mask before, loose after)
//	MaxChunkSize =   4 MiB   a boundary is forced here
//
// Why these sizes: 1 MiB chunks keep the per-chunk overhead (an index entry of
// ~80 bytes, a request of ~80 bytes on the wire, one hash finalisation) below
// 0.01% and make a 1 TiB folder about a million index entries, while an edit
// still re-sends only about a megabyte. The 256 KiB minimum lets the chunker
// skip a quarter of the bytes (speed) and bounds the number of chunks for
// pathological data; the 4 MiB maximum bounds memory per chunk in flight and
// the size of a protocol frame. A file smaller than MinChunkSize is exactly
// one chunk; an empty file has no chunks.
//
// The gear table is the first 2048 bytes of the BLAKE3 derive-key output for
// the context "meshwork blobs v1 fastcdc gear table", read as 256
// little-endian uint64s. The cut test looks at bits 41..62 of the rolling hash
// (so each boundary depends on the last ~48 bytes, not the last ~20), 22 bits
// before AvgChunkSize and 18 bits after. Changing any of this changes every
// BlobRef: it is frozen as chunking version 1.
//
// # Names (permanent text forms)
//
//	ChunkID  "chunk" + lower-case base32 (no padding) of BLAKE3-256(chunk bytes)
//	BlobRef  "blob" + base32 of the manifest hash + "-" + decimal total size
//
// The manifest hash is BLAKE3 in derive-key mode with context
// "meshwork blobs v1 manifest" over, for each chunk in order, its 32-byte ID
// followed by its size as a big-endian uint32. Being a different BLAKE3 mode,
// a manifest hash can never collide with a chunk hash.
//
// This package must never do I/O beyond the io.Reader it is handed, and never
// trust a Manifest it has not verified against the BlobRef it claims to be.
package blobs
