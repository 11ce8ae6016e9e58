package kv

import "github.com/dgraph-io/badger/v4"

// Scan calls fn for every key under prefix (with the prefix cut off) and
// its value, in key order, in one read transaction. The slices are copies;
// an error from fn stops the scan and is returned.
func Scan(db *badger.DB, prefix []byte, fn func(key, val []byte) error) error {
	return db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if err := fn(it.Item().KeyCopy(nil)[len(prefix):], v); err != nil {
				return err
			}
		}
		return nil
	})
}
