package transfer

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unsafe"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/blobs"
)

// Per-peer window of GET requests in flight (see adapt). The floor of 8
// (8 MiB at the average chunk size) keeps a fast loopback or LAN pipe full:
// with a floor of 2 the sender's read-hash-encrypt steps and the receiver's
// verify-write steps alternated instead of overlapping, and two meshd
// processes moved 1 GiB at 160 MB/s instead of 414 MB/s (BenchmarkTransfer1GiB
// in node/e2e, TCP).
const (
	initialWindow = 8
	minWindow     = 8
	maxWindow     = 32
)

const progressEvery = 100 * time.Millisecond

type chunkState struct {
	ref      blobs.ChunkRef
	off      int64 // where it first occurs in the blob
	done     bool
	inflight int // peers it is requested from
}

type request struct {
	idx    int
	sentAt time.Time
}

// putJob is a received chunk waiting to be verified and stored.
type putJob struct {
	p     *peerState
	reqID uint32
	req   request
	ref   blobs.ChunkRef
	recv  time.Time // when the answer was read off the stream
	data  []byte
	buf   *[]byte
}

// putWorkers verify and write received chunks concurrently with reading
// the network.
const putWorkers = 2

type peerState struct {
	id       peer.ID
	log      *slog.Logger
	has      []bool // has[i]: peer says it has chunks[i]; nil until HAVE answered
	haveLeft int    // HAVE batches not yet answered
	dead     bool
	inflight map[uint32]request
	asked    map[int]bool // chunks currently requested from this peer
	cursor   int          // chunks before cursor are done or not had by this peer
	window   int
	base     float64 // lowest seconds per byte seen
	poke     chan struct{}
	stream   network.Stream
	nextReq  uint32
	received int64
	read     *lastRead // when bytes last arrived from p (nil until its stream is open)
	started  time.Time // when p's stream was taken for this fetch
}

type fetch struct {
	s        *Service
	sink     Sink
	ctx      context.Context
	blob     blobs.BlobRef
	progress func(blobs.Progress)
	start    time.Time

	mu        sync.Mutex
	chunks    []chunkState
	peers     []*peerState
	remaining int
	present   int // distinct chunks already local at the start
	doneBytes int64
	err       error
	peerErrs  []error // why peers were dropped
	finished  chan struct{}
	ended     bool
	// progressAt is when the fetch started or last stored a chunk (idle).
	progressAt time.Time

	jobs chan putJob // verified-write work for the put workers

	pmu       sync.Mutex // serialises progress callbacks
	lastRep   time.Time
	lastBytes int64
	rate      float64
	fetched   int64 // bytes fetched over the wire in this fetch (under mu)
}

// Fetch makes every chunk of m available in the store, fetching the missing
// ones from peers concurrently: each peer is asked which chunks it has, then
// sent pipelined GET requests on one long-lived stream, as many in flight as
// its adaptive window allows, so a fast peer serves more than a slow one.
// Every chunk is verified by the store before it is written; a peer that
// sends a bad chunk is dropped for this transfer and its chunks are fetched
// from the others, as are those of a peer that dies. Chunks already in the
// store (from an interrupted earlier fetch, or any local file) are not
// fetched again.
//
// Fetch pins m in the store (Store.Pin), so that fetched chunks survive GC;
// the caller unpins once the blob is materialised or no longer wanted.
// progress, if not nil, is called at most every 100 ms and once at the end,
// never concurrently. Fetch returns ErrUnavailable (wrapped) if some chunks
// could not be had from any peer.
func (s *Service) Fetch(ctx context.Context, m blobs.Manifest, peers []peer.ID, progress func(blobs.Progress)) error {
	return s.fetch(ctx, m, peers, nil, progress)
}

// Sink receives fetched chunks; *store.Partial is one. Put must verify that
// data hashes to id before writing anything, returning an error wrapping
// blobs.ErrMismatch if not, and must make Store.Has report the chunk once it
// returns nil.
type Sink interface {
	Put(ctx context.Context, id blobs.ChunkID, data []byte) error
}

// FetchInto is Fetch writing chunks into sink instead of the store's chunk
// store, typically a *store.Partial so that the bytes land in the file being
// materialised. It does not pin the blob: the sink retains it.
//
//	p, err := st.OpenPartial(ctx, m, target)
//	...
//	defer p.Close()
//	if err := svc.FetchInto(ctx, m, peers, p, progress); err != nil { ... }
//	err = p.Commit(ctx)
func (s *Service) FetchInto(ctx context.Context, m blobs.Manifest, peers []peer.ID, sink Sink, progress func(blobs.Progress)) error {
	if sink == nil {
		return errors.New("fetch into: nil sink")
	}
	return s.fetch(ctx, m, peers, sink, progress)
}

