package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/meshwork/meshwork/blobs"
)

const fileRecordLen = 56

type fileRecord struct {
	blob     blobs.BlobRef
	fileSize int64
	mtime    int64 // UnixNano; 0 marks a record that must be rehashed
}

func (r fileRecord) encode() []byte {
	b := make([]byte, fileRecordLen)
	copy(b, r.blob.Hash[:])
	binary.BigEndian.PutUint64(b[32:], uint64(r.blob.Size))
	binary.BigEndian.PutUint64(b[40:], uint64(r.fileSize))
	binary.BigEndian.PutUint64(b[48:], uint64(r.mtime))
	return b
}

func decodeFileRecord(b []byte) (fileRecord, bool) {
	if len(b) != fileRecordLen {
		return fileRecord{}, false
	}
	var r fileRecord
	copy(r.blob.Hash[:], b)
	r.blob.Size = int64(binary.BigEndian.Uint64(b[32:]))
	r.fileSize = int64(binary.BigEndian.Uint64(b[40:]))
	r.mtime = int64(binary.BigEndian.Uint64(b[48:]))
	return r, true
}

func (s *Store) fileRecord(path string) (fileRecord, bool, error) {
	var rec fileRecord
	var ok bool
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(s.key(kFile, []byte(path)))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			rec, ok = decodeFileRecord(v)
			return nil
		})
	})
	return rec, ok, err
}

// AddFile indexes the regular file at path in place: it chunks and hashes it
// and records where each chunk lives, without copying. When the recorded size
// and modification time still match, the stored manifest is returned without
// reading the file.
func (s *Store) AddFile(ctx context.Context, path string) (blobs.Manifest, blobs.BlobRef, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return blobs.Manifest{}, blobs.BlobRef{}, fmt.Errorf("add file %s: %w", path, err)
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return blobs.Manifest{}, blobs.BlobRef{}, fmt.Errorf("add file %s: %w", abs, err)
	}
	if !fi.Mode().IsRegular() {
		return blobs.Manifest{}, blobs.BlobRef{}, fmt.Errorf("add file %s: not a regular file (%v)", abs, fi.Mode().Type())
	}
	if rec, ok, err := s.fileRecord(abs); err == nil && ok && rec.mtime != 0 &&
		rec.fileSize == fi.Size() && rec.mtime == fi.ModTime().UnixNano() {
		if m, err := s.Manifest(ctx, rec.blob); err == nil {
			return m, rec.blob, nil
		}
	}
	f, err := os.Open(abs)
	if err != nil {
		return blobs.Manifest{}, blobs.BlobRef{}, fmt.Errorf("add file %s: %w", abs, err)
	}
	defer f.Close()
	m, ref, err := blobs.Split(f, func(int64, blobs.ChunkRef, []byte) error { return ctx.Err() })
	if err != nil {
		return blobs.Manifest{}, blobs.BlobRef{}, fmt.Errorf("add file %s: %w", abs, err)
	}
	fi2, err := f.Stat()
	if err != nil {
		return blobs.Manifest{}, blobs.BlobRef{}, fmt.Errorf("add file %s: %w", abs, err)
	}
	if fi2.Size() != fi.Size() || !fi2.ModTime().Equal(fi.ModTime()) || ref.Size != fi.Size() {
		return blobs.Manifest{}, blobs.BlobRef{}, fmt.Errorf("add file %s: %w", abs, ErrChanged)
	}
	rec := fileRecord{blob: ref, fileSize: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if err := s.recordFile(ctx, abs, rec, m); err != nil {
		return blobs.Manifest{}, blobs.BlobRef{}, fmt.Errorf("add file %s: %w", abs, err)
	}
	return m, ref, nil
}

// recordFile replaces the index entry of the file at abs.
func (s *Store) recordFile(ctx context.Context, abs string, rec fileRecord, m blobs.Manifest) error {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	return s.update(ctx, func(txn *badger.Txn) error {
		if err := s.forgetFile(txn, abs); err != nil {
			return err
		}
		return s.recordFileTxn(txn, abs, rec, m, true)
	})
}

