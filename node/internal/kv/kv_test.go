package kv

import (
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func TestScan(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(txn *badger.Txn) error {
		for _, k := range []string{"a/2", "a/1", "b/1"} {
			if err := txn.Set([]byte(k), []byte("v"+k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := Scan(db, []byte("a/"), func(k, v []byte) error { got = append(got, string(k)+"="+string(v)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "1=va/1" || got[1] != "2=va/2" {
		t.Fatalf("scan a/: %v", got)
	}
	stop := errors.New("stop")
	n := 0
	if err := Scan(db, nil, func([]byte, []byte) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("early stop: %v after %d", err, n)
	}
}
