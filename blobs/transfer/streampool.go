package transfer

import (
	"bufio"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Idle blob streams, kept per peer for the next fetch. A folder of small
// files is one fetch per file; opening a stream for each (yamux open and
// close frames, protocol negotiation, two handler goroutines on the other
// side) cost more than the file's bytes. A stream goes back to the pool only
// after a fetch that ended cleanly: every request answered, nothing left
// unread. The protocol is stateless between requests (each names its
// blob), and the serving side checks membership on every request, so a
// reused stream grants nothing a new one would not.

// maxIdlePerPeer bounds the idle streams kept per peer.
const maxIdlePerPeer = 16

// idleStream is a stream with its buffered reader and writer. read counts
// when bytes last arrived on it (the stall check in fetch.go).
type idleStream struct {
	st   network.Stream
	r    *bufio.Reader
	w    *bufio.Writer
	read *lastRead
}

// newIdleStream wraps a new stream with pooled buffers and a read clock.
func newIdleStream(st network.Stream) *idleStream {
	lr := &lastRead{r: st}
	return &idleStream{st: st, r: poolIO.reader(lr), w: pool64K.writer(st), read: lr}
}

// lastRead is an io.Reader that notes when it last returned bytes.
type lastRead struct {
	r    io.Reader
	nano atomic.Int64 // time.Now().UnixNano() of the last read with n > 0
}

func (l *lastRead) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if n > 0 {
		l.nano.Store(time.Now().UnixNano())
	}
	return n, err
}

// at is when bytes last arrived (the zero time if never).
func (l *lastRead) at() time.Time {
	if n := l.nano.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// takeStream returns an idle stream to p, or nil.
func (s *Service) takeStream(p peer.ID) *idleStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		l := s.idle[p]
		if len(l) == 0 {
			return nil
		}
		is := l[len(l)-1]
		s.idle[p] = l[:len(l)-1]
		if is.st.Conn().IsClosed() {
			is.release(true)
			continue
		}
		return is
	}
}

// putStream keeps a clean stream for the next fetch from its peer (or
// closes it when the pool is full or the service closed).
func (s *Service) putStream(is *idleStream) {
	s.mu.Lock()
	p := is.st.Conn().RemotePeer()
	if s.closed || len(s.idle[p]) >= maxIdlePerPeer {
		s.mu.Unlock()
		is.release(true)
		return
	}
	if s.idle == nil {
		s.idle = make(map[peer.ID][]*idleStream)
	}
	s.idle[p] = append(s.idle[p], is)
	s.mu.Unlock()
}

// closeIdle closes every idle stream (Close).
func (s *Service) closeIdle() {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, l := range idle {
		for _, is := range l {
			is.release(true)
		}
	}
}

// release returns the buffers to their pools, closing the stream if asked.
func (is *idleStream) release(closeStream bool) {
	if closeStream {
		is.st.Close()
	}
	poolIO.putReader(is.r)
	pool64K.putWriter(is.w)
}

// isTimeout reports whether err is a read deadline passing (yamux and QUIC
// streams report it differently).
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
