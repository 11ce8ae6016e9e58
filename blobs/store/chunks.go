package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/meshwork/meshwork/blobs"
)

// location is one place a chunk may be read from.
type location struct {
	path   string // file path, or "" for the chunk store
	offset int64
	size   uint32
	key    []byte // the index key naming this location
}

func (s *Store) locations(id blobs.ChunkID) ([]location, error) {
	var locs []location
	err := s.db.View(func(txn *badger.Txn) error {
		ck := s.key(kChunk, id[:])
		item, err := txn.Get(ck)
		switch {
		case err == nil:
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if len(v) == 4 {
				locs = append(locs, location{size: binary.BigEndian.Uint32(v), key: ck})
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		p := s.key(kLoc, id[:])
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: true, PrefetchSize: 4})
		defer it.Close()
		for it.Seek(p); it.ValidForPrefix(p); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			k := it.Item().KeyCopy(nil)
			if len(v) != 12 {
				continue
			}
			locs = append(locs, location{
				path:   string(k[len(p):]),
				offset: int64(binary.BigEndian.Uint64(v)),
				size:   binary.BigEndian.Uint32(v[8:]),
				key:    k,
			})
		}
		return nil
	})
	return locs, err
}

// Get reads chunk id into buf (grown if too small) from the first location
// that still holds it, verifies its hash and returns the chunk bytes. Stale
// locations met on the way are dropped from the index. It returns an error
// wrapping ErrNotFound when no location holds the chunk.
func (s *Store) Get(ctx context.Context, id blobs.ChunkID, buf []byte) ([]byte, error) {
	locs, err := s.locations(id)
	if err != nil {
		return nil, fmt.Errorf("get chunk %v: %w", id, err)
	}
	for _, l := range locs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if l.size == 0 || l.size > blobs.MaxChunkSize {
			continue
		}
		if cap(buf) < int(l.size) {
			buf = make([]byte, l.size)
		}
		data := buf[:l.size]
		err := s.readAt(l, id, data)
		if err == nil {
			if blobs.SumChunk(data) == id {
				return data, nil
			}
			err = blobs.ErrMismatch
		}
		s.log.Warn("dropping stale chunk location", "chunk", id, "path", l.path, "offset", l.offset, "err", err)
		s.dropLocation(ctx, l, id)
	}
	return nil, fmt.Errorf("get chunk %v: %w", id, ErrNotFound)
}

func (s *Store) readAt(l location, id blobs.ChunkID, data []byte) error {
	path := l.path
	if path == "" {
		path = s.chunkPath(id)
	}
	// No size/mtime check here: the hash decides. A file that changed
	// elsewhere may still hold this chunk at this offset.
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.ReadAt(data, l.offset)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// dropLocation forgets a location that failed verification. For a file it
// also marks the file record dirty so the next AddFile rehashes it.
func (s *Store) dropLocation(ctx context.Context, l location, id blobs.ChunkID) {
	err := s.update(ctx, func(txn *badger.Txn) error {
		if err := txn.Delete(l.key); err != nil {
			return err
		}
		if l.path == "" {
			return nil
		}
		fk := s.key(kFile, []byte(l.path))
		item, err := txn.Get(fk)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil || len(v) != fileRecordLen {
			return err
		}
		binary.BigEndian.PutUint64(v[48:], 0) // mtime 0: never matches
		return txn.Set(fk, v)
	})
	if err != nil {
		s.log.Warn("drop stale chunk location", "chunk", id, "path", l.path, "err", err)
	}
	if l.path == "" {
		_ = os.Remove(s.chunkPath(id))
	}
}

// Put verifies that data hashes to id and stores it in the chunk store unless
// the index already has it there. Chunk files are written to a temporary name
// and renamed; they are not fsynced, because every read re-verifies them and
// a torn chunk is simply fetched again.
func (s *Store) Put(ctx context.Context, id blobs.ChunkID, data []byte) error {
	if len(data) == 0 || len(data) > blobs.MaxChunkSize {
		return fmt.Errorf("put chunk %v: size %d: %w", id, len(data), blobs.ErrMalformed)
	}
	if got := blobs.SumChunk(data); got != id {
		return fmt.Errorf("put chunk %v: data hashes to %v: %w", id, got, blobs.ErrMismatch)
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	ck := s.key(kChunk, id[:])
	var have bool
	if err := s.db.View(func(txn *badger.Txn) error {
		var err error
		have, err = exists(txn, ck)
		return err
	}); err != nil {
		return fmt.Errorf("put chunk %v: %w", id, err)
	}
	if have {
		return nil
	}
	final := s.chunkPath(id)
	if err := s.mkSubdir(filepath.Dir(final), id[0]); err != nil {
		return fmt.Errorf("put chunk %v: %w", id, err)
	}
	f, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("put chunk %v: %w", id, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), final)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("put chunk %v: write %s: %w", id, final, err)
	}
	if err := s.update(ctx, func(txn *badger.Txn) error {
		return txn.Set(ck, be32(uint32(len(data))))
	}); err != nil {
		return fmt.Errorf("put chunk %v: index: %w", id, err)
	}
	return nil
}

