package tunnel

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/network"
)

// bufSize is the copy buffer per direction per connection. Large buffers
// mean fewer, larger yamux frames and syscalls; it is also the most a
// direction holds in this package (see "Back-pressure" in doc.go).
const bufSize = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// halfConn is what join needs of either side: *net.TCPConn and
// network.Stream both have it.
type halfConn interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// link is one tunnelled connection in progress: a local TCP connection
// joined to a stream.
type link struct {
	tcp    *net.TCPConn
	st     network.Stream
	once   sync.Once
	closed chan struct{}
}

func newLink(tcp *net.TCPConn, st network.Stream) *link {
	return &link{tcp: tcp, st: st, closed: make(chan struct{})}
}

// abort tears both sides down at once: the stream is reset and the TCP
// connection closed with a RST, so each peer sees an error rather than a
// clean end of stream.
func (l *link) abort() {
	l.once.Do(func() {
		_ = l.st.Reset()
		_ = l.tcp.SetLinger(0)
		_ = l.tcp.Close()
		close(l.closed)
	})
}

// finish closes both sides after both directions ended cleanly.
func (l *link) finish() {
	l.once.Do(func() {
		_ = l.st.Close()
		_ = l.tcp.Close()
		close(l.closed)
	})
}

// run copies in both directions until both have ended (each clean end of
// input is passed on as a half-close) or one fails (then both sides are
// aborted). It runs one direction itself and the other in a goroutine
// tracked by wg; it returns after both, with the first error. up counts
// bytes TCP→stream, down stream→TCP.
func (l *link) run(wg *sync.WaitGroup, up, down *atomic.Int64) error {
	done := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			if v := recover(); v != nil {
				l.abort()
				done <- fmt.Errorf("panic copying to %s over %s: %v\n%s", l.st.Conn().RemotePeer(), ProtocolID, v, debug.Stack())
			}
		}()
		done <- l.copy(l.st, l.tcp, up)
	}()
	err1 := l.copy(l.tcp, l.st, down)
	err2 := <-done
	if err1 != nil || err2 != nil {
		l.abort()
		return errors.Join(err1, err2)
	}
	l.finish()
	return nil
}

// copy copies src to dst; at src's clean end it half-closes dst. On error it
// aborts the link, which unblocks the other direction.
func (l *link) copy(dst, src halfConn, n *atomic.Int64) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	// Hide ReadFrom/WriteTo: *net.TCPConn would fall back to io.Copy's own
	// 32 KiB buffer for a non-socket peer.
	_, err := io.CopyBuffer(countingWriter{w: dst, n: n}, readerOnly{src}, *bp)
	if err == nil {
		err = dst.CloseWrite()
	}
	if err != nil {
		l.abort()
	}
	return err
}

type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if w.n != nil {
		w.n.Add(int64(n))
	}
	return n, err
}

// isClosedErr reports errors that only say a side was closed or reset,
// which teardown produces and which are not worth a warning.
func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, network.ErrReset)
}
