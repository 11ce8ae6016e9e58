// Package s3store is a chunk store on an S3-compatible object store: the
// scale-out backend of a storage peer (--store s3://bucket/prefix). It keeps
// one object per chunk, named by the chunk's blobs.ChunkID, and verifies the
// BLAKE3 hash of every chunk on Put (before uploading) and on Get (after
// downloading), so neither a faulty server nor a bit flip at rest is ever
// served as a chunk. On a storage peer the chunks are sealed (package
// blobs/crypt) and the IDs are ciphertext hashes: the object store, like the
// storage peer, sees only ciphertext.
//
// # Object layout
//
//	<prefix>/<c5c6>/<c7c8>/<chunk text form>
//
// where the chunk text form is "chunk" + 52 lower-case base32 characters and
// c5..c8 are its characters 5 to 8 (the first four of the base32 hash), e.g.
//
//	backups/mesh1/uj/ya/chunkujya5k3gl46bqwhhowibv7gxmfawdmeioyd77zym6wfxbnlea7ma
//
// The two fan-out levels keep listings and directory-backed gateways fast.
// Objects under the prefix that do not fit the layout are ignored. The
// object content is the chunk's bytes, nothing else (no metadata is needed).
//
// # Configuration
//
// A store is named by a URL, s3://bucket or s3://bucket/some/prefix, and a
// Config, which ConfigFromEnv fills from the environment:
//
//	MESH_S3_ENDPOINT    server address: https://host[:port], http://host:port
//	                    (plain HTTP: only for a server on loopback or a trusted
//	                    network) or host[:port] (HTTPS)
//	MESH_S3_ACCESS_KEY  access key ID
//	MESH_S3_SECRET_KEY  secret access key
//	MESH_S3_INSECURE    "1"/"true": do not verify the server's TLS certificate
//	                    (self-signed test servers); never needed with http://
//	MESH_S3_REGION      optional, default us-east-1
//
// Buckets are addressed path-style (http://host/bucket/key), which every
// S3-compatible server accepts. The bucket must exist: Open checks it.
//
// # Consistency
//
// Put is idempotent: objects are content-addressed, so two devices putting
// the same chunk write the same bytes. Put skips the upload when the object
// already exists; a corrupted object found by Get is deleted so that the
// next Put repairs it. Delete is for the caller's garbage collection, which
// must know (from its own index) that no retained blob lists the chunk.
package s3store