// fetch is Fetch, or FetchInto when sink is not nil.
func (s *Service) fetch(ctx context.Context, m blobs.Manifest, peers []peer.ID, sink Sink, progress func(blobs.Progress)) error {
	ref := m.Ref()
	if err := m.Verify(ref); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("fetch %v: %w", ref, ErrClosed)
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	if sink == nil {
		if _, err := s.store.Pin(ctx, m); err != nil {
			return fmt.Errorf("fetch %v: %w", ref, err)
		}
		sink = s.store
	}
	f := &fetch{s: s, sink: sink, ctx: ctx, blob: ref, progress: progress, start: time.Now(), finished: make(chan struct{})}
	f.progressAt = f.start
	if err := f.addChunks(ctx, m); err != nil {
		return fmt.Errorf("fetch %v: %w", ref, err)
	}
	if f.remaining == 0 {
		f.report(true)
		return nil
	}
	f.addPeers(peers)
	if len(f.peers) == 0 {
		return fmt.Errorf("fetch %v: %d chunks and no peers: %w", ref, f.remaining, ErrUnavailable)
	}
	f.run(ctx, cancel)
	return f.result(ctx)
}

// addChunks lists the distinct chunks of m the store lacks, counting the rest.
func (f *fetch) addChunks(ctx context.Context, m blobs.Manifest) error {
	seen := make(map[blobs.ChunkID]bool, len(m.Chunks))
	var off int64
	for _, c := range m.Chunks {
		off += int64(c.Size)
		if seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		ok, err := f.s.store.Has(ctx, c.ID)
		if err != nil {
			return err
		}
		if ok {
			f.doneBytes += int64(c.Size)
			f.present++
			continue
		}
		f.chunks = append(f.chunks, chunkState{ref: c, off: off - int64(c.Size)})
	}
	f.remaining = len(f.chunks)
	return nil
}

// addPeers adds a peerState for each distinct peer other than this host.
func (f *fetch) addPeers(peers []peer.ID) {
	s := f.s
	seenPeer := make(map[peer.ID]bool)
	for _, p := range peers {
		if p == s.host.ID() || seenPeer[p] {
			continue
		}
		seenPeer[p] = true
		f.peers = append(f.peers, &peerState{
			id:       p,
			log:      s.log.With("peer", p, "blob", f.blob),
			inflight: make(map[uint32]request),
			asked:    make(map[int]bool),
			window:   initialWindow,
			poke:     make(chan struct{}, 1),
			nextReq:  1,
		})
	}
}

// run fetches from every peer until the fetch ends and all its goroutines stop.
//
// cancel is ctx's: called when the fetch ended incomplete, to reset the
// peers' streams. It reports the final progress before returning.
func (f *fetch) run(ctx context.Context, cancel context.CancelFunc) {
	f.jobs = make(chan putJob, 2)
	var workers sync.WaitGroup
	for range putWorkers {
		workers.Go(func() {
			for j := range f.jobs {
				f.put(j)
			}
		})
	}
	var wg sync.WaitGroup
	for _, p := range f.peers {
		wg.Go(func() { f.runPeer(p) })
	}
	f.watch(ctx)
	// A failed or cancelled fetch resets its streams (through ctx); a
	// complete one lets each peer's runner end its stream itself, keeping
	// the clean ones for the next fetch (streampool.go).
	f.mu.Lock()
	complete := f.remaining == 0
	f.mu.Unlock()
	if !complete {
		cancel()
	}
	wg.Wait()
	close(f.jobs)
	workers.Wait()
	f.report(true)
}

// result is the error a finished fetch returns (nil if it got every chunk).
func (f *fetch) result(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.remaining == 0:
		return nil
	case f.err != nil:
		return fmt.Errorf("fetch %v: %w", f.blob, f.err)
	default:
		if err := context.Cause(ctx); err != nil && f.s.ctx.Err() == nil {
			return fmt.Errorf("fetch %v: %d chunks left: %w", f.blob, f.remaining, err)
		}
		return fmt.Errorf("fetch %v: %d chunks left: %w", f.blob, f.remaining, ErrClosed)
	}
}

// pokeAll wakes every peer's writer. Called with mu held.
func (f *fetch) pokeAll() {
	for _, p := range f.peers {
		select {
		case p.poke <- struct{}{}:
		default:
		}
	}
}

