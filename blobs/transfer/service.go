package transfer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"golang.org/x/time/rate"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshwork/meshwork/blobs"
)

// ProtocolID is the libp2p protocol of this package.
const ProtocolID protocol.ID = "/meshwork/blobs/1.0.0"

// Sentinel errors.
var (
	ErrRefused     = errors.New("peer refused")
	ErrUnavailable = errors.New("chunks unavailable from every peer")
	ErrClosed      = errors.New("transfer service closed")
	// ErrStalled: a peer owed answers and sent nothing for StallTimeout;
	// it is dropped from that fetch (its chunks go to the other peers).
	ErrStalled = errors.New("peer stalled")
)

// Authorizer decides who may read what; the daemon implements it with the
// membership log. It must be fast and safe for concurrent use.
type Authorizer interface {
	// IsMember reports whether p is a current member of the mesh. A
	// non-member's stream is refused before any request is read. Both
	// methods are asked on every request and must be fast.
	IsMember(p peer.ID) bool
	// CanRead reports whether p may read the blob (a file's content). A
	// chunk is served only to a peer that may read a blob listing it.
	CanRead(p peer.ID, blob blobs.BlobRef) bool
}

// Store is what the service needs of the chunk store (see package store).
type Store interface {
	Get(ctx context.Context, id blobs.ChunkID, buf []byte) ([]byte, error)
	// Put must verify that data hashes to id before writing, and return an
	// error wrapping blobs.ErrMismatch if not.
	Put(ctx context.Context, id blobs.ChunkID, data []byte) error
	Has(ctx context.Context, id blobs.ChunkID) (bool, error)
	HasInBlob(ctx context.Context, blob blobs.BlobRef, id blobs.ChunkID) (bool, error)
	Manifest(ctx context.Context, ref blobs.BlobRef) (blobs.Manifest, error)
	Pin(ctx context.Context, m blobs.Manifest) (blobs.BlobRef, error)
}

// Stats are the service's counters since New.
type Stats struct {
	ChunksRequested int64 // GET requests sent
	ChunksReceived  int64 // chunks received and verified
	BytesReceived   int64
	BadChunks       int64 // bad chunks that dropped a peer (ones still in flight from a dropped peer are discarded uncounted)
	Duplicates      int64 // verified chunks already received from another peer (endgame)
	ChunksServed    int64
	BytesServed     int64
	Refused         int64 // streams or requests refused by Authorizer
	PeersStalled    int64 // peers dropped from a fetch for owing answers StallTimeout long
}

type counters struct {
	chunksRequested, chunksReceived, bytesReceived, badChunks, duplicates atomic.Int64
	chunksServed, bytesServed, refused, peersStalled                      atomic.Int64
}

// Service serves and fetches chunks over ProtocolID.
type Service struct {
	host  host.Host
	store Store
	auth  Authorizer
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	streams map[network.Stream]struct{}
	idle    map[peer.ID][]*idleStream // streampool.go

	c counters

	bufs bufPools // frame buffers by size class (bufclass.go)

	// serving bounds the chunk buffers held by all served streams together.
	serving chan struct{}
	// mem counts their memory reservations (guard.go).
	mem *memNotify

	// sendLimit, when set, caps the bytes per second this device serves
	// over all streams together (SetSendRate): every chunk answer waits
	// for its whole frame's bytes in tokens before it is written.
	sendLimit atomic.Pointer[sendLimiterRef]

	// stallTimeout: a peer of a fetch that owes answers and sends no byte
	// for this long is dropped from it (StallTimeout; tests shorten it).
	stallTimeout time.Duration
}

// StallTimeout is how long a fetch waits for a byte from a peer that owes
// it answers before dropping that peer. Progress is counted in bytes, so
// a slow link is never taken for a stalled one; only a send cap below
// 70 KB/s, where a 4 MiB chunk waits longer than this for its whole
// frame's tokens before its first byte, can be. Short enough that a
// frozen or hostile member cannot hold a transfer slot for long (chaos
// seeds 28, 33 and 61 waited for good on a peer after its restart).
const StallTimeout = 60 * time.Second

// sendLimiter is what the writer of served answers waits on: a
// *rate.Limiter made by newSendLimiter, or in tests one driven by a
// virtual clock.
type sendLimiter interface {
	WaitN(ctx context.Context, n int) error
}

