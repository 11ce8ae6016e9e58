package localapi

// Bounds on the HTTP API and the control socket (issue 14, row 9): 1,005
// idle keep-alive connections to the HTTP API used to take every file
// descriptor meshd had, and then the control socket and the network went
// with them.
//
//   - Each listener has its own connection budget (connBudgets), sized from
//     the process's RLIMIT_NOFILE so the TCP listener alone can never reach
//     it, and the control socket keeps answering the local CLI while the TCP
//     listener is full.
//   - When a listener is at its budget, a new connection evicts the one
//     that has been waiting longest without being in a handler: idle
//     keep-alive connections and connections still sending their request
//     header. Connections whose request is being served (an events stream,
//     a download) are never evicted; when every slot is serving, new
//     connections wait in the kernel's backlog.
//   - Timeouts (serverTimeouts): a request header must arrive within
//     ReadHeaderTimeout, an idle keep-alive connection is closed after
//     IdleTimeout, and on the TCP listener a whole request must be read and
//     answered within ReadTimeout/WriteTimeout. Routes that stream (events,
//     news follow, file and blob up/downloads) call streaming, which lifts
//     those for the request and instead requires progress: each write, and
//     each read of an upload body, must complete within streamStall.
//
// Go (1.19 and later, package syscall's init) raises the process's soft
// RLIMIT_NOFILE to its hard limit less one at start, so meshd need not:
// it uses the descriptors it is allowed (TestHostileHTTPFlood checks).

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

const (
	headerTimeout = 10 * time.Second // ReadHeaderTimeout on both listeners
	httpIdle      = 30 * time.Second // IdleTimeout of the TCP listener
	socketIdle    = 2 * time.Minute  // IdleTimeout of the control socket
	httpRequest   = 2 * time.Minute  // TCP ReadTimeout and WriteTimeout, non-streaming routes
	streamStall   = time.Minute      // streaming routes: longest wait for one read or write
)

// connBudgets are the connection limits of the HTTP API's TCP listener and
// of the control socket for a process allowed nofile descriptors (0:
// unknown). The TCP listener gets an eighth (libp2p's resource manager
// takes up to half), the control socket a separate, smaller budget.
func connBudgets(nofile uint64) (tcp, unix int) {
	if nofile == 0 {
		nofile = 1024
	}
	clamp := func(v uint64, lo, hi int) int { return int(max(uint64(lo), min(v, uint64(hi)))) }
	return clamp(nofile/8, 16, 512), clamp(nofile/32, 8, 64)
}

// serve wires l into srv: srv's ConnState and ConnContext track l's
// connections, and its handler marks the ones being served.
func (l *limitListener) serve(srv *http.Server) {
	srv.ConnState = l.connState
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if lc, ok := c.(*limitConn); ok {
			return context.WithValue(ctx, limitConnKey{}, lc)
		}
		return ctx
	}
	next := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lc, ok := r.Context().Value(limitConnKey{}).(*limitConn); ok {
			l.setBusy(lc)
		}
		next.ServeHTTP(w, r)
	})
}

type limitConnKey struct{}

// limitListener is a net.Listener that holds at most cap(slots)
// connections, evicting the longest-waiting one not being served when full.
type limitListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	once  sync.Once

	mu    sync.Mutex
	conns map[*limitConn]struct{} // open connections; guarded by mu
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{}), conns: map[*limitConn]struct{}{}}
}

// limitConn is one accepted connection; its slot is freed once, on Close.
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once

	// guarded by l.mu
	busy  bool      // a handler is serving a request on it
	since time.Time // when it last became not busy
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		<-c.l.slots
	})
	return err
}

// Accept implements net.Listener.
func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for {
		select {
		case l.slots <- struct{}{}:
			return l.admit(c), nil
		default:
		}
		if l.evict() {
			continue
		}
		select { // every slot is serving: wait for one
		case l.slots <- struct{}{}:
			return l.admit(c), nil
		case <-l.done:
			c.Close()
			return nil, net.ErrClosed
		}
	}
}

// admit tracks c, which has a slot.
func (l *limitListener) admit(c net.Conn) *limitConn {
	lc := &limitConn{Conn: c, l: l, since: time.Now()}
	l.mu.Lock()
	l.conns[lc] = struct{}{}
	l.mu.Unlock()
	return lc
}

// evict closes the connection that has waited longest outside a handler,
// reporting whether there was one.
func (l *limitListener) evict() bool {
	var oldest *limitConn
	l.mu.Lock()
	for c := range l.conns {
		if !c.busy && (oldest == nil || c.since.Before(oldest.since)) {
			oldest = c
		}
	}
	l.mu.Unlock()
	if oldest == nil {
		return false
	}
	oldest.Close()
	return true
}

// Close implements net.Listener.
func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *limitListener) setBusy(c *limitConn) {
	l.mu.Lock()
	c.busy = true
	l.mu.Unlock()
}

// connState is the server's ConnState hook: a connection stops being busy
// when it goes idle between requests; hijacked ones are no longer the
// server's (they keep their slot until closed).
func (l *limitListener) connState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*limitConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch st {
	case http.StateIdle:
		c.busy, c.since = false, time.Now()
	case http.StateHijacked:
		c.busy = true
	}
}

// streaming lifts the whole-request timeouts for a request that streams
// (an events stream, a follow, a download or an upload) and requires
// progress instead: each write of the answer and each read of the body
// must complete within streamStall. It returns the writer to use.
func streaming(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{}) // no body, or one read below; the server reads to notice a close
	_ = rc.SetWriteDeadline(time.Now().Add(streamStall))
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &stallReader{ReadCloser: r.Body, rc: rc}
	}
	return &stallWriter{ResponseWriter: w, rc: rc}
}

// stallWriter moves the write deadline forward before each write.
type stallWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (s *stallWriter) Write(b []byte) (int, error) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(streamStall))
	return s.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (s *stallWriter) Flush() {
	_ = s.rc.SetWriteDeadline(time.Now().Add(streamStall))
	_ = s.rc.Flush()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (s *stallWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// stallReader sets the read deadline before each read of the body and
// clears it once the body has ended (the server then reads on its own to
// notice the client going away).
type stallReader struct {
	io.ReadCloser
	rc *http.ResponseController
}

func (s *stallReader) Read(b []byte) (int, error) {
	_ = s.rc.SetReadDeadline(time.Now().Add(streamStall))
	n, err := s.ReadCloser.Read(b)
	if err != nil {
		_ = s.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