// checkStuck finishes the fetch with ErrUnavailable when no live peer has a
// request in flight or anything left to request. Called with mu held.
func (f *fetch) checkStuck() {
	if f.ended || f.remaining == 0 {
		return
	}
	for _, p := range f.peers {
		if p.dead {
			continue
		}
		if p.has == nil || len(p.inflight) > 0 {
			return
		}
		for i := p.cursor; i < len(f.chunks); i++ {
			if !f.chunks[i].done && p.has[i] {
				return
			}
		}
	}
	f.finish(errors.Join(append([]error{fmt.Errorf("%d chunks: %w", f.remaining, ErrUnavailable)}, f.peerErrs...)...))
}

// kill drops a peer from this fetch and requeues its requests. Called with
// mu held.
func (f *fetch) kill(p *peerState, why error) {
	if p.dead {
		return
	}
	p.dead = true
	p.log.Info("dropping peer from transfer", "err", why, "inflight", len(p.inflight))
	f.peerErrs = append(f.peerErrs, fmt.Errorf("peer %s: %w", p.id, why))
	for _, r := range p.inflight {
		f.chunks[r.idx].inflight--
		for _, q := range f.peers {
			q.cursor = min(q.cursor, r.idx)
		}
	}
	clear(p.inflight)
	clear(p.asked)
	if p.stream != nil {
		p.stream.Reset()
	}
	f.pokeAll()
	f.checkStuck()
}

// pick chooses up to n chunks for p: fresh ones first, then (endgame)
// chunks in flight at exactly one other peer. Called with mu held.
func (f *fetch) pick(p *peerState, n int) []int {
	for p.cursor < len(f.chunks) && (f.chunks[p.cursor].done || !p.has[p.cursor]) {
		p.cursor++
	}
	var out []int
	for i := p.cursor; i < len(f.chunks) && len(out) < n; i++ {
		c := &f.chunks[i]
		if !c.done && c.inflight == 0 && p.has[i] {
			out = append(out, i)
		}
	}
	if len(out) == 0 && len(p.inflight) < minWindow {
		for i := p.cursor; i < len(f.chunks) && len(out) < n; i++ {
			c := &f.chunks[i]
			if !c.done && c.inflight == 1 && p.has[i] && !p.asked[i] {
				out = append(out, i)
			}
		}
	}
	return out
}

// adapt updates p's window from one response time, TCP-Vegas style: it
// estimates how many requests sit queued at the peer as
// window × (1 − best/current) in seconds per byte, and grows the window while
// fewer than 2 are queued (the pipe could carry more), shrinking it when more
// than 4 are (they add latency and hold chunks a faster peer could take).
// Called with mu held.
func (p *peerState) adapt(rtt time.Duration, size uint32) {
	spb := rtt.Seconds() / float64(size)
	if spb <= 0 {
		return
	}
	if p.base == 0 || spb < p.base {
		p.base = spb
	}
	queued := float64(p.window) * (1 - p.base/spb)
	switch {
	case queued < 2 && p.window < maxWindow:
		p.window++
	case queued > 4 && p.window > minWindow:
		p.window--
	}
}

// writeLoop sends GET requests as p's window allows, until the fetch ends or
// p dies.
func (f *fetch) writeLoop(p *peerState, w *bufio.Writer) {
	var frame []byte
	for {
		f.mu.Lock()
		if p.dead || f.ended {
			f.mu.Unlock()
			return
		}
		var picked []int
		if p.has != nil {
			picked = f.pick(p, p.window-len(p.inflight))
		}
		frame = frame[:0]
		now := time.Now()
		if len(picked) > 0 {
			p.log.Debug("requesting", "chunks", picked, "window", p.window, "inflight", len(p.inflight))
		}
		for _, i := range picked {
			id := p.nextReq
			p.nextReq++
			p.inflight[id] = request{idx: i, sentAt: now}
			p.asked[i] = true
			f.chunks[i].inflight++
			frame = getReq{ReqID: id, Blob: f.blob, ID: f.chunks[i].ref.ID}.append(frame)
		}
		f.mu.Unlock()
		if len(picked) > 0 {
			f.s.c.chunksRequested.Add(int64(len(picked)))
			_, err := w.Write(frame)
			if err == nil {
				err = w.Flush()
			}
			if err != nil {
				f.mu.Lock()
				f.kill(p, fmt.Errorf("send requests: %w", err))
				f.mu.Unlock()
				return
			}
		}
		select {
		case <-p.poke:
		case <-f.finished:
			return
		case <-f.ctx.Done():
			return
		}
	}
}