type sendLimiterRef struct{ sendLimiter }

// newSendLimiter is the limiter behind SetSendRate: bytesPerSec tokens a
// second, a bucket of one largest frame (it starts full, and WaitN refuses
// a frame larger than the bucket).
func newSendLimiter(bytesPerSec int64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(bytesPerSec), maxFrame)
}

// SetSendRate caps the rate at which this device serves chunk data, over
// all peers together, in bytes per second; 0 removes the cap. Like
// Syncthing's maxSendKbps: for a device on a metered or slow uplink.
func (s *Service) SetSendRate(bytesPerSec int64) {
	if bytesPerSec <= 0 {
		s.setSendLimiter(nil)
		return
	}
	s.setSendLimiter(newSendLimiter(bytesPerSec))
}

// setSendLimiter makes every chunk answer wait on l; nil removes the cap.
func (s *Service) setSendLimiter(l sendLimiter) {
	if l == nil {
		s.sendLimit.Store(nil)
		return
	}
	s.sendLimit.Store(&sendLimiterRef{l})
}

// maxServing is how many chunks (of up to 4 MiB) may be loaded or queued for
// sending at once across all streams served.
const maxServing = 32

// New registers the ProtocolID handler on h and returns the service. Close
// unregisters it and waits for every stream it serves.
func New(h host.Host, st Store, auth Authorizer, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		host: h, store: st, auth: auth, log: logger,
		ctx: ctx, cancel: cancel,
		streams: make(map[network.Stream]struct{}),
		serving: make(chan struct{}, maxServing),
		mem:     newMemNotify(),

		stallTimeout: StallTimeout,
	}
	h.SetStreamHandler(ProtocolID, s.handle)
	return s
}

// Close stops serving, resets open streams and waits for their goroutines
// and for running fetches. Safe to call more than once.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.host.RemoveStreamHandler(ProtocolID)
	s.cancel()
	for st := range s.streams {
		st.Reset()
	}
	s.mu.Unlock()
	s.closeIdle()
	s.wg.Wait()
	return nil
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	return Stats{
		ChunksRequested: s.c.chunksRequested.Load(),
		ChunksReceived:  s.c.chunksReceived.Load(),
		BytesReceived:   s.c.bytesReceived.Load(),
		BadChunks:       s.c.badChunks.Load(),
		Duplicates:      s.c.duplicates.Load(),
		ChunksServed:    s.c.chunksServed.Load(),
		BytesServed:     s.c.bytesServed.Load(),
		Refused:         s.c.refused.Load(),
		PeersStalled:    s.c.peersStalled.Load(),
	}
}

// track registers a stream (and a goroutine) with the service; it fails
// after Close.
func (s *Service) track(st network.Stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.streams[st] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Service) untrack(st network.Stream) {
	s.mu.Lock()
	delete(s.streams, st)
	s.mu.Unlock()
	s.wg.Done()
}

// getBuf returns a pooled buffer of at least n bytes; putBuf takes it back.
func (s *Service) getBuf(n int) *[]byte { return s.bufs.get(n) }
func (s *Service) putBuf(b *[]byte)     { s.bufs.put(b) }

// releaseBuf returns a serving buffer, its memory reservation on the
// stream (its size) and its slot in s.serving.
func (s *Service) releaseBuf(b *[]byte, mem *frameMem) {
	n := len(*b)
	s.bufs.put(b)
	mem.release(n)
	<-s.serving
}

const ioBufSize = 256 << 10

// response is one answer queued for a stream's writer.
type response struct {
	frame []byte  // whole frame, or a chunk frame's header
	data  []byte  // chunk data following frame, if not inside frame
	buf   *[]byte // returned to the pool after writing
	close bool    // close the stream for writing after this response
}

