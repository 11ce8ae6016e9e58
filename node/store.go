package node

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Keys in the node's badger database.
var (
	keyMembership = []byte("node/membership") // identity.Log encoding
	prefixAddrs   = []byte("node/addrs/")     // + peer ID bytes: encoded address list
)

// badgerLogger routes badger's log to slog. Its errors go to the store's
// health (logged once at ERROR there, and shown in the status); the
// repeats of a retry loop are debug lines.
type badgerLogger struct {
	l *slog.Logger
	h *storeHealth
}

func (b badgerLogger) Errorf(f string, a ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(f, a...))
	b.l.Debug(msg)
	b.h.badgerError(msg)
}
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Infof(string, ...any)        {}
func (b badgerLogger) Debugf(string, ...any)       {}

func openDB(dir string, log *slog.Logger, h *storeHealth) (*badger.DB, error) {
	opts := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{log.With("component", "badger"), h}).
		WithNumVersionsToKeep(1).
		// Memory bounded for a daemon on a laptop, whatever the size of the
		// library: a memtable is an arena allocated whole (8 MiB here, about
		// 10 MiB of heap with badger's batch slack; 83 MiB at badger's default
		// of 64; 16 MiB added about 25 MiB to the receiver's peak RSS while
		// it synced 20,000 small files), and at most 3 live at once
		// (5 by default) while flushes catch up. No block cache: tables are
		// uncompressed and unencrypted, so their blocks are read from the
		// mapped files (badger's advice); the default cache grows to 256 MiB
		// as a big index is read. Table indexes live in a 16 MiB cache
		// instead of all in memory (which grows with the database).
		WithMemTableSize(8 << 20).
		WithNumMemtables(3).
		WithBlockCacheSize(0).
		WithIndexCacheSize(16 << 20).
		WithValueLogFileSize(64 << 20).
		// Uncompressed tables: the index is small, and compressing each
		// memtable flush cost the receiver of 10,000 small files about a
		// tenth of its CPU.
		WithCompression(options.None)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open database %q: %w (is another meshd using this home?)", dir, err)
	}
	return db, nil
}

func dbGet(db *badger.DB, key []byte) ([]byte, error) {
	var out []byte
	err := db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(key)
		if err != nil {
			return err
		}
		out, err = it.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	return out, err
}

func dbPut(db *badger.DB, key, val []byte) error {
	return db.Update(func(txn *badger.Txn) error { return txn.Set(key, val) })
}

func dbDelete(db *badger.DB, key []byte) error {
	return db.Update(func(txn *badger.Txn) error { return txn.Delete(key) })
}