// recordFileTxn writes the record of the file at abs (which must have been
// forgotten first) and, if locs, the locations of all of m's chunks in it.
func (s *Store) recordFileTxn(txn *badger.Txn, abs string, rec fileRecord, m blobs.Manifest, locs bool) error {
	if err := s.addBlob(txn, rec.blob, m); err != nil {
		return err
	}
	p := []byte(abs)
	if err := txn.Set(s.key(kFile, p), rec.encode()); err != nil {
		return err
	}
	if err := txn.Set(s.key(kRetain, rec.blob.Hash[:], p), nil); err != nil {
		return err
	}
	if !locs {
		return nil
	}
	var off int64
	seen := make(map[blobs.ChunkID]bool, len(m.Chunks))
	for _, c := range m.Chunks {
		if !seen[c.ID] {
			seen[c.ID] = true
			if err := txn.Set(s.key(kLoc, c.ID[:], p), locValue(off, c.Size)); err != nil {
				return err
			}
		}
		off += int64(c.Size)
	}
	return nil
}

func locValue(off int64, size uint32) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 12), uint64(off))
	return binary.BigEndian.AppendUint32(v, size)
}

// forgetFile removes the record and chunk locations of the file at abs and
// releases its blob if nothing else retains it.
func (s *Store) forgetFile(txn *badger.Txn, abs string) error {
	p := []byte(abs)
	fk := s.key(kFile, p)
	item, err := txn.Get(fk)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return err
	}
	if rec, ok := decodeFileRecord(v); ok {
		mi, err := txn.Get(s.key(kManifest, rec.blob.Hash[:]))
		if err == nil {
			var m blobs.Manifest
			if err := mi.Value(m.UnmarshalBinary); err != nil {
				return err
			}
			for _, c := range m.Chunks {
				if err := txn.Delete(s.key(kLoc, c.ID[:], p)); err != nil {
					return err
				}
			}
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if err := txn.Delete(s.key(kRetain, rec.blob.Hash[:], p)); err != nil {
			return err
		}
		if err := s.releaseIfUnretained(txn, rec.blob); err != nil {
			return err
		}
	}
	return txn.Delete(fk)
}

// RemoveFile forgets the file at path (deleted, or no longer synced). Its
// blob stays retained only if pinned or named by another file.
func (s *Store) RemoveFile(ctx context.Context, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("remove file %s: %w", path, err)
	}
	if err := s.update(ctx, func(txn *badger.Txn) error { return s.forgetFile(txn, abs) }); err != nil {
		return fmt.Errorf("remove file %s: %w", abs, err)
	}
	return nil
}

// RemoveFilesUnder forgets every file indexed under the directory dir (a
// folder no longer synced here), as RemoveFile does, and returns how many
// it forgot. The files themselves are left alone.
func (s *Store) RemoveFilesUnder(ctx context.Context, dir string) (int, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return 0, fmt.Errorf("remove files under %s: %w", dir, err)
	}
	pfx := s.key(kFile, []byte(strings.TrimSuffix(abs, string(filepath.Separator))+string(filepath.Separator)))
	skip := len(s.key(kFile)) // the path follows
	var paths []string
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			paths = append(paths, string(it.Item().Key()[skip:]))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("remove files under %s: %w", abs, err)
	}
	// A few hundred per transaction: badger bounds a transaction's size.
	for start := 0; start < len(paths); start += 256 {
		batch := paths[start:min(start+256, len(paths))]
		if err := s.update(ctx, func(txn *badger.Txn) error {
			for _, p := range batch {
				if err := s.forgetFile(txn, p); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return start, fmt.Errorf("remove files under %s: %w", abs, err)
		}
	}
	return len(paths), nil
}

// AddResult is the outcome of indexing one file of a folder.
type AddResult struct {
	Path     string // absolute
	Ref      blobs.BlobRef
	Manifest blobs.Manifest
	Err      error
}

// AddFolder indexes every regular file under root with AddFile, hashing
// files in parallel on GOMAXPROCS workers. Symbolic links and the store's own
// temporary files (".meshwork-*") are skipped. Results are sorted by path; a
// file that fails has Err set. The returned error is for the walk itself or
// a cancelled ctx.
func (s *Store) AddFolder(ctx context.Context, root string) ([]AddResult, error) {
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), tmpPrefix) {
			abs, err := filepath.Abs(p)
			if err != nil {
				return err
			}
			paths = append(paths, abs)
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("add folder %s: %w", root, err)
	}
	sort.Strings(paths)
	res := make([]AddResult, len(paths))
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				m, ref, err := s.AddFile(ctx, paths[i])
				res[i] = AddResult{Path: paths[i], Ref: ref, Manifest: m, Err: err}
			}
		})
	}
feed:
	for i := range paths {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("add folder %s: %w", root, err)
	}
	return res, nil
}

const tmpPrefix = ".meshwork-"

