package transfer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/dgraph-io/badger/v4"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/security/noise"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/store"
)

func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 3}).Read(b)
	return b
}

// testAuth admits members (all peers if members is nil) and denies listed blobs.
type testAuth struct {
	mu      sync.Mutex
	members map[peer.ID]bool
	deny    map[blobs.BlobRef]bool
}

func (a *testAuth) IsMember(p peer.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.members == nil || a.members[p]
}

func (a *testAuth) CanRead(p peer.ID, b blobs.BlobRef) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.deny[b]
}

type node struct {
	h     host.Host
	store *store.Store
	svc   *Service
	dir   string
}

func newHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Security(noise.ID, noise.New),
		libp2p.DisableRelay(),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// newNode builds a host, a store and a service; wrap (if not nil) wraps
// the store the service sees.
func newNode(t testing.TB, auth Authorizer, wrap func(Store) Store) *node {
	t.Helper()
	return newNodeOn(t, newHost(t), auth, wrap)
}

// newNodeOn is newNode on the given host.
func newNodeOn(t testing.TB, h host.Host, auth Authorizer, wrap func(Store) Store) *node {
	t.Helper()
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "db")).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := store.Open(db, []byte("b/"), filepath.Join(dir, "chunks"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var s Store = st
	if wrap != nil {
		s = wrap(st)
	}
	if auth == nil {
		auth = &testAuth{}
	}
	var logger *slog.Logger
	if os.Getenv("BLOBS_TEST_DEBUG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("self", h.ID().ShortString())
	}
	svc := New(h, s, auth, logger)
	t.Cleanup(func() { svc.Close() })
	return &node{h: h, store: st, svc: svc, dir: dir}
}

func connect(t testing.TB, a, b *node) {
	t.Helper()
	if err := a.h.Connect(context.Background(), peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// seed writes data as a synced file of n and indexes it in place.
func (n *node) seed(t testing.TB, name string, data []byte) blobs.Manifest {
	t.Helper()
	p := filepath.Join(n.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	m, _, err := n.store.AddFile(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkMaterialize writes the blob out of n's store and compares it.
func (n *node) checkMaterialize(t testing.TB, m blobs.Manifest, want []byte) {
	t.Helper()
	target := filepath.Join(n.dir, "out-"+m.Ref().String()[:12])
	if err := n.store.Materialize(context.Background(), m, target, nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(target)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("materialised content differs (err %v)", err)
	}
}

func ids(ns ...*node) []peer.ID {
	var out []peer.ID
	for _, n := range ns {
		out = append(out, n.h.ID())
	}
	return out
}

func TestFetchFromTwoPeers(t *testing.T) {
	data := randBytes(1, 16<<20)
	a, b, c := newNode(t, nil, nil), newNode(t, nil, nil), newNode(t, nil, nil)
	m := a.seed(t, "f", data)
	b.seed(t, "g", data)
	connect(t, c, a)
	connect(t, c, b)
	var last blobs.Progress
	var calls int
	if err := c.svc.Fetch(context.Background(), m, ids(a, b), func(p blobs.Progress) { last = p; calls++ }); err != nil {
		t.Fatal(err)
	}
	sa, sb, sc := a.svc.Stats(), b.svc.Stats(), c.svc.Stats()
	t.Logf("served: a %d, b %d chunks; fetcher %+v; %d progress calls, last %+v", sa.ChunksServed, sb.ChunksServed, sc, calls, last)
	if sa.ChunksServed == 0 || sb.ChunksServed == 0 {
		t.Errorf("not swarming: a served %d, b %d", sa.ChunksServed, sb.ChunksServed)
	}
	if sc.ChunksReceived != int64(len(m.Chunks)) || sc.BadChunks != 0 {
		t.Errorf("fetcher stats %+v for %d chunks", sc, len(m.Chunks))
	}
	if last.DoneBytes != int64(len(data)) || last.TotalBytes != int64(len(data)) {
		t.Errorf("final progress %+v", last)
	}
	c.checkMaterialize(t, m, data)
	// Everything is local now: a second fetch asks for nothing.
	before := c.svc.Stats().ChunksRequested
	if err := c.svc.Fetch(context.Background(), m, ids(a, b), nil); err != nil {
		t.Fatal(err)
	}
	if n := c.svc.Stats().ChunksRequested - before; n != 0 {
		t.Errorf("re-fetch requested %d chunks", n)
	}
	// The manifest itself can be fetched by ref.
	m2, err := c.svc.FetchManifest(context.Background(), m.Ref(), ids(a))
	if err != nil || m2.Ref() != m.Ref() {
		t.Fatalf("fetch manifest: %v", err)
	}
}

// corruptStore flips a bit in every chunk it serves, and closes served the
// first time.
type corruptStore struct {
	Store
	once   sync.Once
	served chan struct{}
}

func (s *corruptStore) Get(ctx context.Context, id blobs.ChunkID, buf []byte) ([]byte, error) {
	d, err := s.Store.Get(ctx, id, buf)
	if err == nil {
		d[len(d)/2] ^= 1
		s.once.Do(func() { close(s.served) })
	}
	return d, err
}

// gatedStore answers nothing about chunks until gate is closed (or a
// deadline passes), so the test controls which peer serves first.
type gatedStore struct {
	Store
	gate <-chan struct{}
}

func (s *gatedStore) HasInBlob(ctx context.Context, b blobs.BlobRef, id blobs.ChunkID) (bool, error) {
	select {
	case <-s.gate:
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
	}
	return s.Store.HasInBlob(ctx, b, id)
}

func TestCorruptChunkRefetchedElsewhere(t *testing.T) {
	data := randBytes(2, 8<<20)
	served := make(chan struct{})
	bad := newNode(t, nil, func(s Store) Store { return &corruptStore{Store: s, served: served} })
	good := newNode(t, nil, func(s Store) Store { return &gatedStore{Store: s, gate: served} })
	c := newNode(t, nil, nil)
	m := bad.seed(t, "f", data)
	good.seed(t, "f", data)
	connect(t, c, bad)
	connect(t, c, good)
	if err := c.svc.Fetch(context.Background(), m, ids(bad, good), nil); err != nil {
		t.Fatal(err)
	}
	st := c.svc.Stats()
	t.Logf("fetcher %+v; bad served %d, good served %d", st, bad.svc.Stats().ChunksServed, good.svc.Stats().ChunksServed)
	if st.BadChunks != 1 {
		t.Errorf("bad chunks %d, want 1 (then the peer is dropped)", st.BadChunks)
	}
	if good.svc.Stats().ChunksServed != int64(len(m.Chunks)) {
		t.Errorf("good peer served %d of %d chunks", good.svc.Stats().ChunksServed, len(m.Chunks))
	}
	c.checkMaterialize(t, m, data)
}

// cancelSink cancels a context after n successful Puts.
type cancelSink struct {
	Sink
	n      atomic.Int64
	cancel func()
}

func (s *cancelSink) Put(ctx context.Context, id blobs.ChunkID, data []byte) error {
	err := s.Sink.Put(ctx, id, data)
	if err == nil && s.n.Add(-1) == 0 {
		s.cancel()
	}
	return err
}

func missing(t testing.TB, n *node, m blobs.Manifest) int {
	t.Helper()
	miss, err := n.store.Missing(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return len(miss)
}

// TestResumeAfterCancel: a fetch into a partial file, cancelled at a random
// point and restarted (partial reopened, as after a daemon restart),
// requests exactly the chunks not yet verified, then commits.
func TestResumeAfterCancel(t *testing.T) {
	ctx := context.Background()
	data := randBytes(3, 16<<20)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	a, c := newNode(t, nil, nil), newNode(t, nil, nil)
	m := a.seed(t, "f", data)
	connect(t, c, a)
	target := filepath.Join(c.dir, "target")

	p, err := c.store.OpenPartial(ctx, m, target)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := 1 + r.IntN(len(m.Chunks)/2)
	cs := &cancelSink{Sink: p, cancel: cancel}
	cs.n.Store(int64(stop))
	err = c.svc.FetchInto(cctx, m, ids(a), cs, nil)
	p.Close()
	left := missing(t, c, m)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted fetch: %v (%d chunks left)", err, left)
	}
	first := c.svc.Stats()
	t.Logf("cancelled after %d puts; %d of %d chunks left; %d requested", stop, left, len(m.Chunks), first.ChunksRequested)
	if left == 0 || left > len(m.Chunks)-stop {
		t.Fatalf("%d chunks left after %d verified of %d", left, stop, len(m.Chunks))
	}
	if err := p.Commit(ctx); err == nil {
		t.Fatal("commit of an incomplete partial succeeded")
	}

	p, err = c.store.OpenPartial(ctx, m, target)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := c.svc.FetchInto(ctx, m, ids(a), p, nil); err != nil {
		t.Fatal(err)
	}
	second := c.svc.Stats()
	if got := second.ChunksRequested - first.ChunksRequested; got != int64(left) {
		t.Errorf("restart requested %d chunks, want the %d not yet verified", got, left)
	}
	if got := second.ChunksReceived - first.ChunksReceived; got != int64(left) {
		t.Errorf("restart received %d chunks, want %d", got, left)
	}
	if err := p.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(target)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("committed content differs: %v", err)
	}
	if _, err := os.Stat(p.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("partial file left behind: %v", err)
	}
}

// killStore closes a host after n Puts.
type killStore struct {
	Store
	n    atomic.Int64
	kill func()
}

func (s *killStore) Put(ctx context.Context, id blobs.ChunkID, data []byte) error {
	err := s.Store.Put(ctx, id, data)
	if err == nil && s.n.Add(-1) == 0 {
		s.kill()
	}
	return err
}

// TestResumeAfterPeerDies: the only peer dies mid-transfer (its host is
// closed); the fetch fails, and a restart from another peer fetches only the
// rest.
func TestResumeAfterPeerDies(t *testing.T) {
	data := randBytes(4, 16<<20)
	a, b := newNode(t, nil, nil), newNode(t, nil, nil)
	ks := &killStore{kill: func() { a.svc.Close(); a.h.Close() }}
	c := newNode(t, nil, func(s Store) Store { ks.Store = s; return ks })
	m := a.seed(t, "f", data)
	b.seed(t, "f", data)
	connect(t, c, a)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	ks.n.Store(int64(1 + r.IntN(len(m.Chunks)/2)))
	err := c.svc.Fetch(context.Background(), m, ids(a), nil)
	left := missing(t, c, m)
	// Chunks already read off the stream when the host closed still land.
	if (left > 0 && !errors.Is(err, ErrUnavailable)) || (left == 0 && err != nil) {
		t.Fatalf("fetch from a peer that died: %v, %d chunks left", err, left)
	}
	t.Logf("peer died: %d of %d chunks left", left, len(m.Chunks))
	first := c.svc.Stats()
	connect(t, c, b)
	if err := c.svc.Fetch(context.Background(), m, ids(a, b), nil); err != nil {
		t.Fatal(err)
	}
	if got := c.svc.Stats().ChunksRequested - first.ChunksRequested; got != int64(left) {
		t.Errorf("restart requested %d chunks, want %d", got, left)
	}
	c.checkMaterialize(t, m, data)
}

// TestPeerDiesMidwaySwarm: with two peers, one dying mid-way does not fail
// the fetch.
func TestPeerDiesMidwaySwarm(t *testing.T) {
	data := randBytes(5, 16<<20)
	a, b := newNode(t, nil, nil), newNode(t, nil, nil)
	ks := &killStore{kill: func() { a.h.Close() }}
	c := newNode(t, nil, func(s Store) Store { ks.Store = s; return ks })
	m := a.seed(t, "f", data)
	b.seed(t, "f", data)
	connect(t, c, a)
	connect(t, c, b)
	ks.n.Store(3)
	if err := c.svc.Fetch(context.Background(), m, ids(a, b), nil); err != nil {
		t.Fatal(err)
	}
	c.checkMaterialize(t, m, data)
}

func TestNonMemberRefused(t *testing.T) {
	data := randBytes(6, 2<<20)
	auth := &testAuth{members: map[peer.ID]bool{}}
	a := newNode(t, auth, nil)
	m := a.seed(t, "f", data)
	c := newNode(t, nil, nil)
	connect(t, c, a)
	err := c.svc.Fetch(context.Background(), m, ids(a), nil)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrRefused) {
		t.Fatalf("non-member fetch: %v", err)
	}
	t.Logf("non-member fetch: %v", err)
	if _, err := c.svc.FetchManifest(context.Background(), m.Ref(), ids(a)); !errors.Is(err, ErrRefused) {
		t.Fatalf("non-member manifest fetch: %v", err)
	}
	// On the wire: a GET gets one refusal and nothing else.
	st, err := c.h.NewStream(context.Background(), a.h.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Write(getReq{ReqID: 7, Blob: m.Ref(), ID: m.Chunks[0].ID}.append(nil))
	br := bufio.NewReader(st)
	buf := make([]byte, maxFrame)
	typ, p, err := readFrame(br, buf)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := decode(typ, p)
	if e, ok := msg.(errorResp); err != nil || !ok || e.Code != codeRefused {
		t.Fatalf("non-member got %#x %+v %v", typ, msg, err)
	}
	if _, _, err := readFrame(br, buf); err == nil {
		t.Fatal("non-member got a second frame")
	}
	if s := a.svc.Stats(); s.ChunksServed != 0 || s.Refused < 3 {
		t.Fatalf("server stats %+v", s)
	}
	if s := c.svc.Stats(); s.BytesReceived != 0 {
		t.Fatalf("non-member received %d bytes", s.BytesReceived)
	}

	// A member that may not read the blob is refused too.
	auth.mu.Lock()
	auth.members[c.h.ID()] = true
	auth.deny = map[blobs.BlobRef]bool{m.Ref(): true}
	auth.mu.Unlock()
	if err := c.svc.Fetch(context.Background(), m, ids(a), nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("fetch of denied blob: %v", err)
	}
	// Naming a readable blob does not unlock chunks of another one.
	other := a.seed(t, "g", randBytes(7, 1000))
	st2, err := c.h.NewStream(context.Background(), a.h.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	st2.Write(getReq{ReqID: 1, Blob: other.Ref(), ID: m.Chunks[0].ID}.append(nil))
	typ, p, err = readFrame(bufio.NewReader(st2), buf)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ = decode(typ, p)
	if e, ok := msg.(errorResp); !ok || e.Code != codeNotFound {
		t.Fatalf("chunk of unreadable blob via another blob: %#x %+v", typ, msg)
	}
	if s := a.svc.Stats(); s.ChunksServed != 0 {
		t.Fatalf("served %d chunks to a peer that may not read them", s.ChunksServed)
	}
	// Allowed now.
	auth.mu.Lock()
	auth.deny = nil
	auth.mu.Unlock()
	if err := c.svc.Fetch(context.Background(), m, ids(a), nil); err != nil {
		t.Fatal(err)
	}
}

// TestSlowPeerDoesNotHoldUpFastOne: a peer that holds every chunk it is
// asked for (its store answers only when the test ends) does not hold up
// the fetch: the fast peer serves every chunk, including those the slow
// one sits on. (A timed version would measure speed; this one does not.)
func TestSlowPeerDoesNotHoldUpFastOne(t *testing.T) {
	data := randBytes(8, 16<<20)
	open := make(chan struct{})
	defer close(open)
	slow := newNode(t, nil, func(s Store) Store { return &heldStore{Store: s, open: open} })
	fast := newNode(t, nil, nil)
	c := newNode(t, nil, nil)
	m := slow.seed(t, "f", data)
	fast.seed(t, "f", data)
	connect(t, c, slow)
	connect(t, c, fast)
	// A hang guard, not a timing assertion.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := c.svc.Fetch(ctx, m, ids(slow, fast), nil); err != nil {
		t.Fatal(err)
	}
	distinct := map[blobs.ChunkID]bool{}
	for _, ch := range m.Chunks {
		distinct[ch.ID] = true
	}
	ns, nf := slow.svc.Stats().ChunksServed, fast.svc.Stats().ChunksServed
	t.Logf("%d chunks: slow served %d, fast %d; fetcher %+v", len(m.Chunks), ns, nf, c.svc.Stats())
	if ns != 0 || nf < int64(len(distinct)) {
		t.Errorf("%d distinct chunks: fast peer served %d, stalled peer %d", len(distinct), nf, ns)
	}
	c.checkMaterialize(t, m, data)
}

// TestFetchManifests: many manifests in one pipelined stream per peer;
// what the first peer lacks comes from the second; a ref nobody has is
// absent from the answer, and every manifest verifies against its ref.
func TestFetchManifests(t *testing.T) {
	a, b, c := newNode(t, nil, nil), newNode(t, nil, nil), newNode(t, nil, nil)
	connect(t, c, a)
	connect(t, c, b)
	var refs []blobs.BlobRef
	want := map[blobs.BlobRef]blobs.Manifest{}
	for i := range 1500 { // more than one batch
		var m blobs.Manifest
		if i%3 == 0 {
			m = b.seed(t, fmt.Sprintf("b%d", i), randBytes(uint64(i)+100, 2000+i))
		} else {
			m = a.seed(t, fmt.Sprintf("a%d", i), randBytes(uint64(i)+100, 2000+i))
		}
		refs = append(refs, m.Ref())
		want[m.Ref()] = m
	}
	unknown := blobs.Manifest{Chunks: []blobs.ChunkRef{{ID: blobs.SumChunk([]byte("nobody")), Size: 6}}}.Ref()
	refs = append(refs, unknown)
	got, err := c.svc.FetchManifests(context.Background(), refs, ids(a, b))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d manifests, want %d", len(got), len(want))
	}
	for r, m := range want {
		if g, ok := got[r]; !ok || g.Ref() != m.Ref() {
			t.Fatalf("manifest of %v missing or wrong", r)
		}
	}
	if _, ok := got[unknown]; ok {
		t.Error("a manifest for a ref nobody has")
	}
}

// TestLonePeerLacksChunk: a one-chunk blob asked of a single peer goes
// without a HAVE; the peer's "not found" ends the fetch with
// ErrUnavailable (it must not wait for a HAVE answer that never comes), and
// a peer that has it serves it.
func TestLonePeerLacksChunk(t *testing.T) {
	data := randBytes(8, 40<<10)
	a := newNode(t, nil, nil)
	m := a.seed(t, "small", data)
	empty := newNode(t, nil, nil)
	c := newNode(t, nil, nil)
	connect(t, c, empty)
	connect(t, c, a)
	if len(m.Chunks) != 1 {
		t.Fatalf("test blob has %d chunks, want 1", len(m.Chunks))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := c.svc.Fetch(ctx, m, ids(empty), nil)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("fetch from a peer without the chunk: %v, want ErrUnavailable", err)
	}
	if err := c.svc.Fetch(ctx, m, ids(a), nil); err != nil {
		t.Fatalf("fetch from the peer that has it: %v", err)
	}
	c.checkMaterialize(t, m, data)
}

// TestStreamsReused: fetches that end cleanly leave their stream for the
// next one, so 50 small blobs fetched one after another use one stream,
// and a closed connection's idle streams are not used again.
func TestStreamsReused(t *testing.T) {
	a := newNode(t, nil, nil)
	var ms []blobs.Manifest
	var datas [][]byte
	for i := range 50 {
		d := randBytes(uint64(500+i), 32<<10)
		datas = append(datas, d)
		ms = append(ms, a.seed(t, fmt.Sprintf("s%d", i), d))
	}
	c := newNode(t, nil, nil)
	connect(t, c, a)
	ctx := context.Background()
	for _, m := range ms[:25] {
		if err := c.svc.Fetch(ctx, m, ids(a), nil); err != nil {
			t.Fatal(err)
		}
	}
	idle := func() int {
		c.svc.mu.Lock()
		defer c.svc.mu.Unlock()
		return len(c.svc.idle[a.h.ID()])
	}
	conns := a.h.Network().ConnsToPeer(c.h.ID())
	if len(conns) != 1 {
		t.Fatalf("%d connections between the peers, want 1", len(conns))
	}
	if n, open := idle(), len(conns[0].GetStreams()); n != 1 || open != 1 {
		t.Fatalf("after 25 fetches: %d idle streams on the fetcher, %d open on the server; want 1 and 1", n, open)
	}
	// The connection goes; the idle stream with it. The next fetch opens a
	// new stream on a new connection.
	for _, cn := range c.h.Network().ConnsToPeer(a.h.ID()) {
		cn.Close()
	}
	connect(t, c, a)
	for i, m := range ms[25:] {
		if err := c.svc.Fetch(ctx, m, ids(a), nil); err != nil {
			t.Fatalf("fetch %d after the reconnect: %v", i, err)
		}
	}
	for i, m := range ms {
		c.checkMaterialize(t, m, datas[i])
	}
	if n := idle(); n != 1 {
		t.Fatalf("after the reconnect: %d idle streams, want 1", n)
	}
}

// placeSink records, for every chunk put, whether its data sat at its
// offset in the blob within a page (see chunkShift).
type placeSink struct {
	Sink
	offs              map[blobs.ChunkID]int64
	placed, misplaced atomic.Int64
}

func (s *placeSink) Put(ctx context.Context, id blobs.ChunkID, data []byte) error {
	addr := int64(uintptr(unsafe.Pointer(unsafe.SliceData(data))))
	if (addr-s.offs[id])%pageSize == 0 {
		s.placed.Add(1)
	} else {
		s.misplaced.Add(1)
	}
	return s.Sink.Put(ctx, id, data)
}

// TestReceivedChunksPlaced: every chunk a fetch hands its sink sits at its
// offset in the blob within a page, so a partial file's direct writes need
// no copy; the blob still commits byte for byte.
func TestReceivedChunksPlaced(t *testing.T) {
	ctx := context.Background()
	data := randBytes(40, 12<<20+777)
	a, c := newNode(t, nil, nil), newNode(t, nil, nil)
	m := a.seed(t, "f", data)
	connect(t, c, a)
	ps := &placeSink{offs: make(map[blobs.ChunkID]int64)}
	var off int64
	for _, ch := range m.Chunks {
		if _, ok := ps.offs[ch.ID]; !ok {
			ps.offs[ch.ID] = off
		}
		off += int64(ch.Size)
	}
	target := filepath.Join(c.dir, "target")
	p, err := c.store.OpenPartial(ctx, m, target)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ps.Sink = p
	if err := c.svc.FetchInto(ctx, m, ids(a), ps, nil); err != nil {
		t.Fatal(err)
	}
	if ps.misplaced.Load() != 0 || ps.placed.Load() != int64(len(m.Chunks)) {
		t.Fatalf("%d chunks placed at their page offset, %d not (of %d)", ps.placed.Load(), ps.misplaced.Load(), len(m.Chunks))
	}
	if err := p.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(target); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("committed content differs: %v", err)
	}
}

// lossyStore says it has every chunk (HAVE) but cannot read one of them
// (GET answers "not found"), as when the serving device's file changes
// under a fetch.
type lossyStore struct {
	Store
	lost blobs.ChunkID
}

func (s *lossyStore) Get(ctx context.Context, id blobs.ChunkID, buf []byte) ([]byte, error) {
	if id == s.lost {
		return nil, fmt.Errorf("chunk %v: %w", id, os.ErrNotExist)
	}
	return s.Store.Get(ctx, id, buf)
}

// TestPeerLosesChunkMidFetch: a peer answers "not found" for the first
// chunk while its other requests are in flight. Once those are answered
// nothing is left to ask anyone, and the fetch ends with ErrUnavailable
// at once: it used to wait, owing nothing and waiting for nothing, until
// the idle backstop (chaos harness, seeds 8 and 10 under load). The rest
// of the blob is stored, and a peer that has the chunk completes it.
func TestPeerLosesChunkMidFetch(t *testing.T) {
	data := randBytes(9, 16<<20)
	var lossy *lossyStore
	a := newNode(t, nil, func(s Store) Store { lossy = &lossyStore{Store: s}; return lossy })
	m := a.seed(t, "f", data)
	if len(m.Chunks) < 4 {
		t.Fatalf("test blob has %d chunks, want several", len(m.Chunks))
	}
	lossy.lost = m.Chunks[0].ID
	good := newNode(t, nil, nil)
	good.seed(t, "g", data)
	for range 3 {
		c := newNode(t, nil, nil)
		connect(t, c, a)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := c.svc.Fetch(ctx, m, ids(a), nil)
		cancel()
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrStalled) {
			t.Fatalf("fetch from a peer that lost a chunk: %v, want ErrUnavailable (not a stall or a timeout)", err)
		}
		if n := missing(t, c, m); n != 1 {
			t.Fatalf("%d chunks missing after the fetch, want only the lost one", n)
		}
		connect(t, c, good)
		ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
		err = c.svc.Fetch(ctx, m, ids(good), nil)
		cancel()
		if err != nil {
			t.Fatalf("fetch of the rest from a peer that has it: %v", err)
		}
		c.checkMaterialize(t, m, data)
	}
}
