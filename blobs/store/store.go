package store

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/meshwork/meshwork/blobs"
)

// Sentinel errors.
var (
	ErrNotFound = errors.New("chunk not found")
	ErrMissing  = errors.New("chunks missing locally")
	ErrChanged  = errors.New("file changed while hashing")
	ErrNoBlob   = errors.New("blob not known")
	ErrClosed   = errors.New("store closed")
	// ErrTargetChanged: a commit found its target changed since
	// Partial.ExpectTarget (a local edit) and renamed nothing over it.
	ErrTargetChanged = errors.New("target changed since it was checked")
)

// Key spaces; see the package documentation.
const (
	kManifest = 'm'
	kRef      = 'k'
	kPin      = 'p'
	kFile     = 'f'
	kRetain   = 'r'
	kLoc      = 'l'
	kChunk    = 'c'
	kGuard    = 'g'
)

// Store is the chunk index plus the on-disk chunk store. It is safe for
// concurrent use.
type Store struct {
	db     *badger.DB
	prefix []byte
	dir    string
	log    *slog.Logger

	// gcMu is held for writing by GC and for reading by everything that
	// adds references or chunks, so GC never deletes a chunk being pinned.
	gcMu sync.RWMutex

	dirMu sync.Mutex
	made  map[byte]bool // chunk store subdirectories known to exist

	noDirect bool // Partials write through the page cache only
}

// SetDirectWrites turns direct (O_DIRECT) writes of received chunks on
// (the default where the filesystem allows them) or off, for Partials
// opened afterwards. See directio.go.
func (s *Store) SetDirectWrites(on bool) { s.noDirect = !on }

// Open returns a Store keeping its index in db under prefix and its chunk
// store in chunkDir (created if missing). db stays owned by the caller; Close
// does not close it. A nil logger discards logs.
func Open(db *badger.DB, prefix []byte, chunkDir string, logger *slog.Logger) (*Store, error) {
	if db == nil {
		return nil, errors.New("open blob store: nil badger db")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(chunkDir, 0o700); err != nil {
		return nil, fmt.Errorf("open blob store: create chunk dir %s: %w", chunkDir, err)
	}
	abs, err := filepath.Abs(chunkDir)
	if err != nil {
		return nil, fmt.Errorf("open blob store: chunk dir %s: %w", chunkDir, err)
	}
	return &Store{
		db:     db,
		prefix: append([]byte(nil), prefix...),
		dir:    abs,
		log:    logger,
		made:   make(map[byte]bool),
	}, nil
}

// DB returns the database the index is kept in.
func (s *Store) DB() *badger.DB { return s.db }

// Close releases the store. It does not close the badger DB. Safe to call
// more than once.
func (s *Store) Close() error { return nil }

func (s *Store) key(space byte, parts ...[]byte) []byte {
	n := len(s.prefix) + 1
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	k = append(k, s.prefix...)
	k = append(k, space)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

// update runs fn in a read-write transaction, retrying on conflicts until
// ctx is done. The first attempt runs even if ctx is done, so that a chunk
// already written is indexed.
func (s *Store) update(ctx context.Context, fn func(*badger.Txn) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil && attempt > 0 {
			return err
		}
		err := s.db.Update(fn)
		if errors.Is(err, badger.ErrConflict) && attempt < 100 {
			continue
		}
		return err
	}
}

func exists(txn *badger.Txn, k []byte) (bool, error) {
	_, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func hasPrefix(txn *badger.Txn, p []byte) (bool, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: false})
	defer it.Close()
	it.Seek(p)
	return it.ValidForPrefix(p), nil
}

func (s *Store) chunkPath(id blobs.ChunkID) string {
	h := hex.EncodeToString(id[:])
	return filepath.Join(s.dir, h[:2], h)
}

// Has reports whether the index knows a location of id. The location is
// verified only when read.
func (s *Store) Has(ctx context.Context, id blobs.ChunkID) (bool, error) {
	var ok bool
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		if ok, err = exists(txn, s.key(kChunk, id[:])); ok || err != nil {
			return err
		}
		ok, err = hasPrefix(txn, s.key(kLoc, id[:]))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("has chunk %v: %w", id, err)
	}
	return ok, nil
}

// HasInBlob reports whether blob is retained here and lists chunk id.
func (s *Store) HasInBlob(ctx context.Context, blob blobs.BlobRef, id blobs.ChunkID) (bool, error) {
	var ok bool
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		ok, err = exists(txn, s.key(kRef, id[:], blob.Hash[:]))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("chunk %v in blob %v: %w", id, blob, err)
	}
	return ok, nil
}

