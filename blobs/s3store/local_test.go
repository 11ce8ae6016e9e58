package s3store

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/store"
)

// TestLocalStoreConformance runs the suite against the on-disk chunk store
// of package blobs/store (which has no Delete: its GC removes chunks).
func TestLocalStoreConformance(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "db")).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	chunkDir := filepath.Join(dir, "chunks")
	st, err := store.Open(db, []byte("blobs/"), chunkDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	testChunkStore(t, st, suiteOpts{
		maxSize:  blobs.MaxChunkSize,
		notFound: store.ErrNotFound,
		corrupt: func(t *testing.T, id blobs.ChunkID) {
			h := hex.EncodeToString(id[:]) // the store's layout: dir/xx/<hex>
			if err := os.WriteFile(filepath.Join(chunkDir, h[:2], h), []byte("garbage"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
	})
}
