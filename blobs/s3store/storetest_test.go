package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/meshwork/meshwork/blobs"
)

// chunkStore is what a chunk store backend offers: the interface the
// conformance suite below checks, Perkeep storagetest style. Delete is an
// optional ability (deleter).
type chunkStore interface {
	Get(ctx context.Context, id blobs.ChunkID, buf []byte) ([]byte, error)
	Put(ctx context.Context, id blobs.ChunkID, data []byte) error
	Has(ctx context.Context, id blobs.ChunkID) (bool, error)
	Enumerate(ctx context.Context, fn func(id blobs.ChunkID, size uint32) error) error
}

type deleter interface {
	Delete(ctx context.Context, id blobs.ChunkID) error
}

type suiteOpts struct {
	maxSize  int                                  // largest chunk the store accepts
	notFound error                                // the store's not-found sentinel
	corrupt  func(t *testing.T, id blobs.ChunkID) // overwrite the stored bytes of id behind the store's back
}

func chunkOf(seed uint64, n int) ([]byte, blobs.ChunkID) {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 7}).Read(b)
	return b, blobs.SumChunk(b)
}

// testChunkStore runs the conformance suite against an empty store.
func testChunkStore(t *testing.T, st chunkStore, o suiteOpts) {
	ctx := t.Context()
	enum := func() map[blobs.ChunkID]uint32 {
		t.Helper()
		got := map[blobs.ChunkID]uint32{}
		err := st.Enumerate(ctx, func(id blobs.ChunkID, size uint32) error {
			if _, dup := got[id]; dup {
				t.Errorf("enumerate: %v twice", id)
			}
			got[id] = size
			return nil
		})
		if err != nil {
			t.Fatalf("enumerate: %v", err)
		}
		return got
	}
	if n := len(enum()); n != 0 {
		t.Fatalf("new store enumerates %d chunks", n)
	}

	_, missing := chunkOf(999, 10)
	if ok, err := st.Has(ctx, missing); ok || err != nil {
		t.Fatalf("Has(missing) = %v, %v", ok, err)
	}
	if _, err := st.Get(ctx, missing, nil); !errors.Is(err, o.notFound) {
		t.Fatalf("Get(missing): %v, want %v", err, o.notFound)
	}

	sizes := []int{1, 1000, 256 << 10, o.maxSize}
	want := map[blobs.ChunkID]uint32{}
	var ids []blobs.ChunkID
	data := map[blobs.ChunkID][]byte{}
	for i, n := range sizes {
		b, id := chunkOf(uint64(i), n)
		if err := st.Put(ctx, id, b); err != nil {
			t.Fatalf("Put(%d bytes): %v", n, err)
		}
		if err := st.Put(ctx, id, b); err != nil {
			t.Fatalf("Put(%d bytes) again: %v", n, err)
		}
		want[id], data[id] = uint32(n), b
		ids = append(ids, id)
	}
	buf := make([]byte, 0, 16)
	for _, id := range ids {
		if ok, err := st.Has(ctx, id); !ok || err != nil {
			t.Fatalf("Has(%v) = %v, %v", id, ok, err)
		}
		got, err := st.Get(ctx, id, buf)
		if err != nil || !bytes.Equal(got, data[id]) {
			t.Fatalf("Get(%v): %d bytes, %v", id, len(got), err)
		}
		buf = got[:0] // reuse the grown buffer
	}
	if got := enum(); !mapsEqual(got, want) {
		t.Fatalf("enumerate: %d chunks, want %d", len(got), len(want))
	}
	stop := errors.New("stop")
	calls := 0
	if err := st.Enumerate(ctx, func(blobs.ChunkID, uint32) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("enumerate with early stop: %v after %d calls", err, calls)
	}

	// Refusals: wrong hash, empty, too big.
	b, id := chunkOf(50, 100)
	b[0] ^= 1
	if err := st.Put(ctx, id, b); !errors.Is(err, blobs.ErrMismatch) {
		t.Fatalf("Put with wrong hash: %v", err)
	}
	if ok, _ := st.Has(ctx, id); ok {
		t.Fatal("a refused chunk was stored")
	}
	if err := st.Put(ctx, blobs.SumChunk(nil), nil); err == nil {
		t.Fatal("empty chunk accepted")
	}
	big, bigID := chunkOf(51, o.maxSize+1)
	if err := st.Put(ctx, bigID, big); !errors.Is(err, blobs.ErrMalformed) {
		t.Fatalf("Put of %d bytes: %v", len(big), err)
	}

	// A corrupted chunk is never served, is forgotten, and a Put repairs it.
	if o.corrupt != nil {
		id := ids[1]
		o.corrupt(t, id)
		if got, err := st.Get(ctx, id, nil); !errors.Is(err, o.notFound) {
			t.Fatalf("Get(corrupted): %d bytes, %v", len(got), err)
		}
		if ok, _ := st.Has(ctx, id); ok {
			t.Fatal("corrupted chunk still reported by Has")
		}
		if err := st.Put(ctx, id, data[id]); err != nil {
			t.Fatalf("Put after corruption: %v", err)
		}
		if got, err := st.Get(ctx, id, nil); err != nil || !bytes.Equal(got, data[id]) {
			t.Fatalf("Get after repair: %v", err)
		}
	}

	if d, ok := st.(deleter); ok {
		id := ids[0]
		if err := d.Delete(ctx, id); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if err := d.Delete(ctx, id); err != nil {
			t.Fatalf("Delete twice: %v", err)
		}
		if ok, _ := st.Has(ctx, id); ok {
			t.Fatal("deleted chunk reported by Has")
		}
		if _, err := st.Get(ctx, id, nil); !errors.Is(err, o.notFound) {
			t.Fatalf("Get(deleted): %v", err)
		}
		delete(want, id)
		if got := enum(); !mapsEqual(got, want) {
			t.Fatalf("enumerate after delete: %d chunks, want %d", len(got), len(want))
		}
	}

	// Concurrent use (run with -race).
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 8 {
		wg.Go(func() {
			b, id := chunkOf(uint64(100+i%4), 64<<10) // pairs put the same chunk
			if err := st.Put(ctx, id, b); err != nil {
				errs <- err
				return
			}
			got, err := st.Get(ctx, id, nil)
			if err != nil || !bytes.Equal(got, b) {
				errs <- fmt.Errorf("concurrent get %v: %v", id, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(enum()); n != len(want)+4 {
		t.Errorf("after concurrent puts: %d chunks, want %d", n, len(want)+4)
	}
}

func mapsEqual(a, b map[blobs.ChunkID]uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