// Missing returns the distinct chunks of m that the index has no location for,
// in manifest order.
func (s *Store) Missing(ctx context.Context, m blobs.Manifest) ([]blobs.ChunkRef, error) {
	var out []blobs.ChunkRef
	seen := make(map[blobs.ChunkID]bool, len(m.Chunks))
	for _, c := range m.Chunks {
		if seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		ok, err := s.Has(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// Holders returns the paths of the files that retain ref: indexed files
// and open partials (not pins). The daemon decides from them who may read
// the blob.
func (s *Store) Holders(ctx context.Context, ref blobs.BlobRef) ([]string, error) {
	var out []string
	p := s.key(kRetain, ref.Hash[:])
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: false})
		defer it.Close()
		for it.Seek(p); it.ValidForPrefix(p); it.Next() {
			out = append(out, string(it.Item().Key()[len(p):]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("holders of %v: %w", ref, err)
	}
	return out, nil
}

// Manifest returns the stored manifest of a retained blob, and the empty
// blob's (no chunks) always.
func (s *Store) Manifest(ctx context.Context, ref blobs.BlobRef) (blobs.Manifest, error) {
	var m blobs.Manifest
	if ref == blobs.EmptyRef {
		return m, nil // known everywhere, whether or not a file here is empty
	}
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(s.key(kManifest, ref.Hash[:]))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNoBlob
		}
		if err != nil {
			return err
		}
		return item.Value(m.UnmarshalBinary)
	})
	if err != nil {
		return blobs.Manifest{}, fmt.Errorf("manifest of %v: %w", ref, err)
	}
	return m, nil
}

// Pin retains the blob of m (verified against its own ref) until Unpin, so
// its chunks survive GC without a file. Pinning twice is the same as once.
func (s *Store) Pin(ctx context.Context, m blobs.Manifest) (blobs.BlobRef, error) {
	ref := m.Ref()
	if err := m.Verify(ref); err != nil {
		return ref, fmt.Errorf("pin: %w", err)
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	err := s.update(ctx, func(txn *badger.Txn) error {
		if err := s.addBlob(txn, ref, m); err != nil {
			return err
		}
		return txn.Set(s.key(kPin, ref.Hash[:]), nil)
	})
	if err != nil {
		return ref, fmt.Errorf("pin %v: %w", ref, err)
	}
	return ref, nil
}

// Unpin drops the pin on ref; its chunks become collectable when no file
// retains it either.
func (s *Store) Unpin(ctx context.Context, ref blobs.BlobRef) error {
	err := s.update(ctx, func(txn *badger.Txn) error {
		if err := txn.Delete(s.key(kPin, ref.Hash[:])); err != nil {
			return err
		}
		return s.releaseIfUnretained(txn, ref)
	})
	if err != nil {
		return fmt.Errorf("unpin %v: %w", ref, err)
	}
	return nil
}

// addBlob records manifest and chunk references of ref unless present. The
// caller adds a root (a pin or a retaining file) in the same transaction.
func (s *Store) addBlob(txn *badger.Txn, ref blobs.BlobRef, m blobs.Manifest) error {
	mk := s.key(kManifest, ref.Hash[:])
	if ok, err := exists(txn, mk); ok || err != nil {
		if ok {
			// Present: the new root must conflict with a release running
			// at the same time (see the guard in the package doc).
			return txn.Set(s.key(kGuard, ref.Hash[:]), nil)
		}
		return err
	}
	enc, _ := m.MarshalBinary()
	if err := txn.Set(mk, enc); err != nil {
		return err
	}
	for _, c := range m.Chunks {
		if err := txn.Set(s.key(kRef, c.ID[:], ref.Hash[:]), be32(c.Size)); err != nil {
			return err
		}
	}
	return nil
}

// releaseIfUnretained drops ref's manifest and chunk references when no pin
// and no file retains it.
func (s *Store) releaseIfUnretained(txn *badger.Txn, ref blobs.BlobRef) error {
	gk := s.key(kGuard, ref.Hash[:])
	if _, err := exists(txn, gk); err != nil { // read, so that a root added meanwhile conflicts
		return err
	}
	if ok, err := exists(txn, s.key(kPin, ref.Hash[:])); ok || err != nil {
		return err
	}
	if ok, err := hasPrefix(txn, s.key(kRetain, ref.Hash[:])); ok || err != nil {
		return err
	}
	mk := s.key(kManifest, ref.Hash[:])
	item, err := txn.Get(mk)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var m blobs.Manifest
	if err := item.Value(m.UnmarshalBinary); err != nil {
		return fmt.Errorf("stored manifest of %v: %w", ref, err)
	}
	for _, c := range m.Chunks {
		if err := txn.Delete(s.key(kRef, c.ID[:], ref.Hash[:])); err != nil {
			return err
		}
	}
	if err := txn.Delete(gk); err != nil {
		return err
	}
	return txn.Delete(mk)
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
