package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/zeebo/blake3"

	"github.com/meshwork/meshwork/blobs"
)

// Partial is a resumable download of one blob straight into a hidden file
// beside its target (".meshwork-<blob>-<target>.partial"), so fetched bytes
// are written once and never copied: Commit renames the file into place.
// The index records the partial file as retaining the blob and as the
// location of every chunk written to it, so Store.Has reports them, GC keeps
// them, and a fetch restarted after a crash or cancellation (after
// OpenPartial again) fetches only the rest.
//
// A Partial is safe for concurrent Put calls.
type Partial struct {
	s      *Store
	m      blobs.Manifest
	ref    blobs.BlobRef
	target string
	path   string
	f      *os.File
	dfOnce sync.Once
	df     *os.File                  // the same file opened for direct writes, or nil
	noDf   atomic.Bool               // a direct write was refused: buffered from then on
	offs   map[blobs.ChunkID][]int64 // every offset of each chunk in the blob

	mu      sync.Mutex
	closed  bool
	written map[blobs.ChunkID]bool // verified and written through this Partial
	expect  *targetState           // ExpectTarget's: what the target must still be
}

// targetState is what a commit's target must still be: absent, or the file
// fi described (same inode, size and modification time).
type targetState struct{ fi fs.FileInfo }

// ExpectTarget makes the commit rename the file over its target only if
// the target is still as fi describes (the same file, size and
// modification time), or still absent when fi is nil; else the commit
// fails with ErrTargetChanged and the target is left as it is. A caller
// that checked the target (a folder comparing it with its index) thus
// never replaces an edit made after its check, short of the instant
// between the last look and the rename.
func (p *Partial) ExpectTarget(fi fs.FileInfo) {
	p.mu.Lock()
	p.expect = &targetState{fi: fi}
	p.mu.Unlock()
}

// checkTarget reports ErrTargetChanged when the target is not what
// ExpectTarget said (nil when it was not called).
func (p *Partial) checkTarget() error {
	p.mu.Lock()
	e := p.expect
	p.mu.Unlock()
	if e == nil {
		return nil
	}
	cur, err := os.Lstat(p.target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if e.fi == nil {
			return nil
		}
		return fmt.Errorf("%s was removed: %w", p.target, ErrTargetChanged)
	case err != nil:
		return fmt.Errorf("stat %s: %w", p.target, err)
	case e.fi == nil:
		return fmt.Errorf("%s appeared (%d bytes): %w", p.target, cur.Size(), ErrTargetChanged)
	case !os.SameFile(cur, e.fi) || cur.Size() != e.fi.Size() || !cur.ModTime().Equal(e.fi.ModTime()):
		return fmt.Errorf("%s changed (%d bytes, was %d): %w", p.target, cur.Size(), e.fi.Size(), ErrTargetChanged)
	}
	return nil
}

// OpenPartial opens (or resumes) the partial file for materialising m at
// target. Close it when done; Commit completes it; Abort deletes it.
func (s *Store) OpenPartial(ctx context.Context, m blobs.Manifest, target string) (*Partial, error) {
	return s.OpenPartialWith(ctx, m, target, nil)
}