// readLoop handles p's responses until the stream fails or the fetch ends.
// It returns the error that ended it (nil when it stopped by itself).
func (f *fetch) readLoop(p *peerState, r *bufio.Reader, nBatches int) (readErr error) {
	var bufp *[]byte
	defer func() {
		if bufp != nil {
			f.s.putBuf(bufp)
		}
	}()
	fail := func(err error) {
		f.mu.Lock()
		if !f.ended && f.ctx.Err() == nil {
			f.kill(p, err)
		}
		f.mu.Unlock()
	}
	for {
		// A buffer of the frame's size class (plus the page chunkShift may
		// use): a small chunk holds a small buffer while it waits to be
		// stored.
		need := 0 // no header: readFrame reports why
		if hdr, err := r.Peek(frameHeader); err == nil {
			need = min(frameBufSize, frameHeader+int(binary.BigEndian.Uint32(hdr[1:]))+pageSize)
		}
		if bufp != nil && bufClassOf(len(*bufp)) != bufClassOf(need) {
			f.s.putBuf(bufp)
			bufp = nil
		}
		if bufp == nil {
			bufp = f.s.getBuf(need)
		}
		typ, payload, err := readFrame(r, (*bufp)[f.chunkShift(p, r, *bufp):])
		if err != nil {
			fail(fmt.Errorf("read: %w", err))
			return err
		}
		msg, err := decode(typ, payload)
		if err != nil || typ&0x80 == 0 {
			fail(fmt.Errorf("bad response: %w", err))
			return
		}
		switch m := msg.(type) {
		case errorResp:
			if !f.onError(p, m) {
				return
			}
		case haveResp:
			if !f.onHave(p, m, nBatches) {
				return
			}
		case chunkResp:
			ok, took := f.onChunk(p, m, bufp)
			if took {
				bufp = nil
			}
			if !ok {
				return
			}
		default:
			fail(fmt.Errorf("unexpected message type %#x", typ))
			return
		}
	}
}

// pageSize is the alignment chunkShift gives received chunk data: a page,
// a multiple of the blocks of direct I/O.
const pageSize = 4096

// chunkShift returns where in buf (pageSize bytes longer than a frame) to
// read the next frame so that, if it is a CHUNK answer, its data sits at
// the same offset within a page as the chunk's place in the blob. A sink
// writing the chunk into the blob's file with O_DIRECT can then write the
// page-aligned middle straight from the buffer instead of copying it into
// an aligned one (a copy of every received byte, about 2% of the
// receiver's CPU in a 1 GiB transfer). It only peeks at what readFrame
// reads next, never waiting for more bytes than a frame header and a
// request ID the header says are coming.
func (f *fetch) chunkShift(p *peerState, r *bufio.Reader, buf []byte) int {
	hdr, err := r.Peek(frameHeader)
	if err != nil || hdr[0] != msgChunk || binary.BigEndian.Uint32(hdr[1:]) <= chunkRespHead {
		return 0
	}
	hdr, err = r.Peek(frameHeader + 4)
	if err != nil {
		return 0
	}
	f.mu.Lock()
	req, ok := p.inflight[binary.BigEndian.Uint32(hdr[frameHeader:])]
	var off int64
	if ok {
		off = f.chunks[req.idx].off
	}
	f.mu.Unlock()
	if !ok {
		return 0 // readFrame and onChunk report it
	}
	// Data starts chunkRespHead bytes into the payload: place it at
	// address ≡ off (mod pageSize).
	base := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return int((uintptr(off) - chunkRespHead - base) & (pageSize - 1))
}

func (f *fetch) onError(p *peerState, m errorResp) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, isGet := p.inflight[m.ReqID]
	if m.Code == codeNotFound && isGet {
		delete(p.inflight, m.ReqID)
		delete(p.asked, r.idx)
		p.has[r.idx] = false
		f.chunks[r.idx].inflight--
		for _, q := range f.peers {
			q.cursor = min(q.cursor, r.idx)
		}
		f.pokeAll()
		f.checkStuck()
		return !p.dead
	}
	err := fmt.Errorf("peer error %d on request %d: %q", m.Code, m.ReqID, m.Text)
	if m.Code == codeRefused {
		err = fmt.Errorf("%w: %q", ErrRefused, m.Text)
	}
	f.kill(p, err)
	return false
}

