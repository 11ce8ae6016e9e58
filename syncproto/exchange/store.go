package exchange

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/meshwork/meshwork/syncproto"
)

// Store keeps the replicas' snapshots (syncproto.Object.MarshalBinary):
// items, change log, member list and the cursors of the peers' logs, so
// that a restarted engine resumes where it stopped. Implementations must be
// safe for concurrent use; a Put must be durable when it returns.
type Store interface {
	// List returns the IDs of the stored objects.
	List(ctx context.Context) ([]syncproto.ObjectID, error)
	// Get returns an object's snapshot, or an error wrapping
	// ErrUnknownObject.
	Get(ctx context.Context, id syncproto.ObjectID) ([]byte, error)
	// Put replaces an object's snapshot.
	Put(ctx context.Context, id syncproto.ObjectID, snapshot []byte) error
	// Delete removes an object; deleting an absent object is not an error.
	Delete(ctx context.Context, id syncproto.ObjectID) error
}

// EpochStore is a Store that also keeps the epoch of its database, created
// with it: a new (lost and recreated) database has a new epoch. The engine
// gives it to the objects it creates (Engine.ObjectConfig) when
// Config.Epoch is zero.
type EpochStore interface {
	Store
	Epoch(ctx context.Context) (syncproto.Epoch, error)
}

// MemStore is a Store in memory, for tests and ephemeral devices.
type MemStore struct {
	mu      sync.Mutex
	epoch   syncproto.Epoch
	objects map[syncproto.ObjectID][]byte
}

// NewMemStore returns an empty MemStore with a new random epoch.
func NewMemStore() *MemStore {
	return &MemStore{objects: make(map[syncproto.ObjectID][]byte)}
}

// Epoch returns the store's epoch, created on first use.
func (s *MemStore) Epoch(ctx context.Context) (syncproto.Epoch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch.IsZero() {
		e, err := syncproto.NewEpoch(nil)
		if err != nil {
			return syncproto.Epoch{}, fmt.Errorf("memory store: %w", err)
		}
		s.epoch = e
	}
	return s.epoch, nil
}

// List implements Store.
func (s *MemStore) List(ctx context.Context) ([]syncproto.ObjectID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]syncproto.ObjectID, 0, len(s.objects))
	for id := range s.objects {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// Get implements Store.
func (s *MemStore) Get(ctx context.Context, id syncproto.ObjectID) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.objects[id]
	if !ok {
		return nil, fmt.Errorf("memory store: get %q: %w", id, ErrUnknownObject)
	}
	return bytes.Clone(b), nil
}

// Put implements Store.
func (s *MemStore) Put(ctx context.Context, id syncproto.ObjectID, snapshot []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[id] = bytes.Clone(snapshot)
	return nil
}

// Delete implements Store.
func (s *MemStore) Delete(ctx context.Context, id syncproto.ObjectID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objects, id)
	return nil
}

// BadgerStore is a Store in an open badger database, under a key prefix
// so that the database can be shared with other users. Keys:
//
//	prefix "epoch"        the database's epoch (16 bytes)
//	prefix "o/" objectID  an object's snapshot
//
// The caller owns the database and closes it after the engine.
type BadgerStore struct {
	db     *badger.DB
	prefix string
}

// NewBadgerStore returns a store in db under prefix (for example "sync/").
func NewBadgerStore(db *badger.DB, prefix string) *BadgerStore {
	return &BadgerStore{db: db, prefix: prefix}
}

func (s *BadgerStore) objectKey(id syncproto.ObjectID) []byte {
	return []byte(s.prefix + "o/" + string(id))
}

// Epoch returns the database's epoch, created and stored on first use.
func (s *BadgerStore) Epoch(ctx context.Context) (syncproto.Epoch, error) {
	key := []byte(s.prefix + "epoch")
	var e syncproto.Epoch
	err := s.db.Update(func(txn *badger.Txn) error {
		it, err := txn.Get(key)
		if err == nil {
			return it.Value(func(v []byte) error {
				if len(v) != len(e) {
					return fmt.Errorf("stored epoch of %d bytes: %w", len(v), syncproto.ErrMalformed)
				}
				copy(e[:], v)
				return nil
			})
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if e, err = syncproto.NewEpoch(nil); err != nil {
			return err
		}
		return txn.Set(key, e[:])
	})
	if err != nil {
		return syncproto.Epoch{}, fmt.Errorf("badger store %q: epoch: %w", s.prefix, err)
	}
	return e, nil
}

// List implements Store.
func (s *BadgerStore) List(ctx context.Context) ([]syncproto.ObjectID, error) {
	prefix := []byte(s.prefix + "o/")
	var ids []syncproto.ObjectID
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			ids = append(ids, syncproto.ObjectID(it.Item().Key()[len(prefix):]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("badger store %q: list: %w", s.prefix, err)
	}
	return ids, nil
}

// Get implements Store.
func (s *BadgerStore) Get(ctx context.Context, id syncproto.ObjectID) ([]byte, error) {
	var out []byte
	err := s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(s.objectKey(id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrUnknownObject
		}
		if err != nil {
			return err
		}
		out, err = it.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("badger store %q: get %q: %w", s.prefix, id, err)
	}
	return out, nil
}

// Put implements Store. Badger syncs its write-ahead log according to the
// database's options (SyncWrites).
func (s *BadgerStore) Put(ctx context.Context, id syncproto.ObjectID, snapshot []byte) error {
	err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(s.objectKey(id), bytes.Clone(snapshot))
	})
	if err != nil {
		return fmt.Errorf("badger store %q: put %q: %w", s.prefix, id, err)
	}
	return nil
}

// Delete implements Store.
func (s *BadgerStore) Delete(ctx context.Context, id syncproto.ObjectID) error {
	err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Delete(s.objectKey(id))
	})
	if err != nil {
		return fmt.Errorf("badger store %q: delete %q: %w", s.prefix, id, err)
	}
	return nil
}