// OpenPartialWith is OpenPartial that also runs extra (if not nil) in the
// transaction that records a new partial file, or in one of its own when an
// earlier one is resumed, so that a caller's records of the download (its
// path, its purpose) are written with the store's. extra may run more than
// once (the transaction is retried on conflicts) and must write the same
// each time.
func (s *Store) OpenPartialWith(ctx context.Context, m blobs.Manifest, target string, extra func(txn *badger.Txn, partialPath string) error) (*Partial, error) {
	ref := m.Ref()
	abs, err := filepath.Abs(target)
	if err != nil {
		return nil, fmt.Errorf("open partial %v for %s: %w", ref, target, err)
	}
	if err := m.Verify(ref); err != nil {
		return nil, fmt.Errorf("open partial %v for %s: %w", ref, abs, err)
	}
	th := blake3.Sum256([]byte(filepath.Base(abs)))
	path := filepath.Join(filepath.Dir(abs), fmt.Sprintf("%s%s-%s.partial", tmpPrefix, hex.EncodeToString(ref.Hash[:8]), hex.EncodeToString(th[:4])))
	p := &Partial{s: s, m: m, ref: ref, target: abs, path: path,
		offs: make(map[blobs.ChunkID][]int64, len(m.Chunks)), written: make(map[blobs.ChunkID]bool)}
	var off int64
	for _, c := range m.Chunks {
		p.offs[c.ID] = append(p.offs[c.ID], off)
		off += int64(c.Size)
	}

	rec, known, err := s.fileRecord(path)
	if err != nil {
		return nil, fmt.Errorf("open partial %s: %w", path, err)
	}
	var f *os.File
	var ferr error = fs.ErrNotExist
	if known {
		f, ferr = os.OpenFile(path, os.O_RDWR, 0)
	}
	resume := known && rec.blob == ref && ferr == nil
	if resume {
		if fi, err := f.Stat(); err != nil || fi.Size() != ref.Size {
			resume = false
		}
	}
	if !resume {
		if f != nil {
			f.Close()
		}
		if known {
			if err := s.RemoveFile(ctx, path); err != nil {
				return nil, fmt.Errorf("open partial %s: %w", path, err)
			}
		}
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open partial %s: %w", path, err)
		}
		if err := f.Truncate(ref.Size); err != nil {
			f.Close()
			os.Remove(path)
			return nil, fmt.Errorf("open partial %s: size %d: %w", path, ref.Size, err)
		}
		// mtime 0: the record never passes AddFile's unchanged-file check.
		s.gcMu.RLock()
		err = s.update(ctx, func(txn *badger.Txn) error {
			if err := s.recordFileTxn(txn, path, fileRecord{blob: ref, fileSize: ref.Size}, m, false); err != nil {
				return err
			}
			if extra != nil {
				return extra(txn, path)
			}
			return nil
		})
		s.gcMu.RUnlock()
		if err != nil {
			f.Close()
			os.Remove(path)
			return nil, fmt.Errorf("open partial %s: index: %w", path, err)
		}
	} else if extra != nil {
		if err := s.update(ctx, func(txn *badger.Txn) error { return extra(txn, path) }); err != nil {
			f.Close()
			return nil, fmt.Errorf("open partial %s: index: %w", path, err)
		}
	}
	p.f = f
	return p, nil
}

// direct returns the descriptor for direct writes, opened on first use
// (most small files never need one), or nil.
func (p *Partial) direct() *os.File {
	p.dfOnce.Do(func() { p.df = openDirect(p.path, p.s.noDirect) })
	if p.noDf.Load() {
		return nil
	}
	return p.df
}

// Path returns the partial file's path.
func (p *Partial) Path() string { return p.path }

// Put verifies that data hashes to id, writes it at every offset where the
// blob holds id, and records the location. Unknown chunks are refused.
func (p *Partial) Put(ctx context.Context, id blobs.ChunkID, data []byte) error {
	offs, ok := p.offs[id]
	if !ok {
		return fmt.Errorf("partial %s: chunk %v not in blob %v: %w", p.path, id, p.ref, ErrNotFound)
	}
	if got := blobs.SumChunk(data); got != id {
		return fmt.Errorf("partial %s: chunk %v: data hashes to %v: %w", p.path, id, got, blobs.ErrMismatch)
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return fmt.Errorf("partial %s: %w", p.path, os.ErrClosed)
	}
	for _, off := range offs {
		var df *os.File
		if len(data) >= minDirect {
			df = p.direct()
		}
		refused, err := writeChunkAt(p.f, df, data, off)
		if refused {
			p.noDf.Store(true)
		}
		if err != nil {
			return fmt.Errorf("partial %s: write chunk %v at %d: %w", p.path, id, off, err)
		}
	}
	p.s.gcMu.RLock()
	defer p.s.gcMu.RUnlock()
	if err := p.s.update(ctx, func(txn *badger.Txn) error {
		return txn.Set(p.s.key(kLoc, id[:], []byte(p.path)), locValue(offs[0], uint32(len(data))))
	}); err != nil {
		return fmt.Errorf("partial %s: index chunk %v: %w", p.path, id, err)
	}
	p.mu.Lock()
	p.written[id] = true
	p.mu.Unlock()
	return nil
}

// Commit completes the blob: chunks not yet in the partial file are copied
// from other local locations (verified), every chunk of the file is read
// back and verified, and the file is fsynced and renamed over the target,
// which the index then records as the chunks' location. It returns
// ErrMissing if chunks are neither in the file nor available locally (fetch
// again, then Commit). It closes the Partial on success.
func (p *Partial) Commit(ctx context.Context) error {
	_, err := p.CommitAs(ctx, 0, time.Time{})
	return err
}

