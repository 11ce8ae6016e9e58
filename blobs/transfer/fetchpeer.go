package transfer

// One peer's part of a fetch: its stream, the HAVE requests, its reader.

import (
	"bufio"
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/meshwork/meshwork/blobs"
)

// runPeer fetches from p over one stream, then keeps or resets the stream.
//
// It returns when the fetch ends or p is dropped, with p's reader stopped.
func (f *fetch) runPeer(p *peerState) {
	is := f.openStream(p)
	if is == nil {
		return
	}
	st := is.st
	stopReset := context.AfterFunc(f.ctx, func() { st.Reset() })
	ids := f.attach(p, is)
	w := is.w
	nBatches := f.sendHave(p, w, ids)
	if err := w.Flush(); err != nil {
		stopReset()
		f.mu.Lock()
		f.kill(p, fmt.Errorf("send have: %w", err))
		f.mu.Unlock()
		st.Reset()
		is.release(false)
		return
	}

	readerDone := make(chan struct{})
	var readErr error
	go func() {
		defer close(readerDone)
		readErr = f.readAnswers(p, is, nBatches)
	}()
	f.writeLoop(p, w)
	// A fetch that ended with every request to p answered leaves the
	// stream clean: its reader is stopped by a deadline instead of a reset,
	// and the stream kept for the next fetch from p.
	reuse := stopReset()
	if reuse {
		f.mu.Lock()
		reuse = f.remaining == 0 && !p.dead && len(p.inflight) == 0 && p.haveLeft == 0
		f.mu.Unlock()
	}
	// The reader is woken by a read deadline in the past (cleared again
	// below) when the stream is to be kept, by a reset otherwise.
	if reuse && st.SetReadDeadline(time.Now()) == nil {
		<-readerDone
		if isTimeout(readErr) && is.r.Buffered() == 0 && st.SetReadDeadline(time.Time{}) == nil {
			f.s.putStream(is)
			return
		}
	}
	st.Reset()
	<-readerDone
	is.release(false)
}

// openStream takes an idle stream to p or opens one; nil if p was dropped.
func (f *fetch) openStream(p *peerState) *idleStream {
	if is := f.s.takeStream(p.id); is != nil {
		return is
	}
	// Relayed connections are allowed; the daemon raises the relay limits.
	st, err := f.s.host.NewStream(network.WithAllowLimitedConn(f.ctx, "meshwork blobs"), p.id, ProtocolID)
	if err != nil {
		f.mu.Lock()
		f.kill(p, fmt.Errorf("open stream: %w", err))
		f.mu.Unlock()
		return nil
	}
	return newIdleStream(st)
}

// attach makes is p's stream and returns the IDs of the chunks to fetch.
func (f *fetch) attach(p *peerState, is *idleStream) []blobs.ChunkID {
	f.mu.Lock()
	defer f.mu.Unlock()
	p.stream = is.st
	p.read, p.started = is.read, time.Now()
	ids := make([]blobs.ChunkID, len(f.chunks))
	for i, c := range f.chunks {
		ids[i] = c.ref.ID
	}
	return ids
}

// sendHave writes, unflushed, the HAVE batches for ids and returns their count.
//
// HAVE batches carry request IDs 1..n; their index tells the offset. A
// lone peer asked for a lone chunk gets no HAVE: its answer to the GET
// says the same (the chunk, or "not found"), and a small file then costs
// the server one request instead of two.
func (f *fetch) sendHave(p *peerState, w *bufio.Writer, ids []blobs.ChunkID) int {
	var frame []byte
	nBatches := 0
	f.mu.Lock()
	skipHave := len(f.peers) == 1 && len(ids) == 1
	f.mu.Unlock()
	for off := 0; off < len(ids) && !skipHave; off += maxHaveIDs {
		end := min(off+maxHaveIDs, len(ids))
		nBatches++
		frame = haveReq{ReqID: uint32(nBatches), Blob: f.blob, IDs: ids[off:end]}.append(frame[:0])
		if _, err := w.Write(frame); err != nil {
			break
		}
	}
	f.mu.Lock()
	p.haveLeft = nBatches
	p.nextReq = uint32(nBatches) + 1
	if len(f.peers) == 1 && p.has == nil {
		// One peer: there is nothing to choose between, so request at
		// once instead of waiting a round trip for the HAVE answer (a
		// small file is then one round trip). A chunk the peer lacks comes
		// back "not found" and is marked so; the HAVE answer, when it
		// comes, corrects the rest.
		p.has = make([]bool, len(f.chunks))
		for i := range p.has {
			p.has[i] = true
		}
	}
	f.mu.Unlock()
	return nBatches
}

// readAnswers runs readLoop for p and returns its error.
//
// A reader that stops (or panics) while the fetch goes on drops p.
func (f *fetch) readAnswers(p *peerState, is *idleStream, nBatches int) (readErr error) {
	defer func() { // backstop: a panic parsing p's answers drops p, not the daemon
		if v := recover(); v != nil {
			p.log.Error("panic reading blob answers; stream reset", "peer", p.id, "proto", ProtocolID,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			readErr = fmt.Errorf("panic reading answers of %s: %v", p.id, v)
			is.st.Reset()
			f.mu.Lock()
			if !f.ended {
				f.kill(p, readErr)
			}
			f.mu.Unlock()
		}
	}()
	readErr = f.readLoop(p, is.r, nBatches)
	// A reader that stopped while the fetch goes on (an answer it would
	// not take) leaves p unable to progress: drop it, so its writer ends
	// and its chunks go to the others, instead of the writer waiting for
	// good (chaos harness, seed 8 of make test).
	f.mu.Lock()
	if !f.ended && !p.dead && f.ctx.Err() == nil {
		f.kill(p, fmt.Errorf("stopped reading answers: %v", readErr))
	}
	f.mu.Unlock()
	return readErr
}