func (f *fetch) onHave(p *peerState, m haveResp, nBatches int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.ReqID == 0 || int(m.ReqID) > nBatches {
		f.kill(p, fmt.Errorf("have response to unknown request %d", m.ReqID))
		return false
	}
	off := int(m.ReqID-1) * maxHaveIDs
	want := min(maxHaveIDs, len(f.chunks)-off)
	if int(m.Count) != want {
		f.kill(p, fmt.Errorf("have response for %d chunks, asked %d", m.Count, want))
		return false
	}
	if p.has == nil {
		p.has = make([]bool, len(f.chunks))
	}
	for i := range want {
		p.has[off+i] = m.Bitmap[i/8]&(1<<(i%8)) != 0
	}
	p.haveLeft--
	if p.haveLeft > 0 {
		return true
	}
	p.cursor = 0
	select {
	case p.poke <- struct{}{}:
	default:
	}
	f.checkStuck()
	return true
}

// onChunk checks a chunk answer against its request and queues it for the
// put workers, which then own bufp (took is true).
func (f *fetch) onChunk(p *peerState, m chunkResp, bufp *[]byte) (ok, took bool) {
	f.mu.Lock()
	r, ok := p.inflight[m.ReqID]
	if !ok {
		f.kill(p, fmt.Errorf("chunk for unknown request %d", m.ReqID))
		f.mu.Unlock()
		return false, false
	}
	c := f.chunks[r.idx]
	if m.ID != c.ref.ID || len(m.Data) != int(c.ref.Size) {
		f.s.c.badChunks.Add(1)
		f.kill(p, fmt.Errorf("sent %v (%d bytes) for %v (%d bytes): %w", m.ID, len(m.Data), c.ref.ID, c.ref.Size, blobs.ErrMismatch))
		f.mu.Unlock()
		return false, false
	}
	dup := c.done
	f.mu.Unlock()
	if dup {
		// Not stored, but still verified: a peer whose bad chunks always
		// lose the race to a good peer's is dropped all the same.
		if blobs.SumChunk(m.Data) != c.ref.ID {
			f.mu.Lock()
			if !p.dead {
				f.s.c.badChunks.Add(1)
				f.kill(p, fmt.Errorf("chunk %v: data does not match its hash: %w", c.ref.ID, blobs.ErrMismatch))
			}
			f.mu.Unlock()
			return false, false
		}
		f.put(putJob{p: p, reqID: m.ReqID, req: r, ref: c.ref, recv: time.Now()})
		return true, false
	}
	f.jobs <- putJob{p: p, reqID: m.ReqID, req: r, ref: c.ref, recv: time.Now(), data: m.Data, buf: bufp}
	return true, true
}

// put stores a received chunk (the store verifies it first) and updates the
// fetch. Chunks received before a cancellation are still stored, so a
// restart does not fetch them again.
func (f *fetch) put(j putJob) {
	p, c, r := j.p, j.ref, j.req
	var err error
	dup := j.data == nil
	if !dup {
		err = f.sink.Put(context.WithoutCancel(f.ctx), c.ID, j.data)
		f.s.putBuf(j.buf)
	}
	f.mu.Lock()
	if errors.Is(err, blobs.ErrMismatch) {
		// Put workers verify in parallel, so a second bad chunk from a peer
		// can fail after the first already dropped it: count each peer's
		// bad data once, when it is dropped.
		if !p.dead {
			f.s.c.badChunks.Add(1)
			f.kill(p, fmt.Errorf("chunk %v: %w", c.ID, err))
		}
		f.mu.Unlock()
		return
	}
	if err != nil {
		if f.ctx.Err() == nil {
			f.finish(fmt.Errorf("store chunk %v: %w", c.ID, err))
		}
		f.mu.Unlock()
		return
	}
	st := &f.chunks[r.idx]
	if _, still := p.inflight[j.reqID]; still { // not requeued by kill meanwhile
		delete(p.inflight, j.reqID)
		delete(p.asked, r.idx)
		st.inflight--
		p.adapt(j.recv.Sub(r.sentAt), c.Size)
	}
	if dup || st.done {
		f.s.c.duplicates.Add(1)
	} else {
		// Stored and verified: done, even if p died meanwhile.
		st.done = true
		f.progressAt = time.Now()
		f.remaining--
		f.doneBytes += int64(c.Size)
		f.fetched += int64(c.Size)
		p.received += int64(c.Size)
		f.s.c.chunksReceived.Add(1)
		f.s.c.bytesReceived.Add(int64(c.Size))
		if f.remaining == 0 {
			f.finish(nil)
		}
	}
	// The last answer in flight may leave nothing any peer can be asked
	// for: a chunk a peer said "not found" to while other requests were in
	// flight (its file changed under it) is then not to be had, and the
	// fetch must end now rather than wait for the idle backstop (chaos
	// harness, seeds 8 and 10 under load).
	f.checkStuck()
	select {
	case p.poke <- struct{}{}:
	default:
	}
	f.mu.Unlock()
	f.report(false)
}