// CommitAs is Commit that also gives the file its permission bits (when
// perm is not 0) and modification time (when mtime is not zero) through
// its open descriptor before the fsync, so the file appears under its name
// already complete, and returns the committed file's FileInfo (the rename
// keeps size, mtime and inode). Done on the descriptor, this costs no path
// lookups: for small files those were much of the receiver's CPU.
func (p *Partial) CommitAs(ctx context.Context, perm fs.FileMode, mtime time.Time) (fs.FileInfo, error) {
	return p.CommitWith(ctx, perm, mtime, nil)
}

// CommitWith is CommitAs that also runs extra (if not nil) in the
// transaction that records the committed file, with its FileInfo: a
// caller's record of the file commits with the store's. extra may run more
// than once (retried on conflicts).
func (p *Partial) CommitWith(ctx context.Context, perm fs.FileMode, mtime time.Time, extra func(txn *badger.Txn, fi fs.FileInfo) error) (fs.FileInfo, error) {
	fail := func(err error) (fs.FileInfo, error) {
		return nil, fmt.Errorf("commit %v to %s: %w", p.ref, p.target, err)
	}
	have, lookedUp, err := p.heldChunks()
	if err != nil {
		return fail(err)
	}
	// One buffer of the blob's largest chunk (not MaxChunkSize: a 4 MiB
	// allocation per small file dominated the receiver's CPU when syncing
	// many small files), and only when a chunk is read here at all.
	var buf []byte
	if lookedUp {
		var largest uint32
		for _, c := range p.m.Chunks {
			largest = max(largest, c.Size)
		}
		buf = make([]byte, largest)
	}
	if err := p.fillFromStore(ctx, have, buf); err != nil {
		return fail(err)
	}
	if err := p.verifyUnwritten(ctx, buf); err != nil {
		return fail(err)
	}
	fi, err := p.finishFile(perm, mtime)
	if err != nil {
		return fail(err)
	}
	// The content is durable before the rename, so a crash leaves the old
	// file or the new one, never a mix. The directory is not fsynced per
	// file (that was a second fsync per small file): after a power cut a
	// rename may be lost, leaving the old file and a partial one, which the
	// folder's restart scan removes and the sync fetches again.
	if err := p.checkTarget(); err != nil {
		return fail(err) // the partial file stays, for a later commit
	}
	if err := os.Rename(p.path, p.target); err != nil {
		return fail(fmt.Errorf("rename %s: %w", p.path, err))
	}
	if err := p.indexCommit(ctx, fi, extra); err != nil {
		return fail(fmt.Errorf("index: %w", err))
	}
	return fi, nil
}

