package vault

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/crypt"
)

// MaxChunk is the largest sealed chunk the vault stores or moves.
const MaxChunk = crypt.MaxSealedChunkSize

// ErrNotFound: the vault does not hold the chunk or record.
var ErrNotFound = errors.New("not held by the storage peer")

// Backend stores sealed chunks by ciphertext ID. *s3store.Store is one.
type Backend interface {
	Has(ctx context.Context, id blobs.ChunkID) (bool, error)
	// Get returns the chunk, verified against id; a missing or corrupted
	// chunk is an error (wrapping ErrNotFound for DirBackend) after which Has
	// reports false. blobs/s3store's conformance suite runs against both.
	Get(ctx context.Context, id blobs.ChunkID, buf []byte) ([]byte, error)
	// Put verifies that data hashes to id, then stores it.
	Put(ctx context.Context, id blobs.ChunkID, data []byte) error
	Delete(ctx context.Context, id blobs.ChunkID) error
	Enumerate(ctx context.Context, fn func(id blobs.ChunkID, size uint32) error) error
	Close() error
}

// DirBackend keeps one file per sealed chunk under a directory:
// DIR/<2 chars>/<chunk text form>, written atomically (temp file, fsync,
// rename).
type DirBackend struct{ dir string }

// OpenDir opens (creating) a chunk directory.
func OpenDir(dir string) (*DirBackend, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open vault chunk directory %q: %w", dir, err)
	}
	return &DirBackend{dir: dir}, nil
}

func (d *DirBackend) path(id blobs.ChunkID) string {
	s := id.String()
	return filepath.Join(d.dir, s[5:7], s)
}

// Has reports whether the chunk file exists.
func (d *DirBackend) Has(_ context.Context, id blobs.ChunkID) (bool, error) {
	_, err := os.Stat(d.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Get reads and verifies a chunk.
func (d *DirBackend) Get(_ context.Context, id blobs.ChunkID, buf []byte) ([]byte, error) {
	b, err := os.ReadFile(d.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("get sealed chunk %v: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get sealed chunk %v: %w", id, err)
	}
	if got := blobs.SumChunk(b); got != id {
		_ = os.Remove(d.path(id)) // corrupt at rest: forgotten, the next Put repairs it
		return nil, fmt.Errorf("get sealed chunk %v: file hashes to %v (%w): %w", id, got, blobs.ErrMismatch, ErrNotFound)
	}
	return append(buf[:0], b...), nil
}

// Put verifies and writes a chunk (a no-op when it is already there).
func (d *DirBackend) Put(_ context.Context, id blobs.ChunkID, data []byte) error {
	if len(data) == 0 || len(data) > MaxChunk {
		return fmt.Errorf("put sealed chunk %v: size %d (limit %d): %w", id, len(data), MaxChunk, blobs.ErrMalformed)
	}
	if got := blobs.SumChunk(data); got != id {
		return fmt.Errorf("put sealed chunk %v: data hashes to %v: %w", id, got, blobs.ErrMismatch)
	}
	p := d.path(id)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("put sealed chunk %v: %w", id, err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("put sealed chunk %v: %w", id, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("put sealed chunk %v: %w", id, err)
	}
	return nil
}

// Delete removes a chunk; a missing one is not an error.
func (d *DirBackend) Delete(_ context.Context, id blobs.ChunkID) error {
	if err := os.Remove(d.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete sealed chunk %v: %w", id, err)
	}
	return nil
}

// Enumerate calls fn for every chunk file.
func (d *DirBackend) Enumerate(ctx context.Context, fn func(id blobs.ChunkID, size uint32) error) error {
	return filepath.WalkDir(d.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return ctx.Err()
		}
		id, perr := blobs.ParseChunkID(e.Name())
		if perr != nil {
			return nil // temp files, strangers
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		return fn(id, uint32(fi.Size()))
	})
}

// Close does nothing.
func (d *DirBackend) Close() error { return nil }
