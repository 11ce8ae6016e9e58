package localapi

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// arServe serves h on a loopback limitListener of budget n.
func arServe(t *testing.T, srv *http.Server, n int) (string, *limitListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := newLimitListener(ln, n)
	ll.serve(srv)
	go func() { _ = srv.Serve(ll) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), ll
}

// arWaitBusy waits until exactly n of l's connections are inside a handler
// (the server marks a connection idle after its response, asynchronously).
func arWaitBusy(t *testing.T, l *limitListener, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		busy := 0
		for c := range l.conns {
			if c.busy {
				busy++
			}
		}
		l.mu.Unlock()
		if busy == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections busy, want %d", busy, n)
		}
		time.Sleep(time.Millisecond) // polling the listener's state
	}
}

// TestLimitListenerEvictsIdle: with every slot held by idle or half-sent
// connections, a new request is served and the oldest idle one is closed;
// a connection inside a handler (a stream) is never evicted.
func TestLimitListenerEvictsIdle(t *testing.T) {
	streaming := make(chan struct{})
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			close(streaming)
			<-release
			return
		}
		_, _ = io.WriteString(w, "ok")
	})}
	defer close(release)
	addr, ll := arServe(t, srv, 3)
	stream, err := http.Get("http://" + addr + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	<-streaming
	idle, err := net.Dial("tcp", addr) // sends a request, then stays idle
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_, _ = io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("idle connection's request: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	arWaitBusy(t, ll, 1)               // only the stream: idle has gone idle
	half, err := net.Dial("tcp", addr) // half a header
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	_, _ = io.WriteString(half, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: a")

	// Two new clients that keep their connections: each needs a slot, and
	// takes the one of a connection waiting outside a handler.
	for i := range 2 {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("http://" + addr + "/")
		if err != nil {
			t.Fatalf("request %d with every slot taken: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// Both waiting connections are closed (the deadline only guards
	// against a hang: a closed connection reads EOF at once).
	// A server that closes a connection with bytes it has not read (the
	// half-sent header) makes Linux send a reset instead of a FIN: a reset
	// says closed as well as EOF does; a timeout does not.
	closed := func(err error) bool { return err == io.EOF || errors.Is(err, syscall.ECONNRESET) }
	_ = idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); !closed(err) {
		t.Fatalf("idle connection: read %v, want EOF or a reset (evicted)", err)
	}
	_ = half.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := half.Read(make([]byte, 1)); !closed(err) {
		t.Fatalf("half-sent connection: read %v, want EOF or a reset (evicted)", err)
	}
	// The stream was not evicted: its handler is still running.
	select {
	case <-streaming:
	default:
		t.Fatal("stream never started")
	}
	if _, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/"); err != nil {
		t.Fatalf("request after the evictions: %v", err)
	}
}

// TestStreamingOutlivesRequestTimeouts: a handler that calls streaming
// keeps writing past the server's ReadTimeout and WriteTimeout, which end
// a handler that does not.
func TestStreamingOutlivesRequestTimeouts(t *testing.T) {
	const lines = 8
	srv := &http.Server{ReadTimeout: 150 * time.Millisecond, WriteTimeout: 150 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/stream" {
				w = streaming(w, r)
			}
			w.WriteHeader(200)
			for i := range lines {
				_, _ = io.WriteString(w, "line\n")
				w.(http.Flusher).Flush()
				if i < lines-1 {
					select {
					case <-r.Context().Done():
						return
					case <-time.After(50 * time.Millisecond): // paces the stream past the timeouts
					}
				}
			}
		})}
	addr, _ := arServe(t, srv, 4)
	count := func(path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Count(string(b), "line\n")
	}
	if n := count("/stream"); n != lines {
		t.Fatalf("streaming route: %d lines, want %d", n, lines)
	}
	if n := count("/plain"); n == lines {
		t.Fatalf("non-streaming route outlived the server's timeouts (%d lines)", n)
	}
}
