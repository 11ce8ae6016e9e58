package transfer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/meshwork/meshwork/blobs"
)

// virtualLimiter is the production send limiter (newSendLimiter) driven
// by a virtual clock: a wait advances the clock by the delay the limiter
// asks for instead of sleeping, so the test is independent of the
// machine's speed and load. It records every wait's size.
type virtualLimiter struct {
	mu    sync.Mutex
	l     *rate.Limiter
	start time.Time
	now   time.Time
	waits []int
}

func newVirtualLimiter(bytesPerSec int64) *virtualLimiter {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &virtualLimiter{l: newSendLimiter(bytesPerSec), start: t0, now: t0}
}

func (v *virtualLimiter) WaitN(ctx context.Context, n int) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := v.l.ReserveN(v.now, n)
	if !r.OK() { // what rate.Limiter.WaitN refuses too
		return fmt.Errorf("wait for %d bytes: more than the bucket of %d", n, v.l.Burst())
	}
	v.now = v.now.Add(r.DelayFrom(v.now))
	v.waits = append(v.waits, n)
	return ctx.Err()
}

// TestSendRate: SetSendRate's limiter has the cap as its rate and one
// largest frame as its bucket; a capped device waits on it for every chunk
// it serves, for the whole frame's bytes, so under a virtual clock the
// transfer takes exactly (bytes − bucket) / cap. (The measured speed of a
// capped peer and its share of a swarm are in BenchmarkSwarmRate.)
func TestSendRate(t *testing.T) {
	const size = 12 << 20
	const capped = 4 << 20 // bytes per second
	if l := newSendLimiter(capped); l.Limit() != rate.Limit(capped) || l.Burst() != maxFrame {
		t.Fatalf("send limiter for %d B/s: rate %v, bucket %d; want %d, %d", capped, l.Limit(), l.Burst(), capped, maxFrame)
	}
	if largest := frameHeader + chunkRespHead + blobs.MaxChunkSize; largest > maxFrame {
		t.Fatalf("a full chunk's frame is %d bytes, more than the bucket of %d: WaitN would refuse it", largest, maxFrame)
	}
	a, c := newNode(t, nil, nil), newNode(t, nil, nil)
	a.svc.SetSendRate(capped)
	if a.svc.sendLimit.Load() == nil {
		t.Fatal("SetSendRate(4 MiB/s) set no limiter")
	}
	a.svc.SetSendRate(0)
	if a.svc.sendLimit.Load() != nil {
		t.Fatal("SetSendRate(0) left the limiter in place")
	}

	data := randBytes(7, size)
	m := a.seed(t, "f", data)
	v := newVirtualLimiter(capped)
	a.svc.setSendLimiter(v)
	connect(t, c, a)
	if err := c.svc.Fetch(context.Background(), m, ids(a), nil); err != nil {
		t.Fatal(err)
	}
	c.checkMaterialize(t, m, data)

	distinct := map[blobs.ChunkID]bool{}
	want := 0
	for _, ch := range m.Chunks {
		if !distinct[ch.ID] {
			distinct[ch.ID] = true
			want += frameHeader + chunkRespHead + int(ch.Size)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	served := a.svc.Stats().ChunksServed
	if len(v.waits) != len(distinct) || int64(len(v.waits)) != served {
		t.Fatalf("%d waits on the limiter for %d chunks served (%d distinct in the blob); want one per chunk", len(v.waits), served, len(distinct))
	}
	sum := 0
	for _, n := range v.waits {
		sum += n
	}
	if sum != want {
		t.Fatalf("waited for %d bytes in all, the chunk frames are %d", sum, want)
	}
	took := v.now.Sub(v.start)
	exact := time.Duration(float64(sum-maxFrame) / capped * float64(time.Second))
	t.Logf("%d chunks, %d bytes: %v of virtual time at %d B/s", len(v.waits), sum, took, capped)
	if d := took - exact; d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("capped at %d B/s with a bucket of %d, %d bytes took %v of virtual time; want %v", capped, maxFrame, sum, took, exact)
	}
}

// gateLimiter lets nothing through until released (or the stream ends):
// a send cap so low that no chunk goes out during the test. entered is
// closed at the first wait.
type gateLimiter struct {
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gateLimiter) WaitN(ctx context.Context, n int) error {
	g.once.Do(func() { close(g.entered) })
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// heldStore holds every chunk read until open is closed.
type heldStore struct {
	Store
	open <-chan struct{}
}

func (s *heldStore) Get(ctx context.Context, id blobs.ChunkID, buf []byte) ([]byte, error) {
	select {
	case <-s.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Store.Get(ctx, id, buf)
}

// TestSendCapDoesNotHoldSwarm: in a swarm, chunks held by a capped peer
// waiting on its limiter are taken from the uncapped one: with the capped
// peer's limiter letting nothing through (and the uncapped peer serving
// only once the capped one is holding a chunk), the fetch completes, all
// of it from the uncapped peer.
func TestSendCapDoesNotHoldSwarm(t *testing.T) {
	big := randBytes(8, 32<<20)
	g := &gateLimiter{entered: make(chan struct{}), release: make(chan struct{})}
	defer close(g.release)
	a := newNode(t, nil, nil)
	b := newNode(t, nil, func(s Store) Store { return &heldStore{Store: s, open: g.entered} })
	d := newNode(t, nil, nil)
	m := a.seed(t, "g", big)
	b.seed(t, "g", big)
	a.svc.setSendLimiter(g)
	connect(t, d, a)
	connect(t, d, b)
	// A hang guard, not a timing assertion: a fetch waiting on the gated
	// peer never ends by itself.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := d.svc.Fetch(ctx, m, ids(a, b), nil); err != nil {
		t.Fatalf("fetch with one peer gated: %v", err)
	}
	d.checkMaterialize(t, m, big)
	distinct := map[blobs.ChunkID]bool{}
	for _, ch := range m.Chunks {
		distinct[ch.ID] = true
	}
	t.Logf("swarm of %d chunks: gated peer read %d, uncapped served %d", len(m.Chunks), a.svc.Stats().ChunksServed, b.svc.Stats().ChunksServed)
	if n := b.svc.Stats().ChunksServed; n < int64(len(distinct)) {
		t.Fatalf("uncapped peer served %d chunks of %d, and the capped one sent none", n, len(distinct))
	}
}
