package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestRetainRaceWithRelease: a file indexed with the content of another
// file that is forgotten at the same moment (a rename, then the old name
// overwritten by another device's version: soak seed 75) keeps its blob's
// manifest and chunk locations. Both transactions read only what the other
// does not write unless the store guards the blob — the forgetting one saw
// no other retainer in its snapshot, the adding one saw the manifest
// present — so the manifest was dropped while the new file named it, and
// the content was never served again.
func TestRetainRaceWithRelease(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	dir := t.TempDir()
	for i := range 200 {
		data := randBytes(uint64(1000+i), 219+i)
		old, moved := filepath.Join(dir, fmt.Sprintf("old%d", i)), filepath.Join(dir, fmt.Sprintf("new%d", i))
		writeFile(t, old, data)
		if _, _, err := s.AddFile(ctx, old); err != nil {
			t.Fatal(err)
		}
		writeFile(t, moved, data)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			_, _, errs[0] = s.AddFile(ctx, moved)
		}()
		go func() {
			defer wg.Done()
			<-start
			errs[1] = s.RemoveFile(ctx, old)
		}()
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: add %v, remove %v", i, errs[0], errs[1])
		}
		// As a peer asks for it (not AddFile, which would index it again).
		rec, ok, err := s.fileRecord(moved)
		if err != nil || !ok {
			t.Fatalf("round %d: no record of %s: %v", i, moved, err)
		}
		m, err := s.Manifest(ctx, rec.blob)
		if err != nil {
			t.Fatalf("round %d: %s names blob %v, whose manifest is gone: %v", i, moved, rec.blob, err)
		}
		if _, err := s.Get(ctx, m.Chunks[0].ID, nil); err != nil {
			t.Fatalf("round %d: the chunk of %s is not served: %v", i, moved, err)
		}
		_ = os.Remove(old)
	}
}