// heldChunks reports which chunks the partial file already holds.
//
// Those written through this Partial are known; the others (looked up in
// the index only if there are any, as lookedUp says) are those an earlier
// session wrote.
func (p *Partial) heldChunks() (have map[blobs.ChunkID]bool, lookedUp bool, err error) {
	s := p.s
	p.mu.Lock()
	written := maps.Clone(p.written)
	p.mu.Unlock()
	have = make(map[blobs.ChunkID]bool, len(p.offs))
	var unknown []blobs.ChunkID
	for id := range p.offs {
		if written[id] {
			have[id] = true
		} else {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		if err := s.db.View(func(txn *badger.Txn) error {
			for _, id := range unknown {
				ok, err := exists(txn, s.key(kLoc, id[:], []byte(p.path)))
				if err != nil {
					return err
				}
				have[id] = ok
			}
			return nil
		}); err != nil {
			return nil, false, err
		}
	}
	return have, len(unknown) > 0, nil
}

// fillFromStore copies the chunks not in have from the store into the file.
//
// It fails with ErrMissing if some are not available locally. Every chunk
// is tried, so that one fetch of what is missing can follow: a Get that
// fails drops the chunk's stale locations, and the fetch skips the chunks
// the store still has.
func (p *Partial) fillFromStore(ctx context.Context, have map[blobs.ChunkID]bool, buf []byte) error {
	var missing []blobs.ChunkID
	for id := range p.offs {
		if have[id] {
			continue
		}
		data, err := p.s.Get(ctx, id, buf)
		if errors.Is(err, ErrNotFound) {
			missing = append(missing, id)
			continue
		}
		if err != nil {
			return err
		}
		if err := p.Put(ctx, id, data); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%d chunks (%v first): %w", len(missing), missing[0], ErrMissing)
	}
	return nil
}

// verifyUnwritten reads back and checks the chunks this Partial did not write.
//
// Chunks from an earlier session were not fsynced and may not have
// survived a crash, and the file lives in a user's folder. A chunk that
// fails loses its location here, and the commit fails with ErrMissing.
func (p *Partial) verifyUnwritten(ctx context.Context, buf []byte) error {
	var off int64
	var bad int
	p.mu.Lock()
	written := maps.Clone(p.written)
	p.mu.Unlock()
	for _, c := range p.m.Chunks {
		if written[c.ID] {
			off += int64(c.Size)
			continue
		}
		d := buf[:c.Size]
		if _, err := p.f.ReadAt(d, off); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if blobs.SumChunk(d) != c.ID {
			bad++
			p.s.dropLocation(ctx, location{path: p.path, key: p.s.key(kLoc, c.ID[:], []byte(p.path))}, c.ID)
		}
		off += int64(c.Size)
	}
	if bad > 0 {
		return fmt.Errorf("%d chunks failed verification in %s: %w", bad, p.path, ErrMissing)
	}
	return nil
}

// finishFile sets mode and mtime, fsyncs, stats and closes the file.
func (p *Partial) finishFile(perm fs.FileMode, mtime time.Time) (fs.FileInfo, error) {
	if perm != 0 {
		if err := p.f.Chmod(perm); err != nil {
			return nil, fmt.Errorf("chmod %s: %w", p.path, err)
		}
	}
	if !mtime.IsZero() {
		if err := setMtime(p.f, mtime); err != nil {
			return nil, fmt.Errorf("set mtime of %s: %w", p.path, err)
		}
	}
	if err := p.f.Sync(); err != nil {
		return nil, fmt.Errorf("fsync %s: %w", p.path, err)
	}
	fi, err := p.f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", p.path, err)
	}
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.closeDirect()
	if err := p.f.Close(); err != nil {
		return nil, fmt.Errorf("close %s: %w", p.path, err)
	}
	return fi, nil
}

// indexCommit records the committed target, then removes redundant chunks.
//
// One transaction, under gcMu's read lock, forgets the old target and the
// partial, records the target, drops the store's copies and runs extra.
func (p *Partial) indexCommit(ctx context.Context, fi fs.FileInfo, extra func(txn *badger.Txn, fi fs.FileInfo) error) error {
	s := p.s
	rec := fileRecord{blob: p.ref, fileSize: fi.Size(), mtime: fi.ModTime().UnixNano()}
	var dropped []blobs.ChunkID
	s.gcMu.RLock()
	err := s.update(ctx, func(txn *badger.Txn) error {
		if err := s.forgetFile(txn, p.target); err != nil {
			return err
		}
		// Record the target before forgetting the partial, so the blob
		// stays retained throughout.
		if err := s.recordFileTxn(txn, p.target, rec, p.m, true); err != nil {
			return err
		}
		if err := s.forgetFile(txn, p.path); err != nil {
			return err
		}
		// Chunk-store copies of these chunks are redundant now that the
		// target holds them; dropped in this transaction, not another.
		var err error
		if dropped, err = s.dropStoreCopiesTxn(txn, p.m); err != nil {
			return err
		}
		if extra != nil {
			return extra(txn, fi)
		}
		return nil
	})
	s.gcMu.RUnlock()
	if err != nil {
		return err
	}
	s.removeChunkFiles(dropped)
	return nil
}

// Close closes the partial file, keeping it and its index entries so a
// later OpenPartial resumes. Safe to call after Commit and more than once.
func (p *Partial) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.closeDirect()
	return p.f.Close()
}

// closeDirect closes the direct-write descriptor (a second Close is a
// harmless error; the field is never cleared, so a late Put sees a closed
// file rather than racing on it).
func (p *Partial) closeDirect() {
	p.dfOnce.Do(func() {}) // no direct descriptor is opened after this
	if p.df != nil {
		p.df.Close()
	}
}

// Abort closes and deletes the partial file and forgets it.
func (p *Partial) Abort(ctx context.Context) error {
	p.Close()
	if err := p.s.RemoveFile(ctx, p.path); err != nil {
		return fmt.Errorf("abort partial %s: %w", p.path, err)
	}
	if err := os.Remove(p.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("abort partial %s: %w", p.path, err)
	}
	return nil
}