// handle serves one inbound stream: requests are read by this goroutine,
// answered in order by a writer goroutine, with chunk loading (disk read and
// hash verification) overlapped with sending the previous response.
func (s *Service) handle(st network.Stream) {
	if !s.track(st) {
		st.Reset()
		return
	}
	defer s.untrack(st)
	remote := st.Conn().RemotePeer()
	log := s.log.With("peer", remote, "proto", ProtocolID)
	defer recoverStream(log, st, "serve")
	if !s.auth.IsMember(remote) {
		s.c.refused.Add(1)
		log.Info("refusing blob stream from non-member")
		w := bufio.NewWriter(st)
		w.Write(errorResp{Code: codeRefused, Text: "not a member of this mesh"}.append(nil))
		w.Flush()
		st.Close()
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	// Reset unblocks reads and writes when the service closes or the writer
	// fails; a stream that ends normally is closed instead.
	stopReset := context.AfterFunc(ctx, func() { st.Reset() })
	defer func() {
		stopReset()
		cancel()
	}()

	mem := newFrameMem(st.Scope(), s.mem)
	out := make(chan response, 2)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeAnswers(ctx, cancel, st, out, mem, log)
	}()
	defer func() {
		close(out)
		<-writerDone
		st.Close()
	}()

	send := func(r response) bool {
		select {
		case out <- r:
			return true
		case <-ctx.Done():
			if r.buf != nil {
				s.releaseBuf(r.buf, mem)
			}
			return false
		}
	}
	// Asked per request, so a device revoked mid-stream is cut off.
	allowed := func(ref blobs.BlobRef) bool {
		if s.auth.IsMember(remote) && s.auth.CanRead(remote, ref) {
			return true
		}
		s.c.refused.Add(1)
		log.Info("refusing blob request", "blob", ref)
		return false
	}
	r := pool64K.reader(st)
	defer pool64K.putReader(r)
	// Requests are read into a buffer of the largest valid request;
	// readFrame refuses a longer frame before reading it.
	reqBuf := make([]byte, maxRequestFrame)
	for {
		typ, p, err := readFrame(r, reqBuf)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, errFrame) {
				log.Debug("blob stream ended", "err", err)
				return
			}
			if errors.Is(err, errFrame) {
				log.Info("bad blob request frame", "err", err)
				send(response{frame: errorResp{Code: codeBadRequest, Text: "bad frame"}.append(nil), close: true})
			}
			return
		}
		msg, err := decode(typ, p)
		if err != nil || typ&0x80 != 0 {
			log.Info("bad blob request", "type", typ, "err", err)
			send(response{frame: errorResp{Code: codeBadRequest, Text: "bad request"}.append(nil), close: true})
			return
		}
		var rp response
		switch m := msg.(type) {
		case haveReq:
			rp = s.serveHave(ctx, m, allowed)
		case getReq:
			rp.frame, rp.data, rp.buf = s.serveGet(ctx, m, allowed, mem, log)
		case manifestReq:
			rp = s.serveManifest(ctx, m, allowed)
		}
		if !send(rp) {
			return
		}
	}
}

// writeAnswers writes a stream's answers in order as they are queued on
// out, until out is closed or a write fails (then it cancels the stream's
// context and releases what is still queued).
func (s *Service) writeAnswers(ctx context.Context, cancel context.CancelFunc, st network.Stream, out <-chan response, mem *frameMem, log *slog.Logger) {
	defer func() {
		if recoverStream(log, st, "serve writer") {
			cancel()
			for r := range out {
				if r.buf != nil {
					s.releaseBuf(r.buf, mem)
				}
			}
		}
	}()
	w := poolIO.writer(st)
	defer poolIO.putWriter(w)
	for r := range out {
		var err error
		if l := s.sendLimit.Load(); l != nil && r.buf != nil { // a chunk answer
			if err = w.Flush(); err == nil { // what is queued goes out before we wait
				err = l.WaitN(ctx, len(r.frame)+len(r.data))
			}
		}
		if err == nil {
			_, err = w.Write(r.frame)
		}
		if err == nil && r.data != nil {
			_, err = w.Write(r.data)
		}
		if r.buf != nil {
			s.releaseBuf(r.buf, mem)
		}
		if err == nil && len(out) == 0 {
			err = w.Flush()
		}
		if err != nil {
			log.Debug("blob stream write failed", "err", err)
			cancel()
			for r := range out {
				if r.buf != nil {
					s.releaseBuf(r.buf, mem)
				}
			}
			return
		}
		if r.close {
			st.CloseWrite()
		}
	}
}

func errFrameFor(id uint32, code byte, text string) []byte {
	return errorResp{ReqID: id, Code: code, Text: text}.append(nil)
}