func (s *Store) mkSubdir(dir string, b byte) error {
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	if s.made[b] {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	s.made[b] = true
	return nil
}

// Enumerate calls fn for every chunk the index has a location for, in ID
// order, each once, until fn returns an error.
func (s *Store) Enumerate(ctx context.Context, fn func(id blobs.ChunkID, size uint32) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		cp, lp := s.key(kChunk), s.key(kLoc)
		ci := txn.NewIterator(badger.IteratorOptions{Prefix: cp, PrefetchValues: true})
		defer ci.Close()
		li := txn.NewIterator(badger.IteratorOptions{Prefix: lp, PrefetchValues: true})
		defer li.Close()
		ci.Seek(cp)
		li.Seek(lp)
		var last blobs.ChunkID
		first := true
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			cOK, lOK := ci.ValidForPrefix(cp), li.ValidForPrefix(lp)
			if !cOK && !lOK {
				return nil
			}
			var id blobs.ChunkID
			var it *badger.Iterator
			var off int
			switch {
			case cOK && lOK:
				ck, lk := ci.Item().Key()[len(cp):], li.Item().Key()[len(lp):]
				if string(ck[:32]) <= string(lk[:32]) {
					it, off = ci, len(cp)
				} else {
					it, off = li, len(lp)
				}
			case cOK:
				it, off = ci, len(cp)
			default:
				it, off = li, len(lp)
			}
			k := it.Item().Key()
			if len(k) < off+32 {
				it.Next()
				continue
			}
			copy(id[:], k[off:])
			var size uint32
			if err := it.Item().Value(func(v []byte) error {
				if len(v) >= 4 {
					size = binary.BigEndian.Uint32(v[len(v)-4:])
				}
				return nil
			}); err != nil {
				return err
			}
			it.Next()
			if !first && id == last {
				continue
			}
			first, last = false, id
			if err := fn(id, size); err != nil {
				return err
			}
		}
	})
}

// GCStats reports what a GC pass removed.
type GCStats struct {
	Chunks    int   // chunk-store files deleted
	Bytes     int64 // their total size
	Locations int   // file locations of unreferenced chunks forgotten
}

// GC deletes chunk-store files of chunks no retained blob references, forgets
// file locations of such chunks, and removes leftover temporary files.
func (s *Store) GC(ctx context.Context) (GCStats, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	var st GCStats
	var dead [][]byte
	var deadIDs []blobs.ChunkID
	err := s.db.View(func(txn *badger.Txn) error {
		for _, space := range []byte{kChunk, kLoc} {
			p := s.key(space)
			it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: false})
			for it.Seek(p); it.ValidForPrefix(p); it.Next() {
				k := it.Item().Key()
				if len(k) < len(p)+32 {
					continue
				}
				ref, err := hasPrefix(txn, s.key(kRef, k[len(p):len(p)+32]))
				if err != nil {
					it.Close()
					return err
				}
				if ref {
					continue
				}
				dead = append(dead, it.Item().KeyCopy(nil))
				if space == kChunk {
					var id blobs.ChunkID
					copy(id[:], k[len(p):])
					deadIDs = append(deadIDs, id)
				}
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("gc: scan index: %w", err)
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range dead {
		if err := wb.Delete(k); err != nil {
			return st, fmt.Errorf("gc: delete key: %w", err)
		}
		if k[len(s.prefix)] == kLoc {
			st.Locations++
		}
	}
	if err := wb.Flush(); err != nil {
		return st, fmt.Errorf("gc: commit: %w", err)
	}
	for _, id := range deadIDs {
		p := s.chunkPath(id)
		fi, err := os.Stat(p)
		if err == nil {
			st.Bytes += fi.Size()
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("gc: remove chunk file", "path", p, "err", err)
			continue
		}
		st.Chunks++
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return st, fmt.Errorf("gc: read chunk dir %s: %w", s.dir, err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			_ = os.Remove(filepath.Join(s.dir, e.Name()))
		}
	}
	s.log.Debug("gc done", "chunks", st.Chunks, "bytes", st.Bytes, "locations", st.Locations)
	return st, nil
}
