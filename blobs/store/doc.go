// Package store is a device's chunk index: which chunks it has, where (at an
// offset inside a synced file, or in the on-disk chunk store), and which
// blobs retain them.
//
// A synced folder's files are the storage for their own chunks: AddFile
// records locations and never copies. A device without a working copy keeps
// chunks in the chunk store (one file per chunk under chunkDir/xx/). Every
// read re-verifies the chunk's hash, so a file edited behind the index's back
// is never served as the old chunk: the stale location is dropped instead.
//
// # Index layout (badger keys under the caller's prefix P)
//
//	P 'm' blob[32]             -> manifest (blobs.Manifest binary form)
//	P 'k' chunk[32] blob[32]   -> chunk size u32; chunk is referenced by a retained blob
//	P 'p' blob[32]             -> ""; blob is pinned (kept without a file)
//	P 'f' path                 -> file record: blob[32] blobSize i64 fileSize i64 mtimeNanos i64
//	P 'r' blob[32] path        -> ""; blob is retained by the file at path
//	P 'l' chunk[32] path       -> offset i64 size u32; chunk lives in the file at path
//	P 'c' chunk[32]            -> size u32; chunk is in the chunk store
//	P 'g' blob[32]             -> ""; guard: written by a transaction that adds a root
//	                              to a blob already known, read by one that may release it
//
// A download in progress is a Partial: a hidden file
// ".meshwork-<blob>-<target>.partial" beside its target, preallocated to the
// blob's size, recorded like a synced file (with mtime 0, so AddFile never
// trusts it) whose chunk locations are added one by one as verified chunks
// are written. It retains its blob, resumes after a restart (OpenPartial
// again), and Commit renames it over the target after verifying it.
//
// Typical use by the daemon:
//
//	st, _ := store.Open(db, []byte("blobs/"), filepath.Join(home, "chunks"), log)
//	res, _ := st.AddFolder(ctx, folder)         // scan: index files in place
//	p, _ := st.OpenPartial(ctx, manifest, target) // receive a file
//	defer p.Close()
//	_ = svc.FetchInto(ctx, manifest, peers, p, progress) // package transfer
//	_ = p.Commit(ctx)
//	st.RemoveFile(ctx, path)                     // a file deleted or unshared
//	st.Pin(ctx, manifest) / st.Unpin(ctx, ref)   // keep a blob without a file
//	st.GC(ctx)                                   // now and then
//
// Reference counting: a blob is retained while it is pinned or at least one
// file record names it (its count of roots is the number of 'p' and 'r' keys);
// a chunk is referenced while at least one retained blob lists it (its count
// is the number of its 'k' keys). The counts are derived from keys rather
// than kept in counters, so a crash between two transactions cannot leave a
// count wrong. GC deletes chunk-store files of unreferenced chunks.
//
// The guard exists because badger's conflict detection sees the keys a
// transaction read, not the ranges it scanned: a release that found no 'r'
// key of a blob and a transaction that added one (the manifest being there,
// it wrote no key the release read) both committed, and the file's blob lost
// its manifest (soak seed 75: a file renamed while another device's version
// replaced the old name was never served again). With the guard the later of
// the two conflicts and runs again.
//
// This package must never serve or write an unverified byte, never copy a
// synced file's chunks into the chunk store, and never touch files it did not
// write other than to read them.
package store
