package exchange

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/hlc"
)

func hlcTimestamp() hlc.Timestamp {
	return hlc.FromTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

// testStore is the conformance suite every Store runs.
func testStore(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	t.Run("empty", func(t *testing.T) {
		s := open(t)
		ids, err := s.List(ctx)
		if err != nil || len(ids) != 0 {
			t.Fatalf("list: %v, %v", ids, err)
		}
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrUnknownObject) {
			t.Fatalf("get absent: %v", err)
		}
		if err := s.Delete(ctx, "nope"); err != nil {
			t.Fatalf("delete absent: %v", err)
		}
	})
	t.Run("put get list delete", func(t *testing.T) {
		s := open(t)
		data := []byte("snapshot-1")
		if err := s.Put(ctx, "b", data); err != nil {
			t.Fatal(err)
		}
		data[0] = 'X' // the store keeps its own copy
		if err := s.Put(ctx, "a", []byte("snapshot-a")); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "b")
		if err != nil || string(got) != "snapshot-1" {
			t.Fatalf("get: %q, %v", got, err)
		}
		got[0] = 'Y'
		if again, _ := s.Get(ctx, "b"); string(again) != "snapshot-1" {
			t.Fatalf("get returned the store's buffer: %q", again)
		}
		if err := s.Put(ctx, "b", []byte("snapshot-2")); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Get(ctx, "b"); string(got) != "snapshot-2" {
			t.Fatalf("replaced: %q", got)
		}
		ids, err := s.List(ctx)
		slices.Sort(ids)
		if err != nil || !slices.Equal(ids, []syncproto.ObjectID{"a", "b"}) {
			t.Fatalf("list: %v, %v", ids, err)
		}
		if err := s.Delete(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrUnknownObject) {
			t.Fatalf("get deleted: %v", err)
		}
		if ids, _ := s.List(ctx); !slices.Equal(ids, []syncproto.ObjectID{"b"}) {
			t.Fatalf("list after delete: %v", ids)
		}
	})
	t.Run("epoch", func(t *testing.T) {
		s, ok := open(t).(EpochStore)
		if !ok {
			t.Skip("not an EpochStore")
		}
		e1, err := s.Epoch(ctx)
		if err != nil || e1.IsZero() {
			t.Fatalf("epoch: %v, %v", e1, err)
		}
		if e2, _ := s.Epoch(ctx); e2 != e1 {
			t.Fatalf("epoch changed: %v, %v", e1, e2)
		}
		if e3, _ := open(t).(EpochStore).Epoch(ctx); e3 == e1 {
			t.Fatal("two databases, one epoch")
		}
	})
}

func TestMemStore(t *testing.T) {
	testStore(t, func(t *testing.T) Store { return NewMemStore() })
}

func TestBadgerStore(t *testing.T) {
	testStore(t, func(t *testing.T) Store {
		db, err := badger.Open(badger.DefaultOptions(filepath.Join(t.TempDir(), "db")).WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		// Another user of the database, and another prefix, are not seen.
		if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("other/o/x"), []byte("y")) }); err != nil {
			t.Fatal(err)
		}
		if err := NewBadgerStore(db, "sync2/").Put(context.Background(), "z", []byte("z")); err != nil {
			t.Fatal(err)
		}
		return NewBadgerStore(db, "sync/")
	})
}

// The epoch of a badger store survives reopening the database.
func TestBadgerStoreEpochPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	ctx := context.Background()
	var first syncproto.Epoch
	for i := range 2 {
		db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		s := NewBadgerStore(db, "sync/")
		e, err := s.Epoch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = e
			if err := s.Put(ctx, "o", []byte("data")); err != nil {
				t.Fatal(err)
			}
		} else if e != first {
			t.Fatalf("epoch %v after reopening, was %v", e, first)
		} else if got, _ := s.Get(ctx, "o"); !bytes.Equal(got, []byte("data")) {
			t.Fatalf("object after reopening: %q", got)
		}
		db.Close()
	}
}