// Materialize writes the blob of m to target atomically: every chunk is read
// from a local location (a synced file or the chunk store) and verified,
// written to a temporary file in target's directory, which is fsynced and
// renamed over target. It fails with ErrMissing, before writing anything,
// when a chunk is not available locally (fetch it first, see package
// transfer). Afterwards target is indexed as the location of its chunks and
// their chunk-store copies are deleted: the file is now their storage.
// progress, if not nil, is called after each chunk.
func (s *Store) Materialize(ctx context.Context, m blobs.Manifest, target string, progress func(blobs.Progress)) (err error) {
	ref := m.Ref()
	abs, err := filepath.Abs(target)
	if err != nil {
		return fmt.Errorf("materialize %v at %s: %w", ref, target, err)
	}
	if err := m.Verify(ref); err != nil {
		return fmt.Errorf("materialize %v at %s: %w", ref, abs, err)
	}
	missing, err := s.Missing(ctx, m)
	if err != nil {
		return fmt.Errorf("materialize %v at %s: %w", ref, abs, err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("materialize %v at %s: %d chunks: %w", ref, abs, len(missing), ErrMissing)
	}
	dir := filepath.Dir(abs)
	f, err := os.CreateTemp(dir, tmpPrefix+"*.tmp")
	if err != nil {
		return fmt.Errorf("materialize %v at %s: %w", ref, abs, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	buf := make([]byte, blobs.MaxChunkSize)
	pr := blobs.Progress{Blob: ref, TotalBytes: ref.Size, TotalChunks: len(m.Chunks)}
	for i, c := range m.Chunks {
		data, err := s.Get(ctx, c.ID, buf)
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("materialize %v at %s: chunk %d (%v) vanished: %w", ref, abs, i, c.ID, ErrMissing)
		}
		if err != nil {
			return fmt.Errorf("materialize %v at %s: %w", ref, abs, err)
		}
		if len(data) != int(c.Size) {
			return fmt.Errorf("materialize %v at %s: chunk %v has %d bytes, manifest says %d: %w", ref, abs, c.ID, len(data), c.Size, blobs.ErrMismatch)
		}
		if _, err := f.Write(data); err != nil {
			return fmt.Errorf("materialize %v at %s: write %s: %w", ref, abs, f.Name(), err)
		}
		if progress != nil {
			pr.DoneBytes += int64(c.Size)
			pr.DoneChunks = i + 1
			progress(pr)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("materialize %v at %s: fsync: %w", ref, abs, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("materialize %v at %s: close: %w", ref, abs, err)
	}
	if err := os.Rename(f.Name(), abs); err != nil {
		return fmt.Errorf("materialize %v at %s: rename: %w", ref, abs, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("materialize %v at %s: %w", ref, abs, err)
	}
	rec := fileRecord{blob: ref, fileSize: fi.Size(), mtime: fi.ModTime().UnixNano()}
	var dropped []blobs.ChunkID
	s.gcMu.RLock()
	err = s.update(ctx, func(txn *badger.Txn) error {
		if err := s.forgetFile(txn, abs); err != nil {
			return err
		}
		if err := s.recordFileTxn(txn, abs, rec, m, true); err != nil {
			return err
		}
		dropped, err = s.dropStoreCopiesTxn(txn, m)
		return err
	})
	s.gcMu.RUnlock()
	if err != nil {
		return fmt.Errorf("materialize %v at %s: index: %w", ref, abs, err)
	}
	s.removeChunkFiles(dropped)
	return nil
}

// dropStoreCopiesTxn deletes, in txn, the chunk-store index entries of m's
// chunks, whose file locations txn has just recorded (no chunk is kept twice
// on disk), and returns the chunks whose store files the caller removes
// (removeChunkFiles) once txn has committed.
func (s *Store) dropStoreCopiesTxn(txn *badger.Txn, m blobs.Manifest) ([]blobs.ChunkID, error) {
	var dropped []blobs.ChunkID
	for _, c := range m.Chunks {
		ck := s.key(kChunk, c.ID[:])
		ok, err := exists(txn, ck)
		if err != nil {
			return nil, err
		}
		if !ok || slices.Contains(dropped, c.ID) {
			continue
		}
		if err := txn.Delete(ck); err != nil {
			return nil, err
		}
		dropped = append(dropped, c.ID)
	}
	return dropped, nil
}

// removeChunkFiles removes the chunk-store files of chunks whose index
// entries a committed transaction dropped.
func (s *Store) removeChunkFiles(ids []blobs.ChunkID) {
	for _, id := range ids {
		_ = os.Remove(s.chunkPath(id))
	}
}
