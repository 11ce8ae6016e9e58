package folder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/node/internal/kv"
	"github.com/meshwork/meshwork/syncproto"
)

// Badger keys under the caller's prefix P (all paths are relative to the
// root, slash-separated):
//
//	P 's' path                 -> fileState: what the scanner or Apply last saw or wrote at path
//	P 'i' path                 -> fileState: an Apply in progress (intent), removed when done
//	P 'p' path 0x00 partial    -> "": a store partial file opened for path (absolute name)
//	P 'v' path 0x00 nanos[8]   -> version: a kept version of path, nanos = when it was kept
const (
	kState   = 's'
	kIntent  = 'i'
	kPartial = 'p'
	kVersion = 'v'
)

// Kinds of entries.
const (
	kindFile    = 'f'
	kindDir     = 'd'
	kindSymlink = 'l'
)

// fileState is what the folder knows about one path on disk. Size, MTime
// and Inode are the stat values the record was taken from: a file whose
// stat still matches is not read again.
type fileState struct {
	Kind   byte
	Perm   fs.FileMode // permission bits only
	Size   int64
	MTime  int64 // UnixNano of the file's mtime (0 for directories)
	Inode  uint64
	Blob   blobs.BlobRef
	Target string             // symlink target
	By     syncproto.DeviceID // author of the version on disk ("" when unknown)
	// Seq is the sequence of the topmost history record of the item's
	// version on disk (By's): what a local edit of it started from. 0 when
	// unknown (a record of version 1).
	Seq      uint32
	Conflict bool // a conflict copy written by Apply, not an item
}

// The version of state records: 2 added Seq; records of version 1 are
// still read.
const stateVersion = 2

func (s *fileState) encode() []byte {
	b := make([]byte, 0, 96+len(s.Target)+len(s.By))
	b = append(b, stateVersion, s.Kind)
	var flags byte
	if s.Conflict {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint32(b, uint32(s.Perm))
	b = binary.BigEndian.AppendUint64(b, uint64(s.Size))
	b = binary.BigEndian.AppendUint64(b, uint64(s.MTime))
	b = binary.BigEndian.AppendUint64(b, s.Inode)
	b = append(b, s.Blob.Hash[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(s.Blob.Size))
	b = binary.AppendUvarint(b, uint64(len(s.Target)))
	b = append(b, s.Target...)
	b = binary.AppendUvarint(b, uint64(len(s.By)))
	b = append(b, s.By...)
	b = binary.AppendUvarint(b, uint64(s.Seq))
	return b
}

// base is the topmost record of the item version on disk, for UpdateFrom;
// ok is false when it is unknown.
func (s *fileState) base() (h syncproto.History, ok bool) {
	return syncproto.History{Sequence: s.Seq, By: s.By}, s.Seq != 0 && s.By != ""
}

// setVersion records top as the item version on disk.
func (s *fileState) setVersion(top syncproto.History) {
	s.By, s.Seq = top.By, top.Sequence
}

var errBadState = errors.New("bad state record")

func decodeState(b []byte) (fileState, error) {
	var s fileState
	const fixed = 3 + 4 + 8 + 8 + 8 + 32 + 8
	if len(b) < fixed || (b[0] != 1 && b[0] != stateVersion) {
		return s, errBadState
	}
	v := b[0]
	s.Kind = b[1]
	s.Conflict = b[2]&1 != 0
	b = b[3:]
	s.Perm = fs.FileMode(binary.BigEndian.Uint32(b))
	s.Size = int64(binary.BigEndian.Uint64(b[4:]))
	s.MTime = int64(binary.BigEndian.Uint64(b[12:]))
	s.Inode = binary.BigEndian.Uint64(b[20:])
	copy(s.Blob.Hash[:], b[28:60])
	s.Blob.Size = int64(binary.BigEndian.Uint64(b[60:]))
	b = b[68:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return "", false
		}
		v := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return v, true
	}
	t, ok1 := str()
	by, ok2 := str()
	if !ok1 || !ok2 {
		return s, errBadState
	}
	if v >= 2 {
		seq, k := binary.Uvarint(b)
		if k <= 0 || seq > math.MaxUint32 {
			return s, errBadState
		}
		s.Seq, b = uint32(seq), b[k:]
	}
	if len(b) != 0 {
		return s, errBadState
	}
	s.Target, s.By = t, syncproto.DeviceID(by)
	return s, nil
}

// version is one kept version of a path (see History).
type keptVersion struct {
	By    syncproto.DeviceID // author of the kept content
	MTime int64              // the kept file's mtime, UnixNano
	Size  int64
	Blob  blobs.BlobRef
	Name  string // file name under .meshwork/versions/<path>/
}

// The version of kept-version records.
const keptVersionVersion = 1

func (v *keptVersion) encode() []byte {
	b := []byte{keptVersionVersion}
	b = binary.BigEndian.AppendUint64(b, uint64(v.MTime))
	b = binary.BigEndian.AppendUint64(b, uint64(v.Size))
	b = append(b, v.Blob.Hash[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(v.Blob.Size))
	b = binary.AppendUvarint(b, uint64(len(v.By)))
	b = append(b, v.By...)
	return append(b, v.Name...)
}

func decodeVersion(b []byte) (keptVersion, error) {
	var v keptVersion
	if len(b) < 1+8+8+32+8+1 || b[0] != keptVersionVersion {
		return v, errBadState
	}
	v.MTime = int64(binary.BigEndian.Uint64(b[1:]))
	v.Size = int64(binary.BigEndian.Uint64(b[9:]))
	copy(v.Blob.Hash[:], b[17:49])
	v.Blob.Size = int64(binary.BigEndian.Uint64(b[49:]))
	b = b[57:]
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return v, errBadState
	}
	v.By = syncproto.DeviceID(b[k : k+int(n)])
	v.Name = string(b[k+int(n):])
	return v, nil
}

func (f *Folder) key(kind byte, parts ...[]byte) []byte {
	n := len(f.prefix) + 1
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	k = append(k, f.prefix...)
	k = append(k, kind)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func nanosKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano()))
}