func (s *Service) serveHave(ctx context.Context, m haveReq, allowed func(blobs.BlobRef) bool) (r response) {
	if !allowed(m.Blob) {
		r.frame = errFrameFor(m.ReqID, codeRefused, "may not read blob")
		return r
	}
	bm := make([]byte, (len(m.IDs)+7)/8)
	for i, id := range m.IDs {
		in, err := s.store.HasInBlob(ctx, m.Blob, id)
		if err != nil || !in {
			continue
		}
		if ok, err := s.store.Has(ctx, id); err == nil && ok {
			bm[i/8] |= 1 << (i % 8)
		}
	}
	r.frame = haveResp{ReqID: m.ReqID, Count: uint16(len(m.IDs)), Bitmap: bm}.append(nil)
	return r
}

func (s *Service) serveGet(ctx context.Context, m getReq, allowed func(blobs.BlobRef) bool, mem *frameMem, log *slog.Logger) ([]byte, []byte, *[]byte) {
	if !allowed(m.Blob) {
		return errFrameFor(m.ReqID, codeRefused, "may not read blob"), nil, nil
	}
	if in, err := s.store.HasInBlob(ctx, m.Blob, m.ID); err != nil || !in {
		return errFrameFor(m.ReqID, codeNotFound, "chunk not in blob"), nil, nil
	}
	// The buffer's size class is the blob's size when that is below a
	// chunk's maximum (no chunk is larger than its blob): a small file's
	// chunk holds and reserves a small buffer.
	room := int(min(max(m.Blob.Size, 1), blobs.MaxChunkSize))
	need := frameHeader + chunkRespHead + room
	size := bufClassSize(bufClassOf(need))
	if err := mem.reserve(ctx, size); err != nil {
		log.Info("no memory to serve chunk", "chunk", m.ID, "err", err)
		return errFrameFor(m.ReqID, codeInternal, "out of memory for chunk buffers"), nil, nil
	}
	select {
	case s.serving <- struct{}{}:
	case <-ctx.Done():
		mem.release(size)
		return errFrameFor(m.ReqID, codeInternal, "shutting down"), nil, nil
	}
	buf := s.getBuf(need)
	// The chunk is read (and verified by the store) straight into the
	// pooled buffer after room for the header.
	head := (*buf)[:0]
	at := (*buf)[frameHeader+chunkRespHead:][:0:room]
	data, err := s.store.Get(ctx, m.ID, at)
	if err != nil {
		s.releaseBuf(buf, mem)
		log.Debug("serve chunk", "chunk", m.ID, "err", err)
		return errFrameFor(m.ReqID, codeNotFound, "chunk not available"), nil, nil
	}
	if len(data) > room || &data[0] != &at[:1][0] {
		// Larger than the blob the request names: the request's blob size
		// is false (the store found the chunk, not the blob's size). Its
		// memory was not reserved, so it is not sent.
		s.releaseBuf(buf, mem)
		log.Info("chunk larger than the blob it was asked in; refused", "chunk", m.ID, "blob", m.Blob, "size", len(data))
		return errFrameFor(m.ReqID, codeNotFound, "chunk larger than its blob"), nil, nil
	}
	s.c.chunksServed.Add(1)
	s.c.bytesServed.Add(int64(len(data)))
	head = chunkResp{ReqID: m.ReqID, ID: m.ID, Data: data}.appendHeader(head)
	if len(head) == frameHeader+chunkRespHead && &(*buf)[len(head)] == &data[0] {
		// Header and data are contiguous in buf: one write, no copy.
		return (*buf)[:len(head)+len(data)], nil, buf
	}
	return head, data, buf
}

func (s *Service) serveManifest(ctx context.Context, m manifestReq, allowed func(blobs.BlobRef) bool) (r response) {
	if !allowed(m.Blob) {
		r.frame = errFrameFor(m.ReqID, codeRefused, "may not read blob")
		return r
	}
	man, err := s.store.Manifest(ctx, m.Blob)
	if err != nil {
		r.frame = errFrameFor(m.ReqID, codeNotFound, "manifest not available")
		return r
	}
	enc, _ := man.MarshalBinary()
	if len(enc) > maxManifestLen {
		r.frame = errFrameFor(m.ReqID, codeInternal, fmt.Sprintf("manifest of %d chunks too large for protocol 1.0.0", len(man.Chunks)))
		return r
	}
	r.frame = manifestResp{ReqID: m.ReqID, Manifest: enc}.append(nil)
	return r
}
