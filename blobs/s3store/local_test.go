package s3store

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/store"
	"github.com/meshwork/meshwork/node/vault"
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

// TestVaultDirConformance runs the suite against the storage peer's local
// backend for sealed chunks (node/vault), which takes chunks up to
// crypt.MaxSealedChunkSize, as this package's Store does by default.
func TestVaultDirConformance(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	be, err := vault.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	testChunkStore(t, be, suiteOpts{
		maxSize:  vault.MaxChunk,
		notFound: vault.ErrNotFound,
		corrupt: func(t *testing.T, id blobs.ChunkID) {
			s := id.String() // the layout: dir/<chars 5-6>/<chunk text form>
			if err := os.WriteFile(filepath.Join(dir, s[5:7], s), []byte("garbage"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
	})
}