// loadStates reads every state record into memory.
func (f *Folder) loadStates() (map[string]*fileState, error) {
	m := make(map[string]*fileState)
	pfx := f.key(kState)
	err := f.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: true, PrefetchSize: 1000})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			rel := string(item.Key()[len(pfx):])
			if err := item.Value(func(v []byte) error {
				s, err := decodeState(v)
				if err != nil {
					return fmt.Errorf("state of %q: %w", rel, err)
				}
				m[rel] = &s
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	return m, err
}

// setState records s for rel in memory and in the database; a nil s forgets
// rel. Callers hold f.mu.
func (f *Folder) setState(rel string, s *fileState) error {
	return f.setStates(map[string]*fileState{rel: s})
}

// setStates records several states in as few transactions as badger allows.
// Callers hold f.mu.
func (f *Folder) setStates(m map[string]*fileState) error {
	wb := f.db.NewWriteBatch()
	defer wb.Cancel()
	for rel, s := range m {
		k := f.key(kState, []byte(rel))
		if s == nil {
			delete(f.states, rel)
			if err := wb.Delete(k); err != nil {
				return fmt.Errorf("forget state of %q: %w", rel, err)
			}
			continue
		}
		c := *s
		f.states[rel] = &c
		if err := wb.Set(k, s.encode()); err != nil {
			return fmt.Errorf("record state of %q: %w", rel, err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("record folder state: %w", err)
	}
	return nil
}

func (f *Folder) getRecord(k []byte) ([]byte, bool, error) {
	var v []byte
	err := f.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(k)
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	return v, err == nil, err
}

func (f *Folder) setRecord(k, v []byte) error {
	return f.db.Update(func(txn *badger.Txn) error { return txn.Set(k, v) })
}

func (f *Folder) deleteRecord(k []byte) error {
	return f.db.Update(func(txn *badger.Txn) error { return txn.Delete(k) })
}

// scanKeys calls fn for every key (without the given prefix) and value under
// prefix.
func (f *Folder) scanKeys(prefix []byte, fn func(k, v []byte) error) error {
	return kv.Scan(f.db, prefix, fn)
}
