package tunnel

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// testLogger logs to stderr with -v, and discards otherwise.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

func newHost(t testing.TB, listen ...string) host.Host {
	t.Helper()
	if len(listen) == 0 {
		listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings(listen...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// members is a test Authorizer whose membership can change mid-test.
type members struct {
	mu sync.Mutex
	m  map[peer.ID]bool
}

func newMembers(ids ...peer.ID) *members {
	m := &members{m: make(map[peer.ID]bool)}
	for _, id := range ids {
		m.m[id] = true
	}
	return m
}

func (m *members) IsMember(p peer.ID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m[p]
}

func (m *members) set(p peer.ID, member bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[p] = member
}

// service is a TCP service on loopback that counts the connections it
// accepts, so a test can assert that a refusal never reached it.
type service struct {
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
}

func newService(t testing.TB, handle func(net.Conn)) *service {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &service{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		within(t, "service handlers to return", s.wg.Wait)
	})
	return s
}

func (s *service) addr() string { return s.ln.Addr().String() }

// echo copies input to output, then half-closes.
func echo(c net.Conn) {
	_, _ = io.Copy(c, c)
	_ = c.(*net.TCPConn).CloseWrite()
}

// testDeadline bounds every blocking step of a test, so that a bug shows
// as a failure at the step that hung rather than as the test binary's timeout.
const testDeadline = 30 * time.Second

// recv receives from ch or fails the test after testDeadline.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testDeadline):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// within runs fn and fails the test with a goroutine dump if it takes
// longer than testDeadline.
func within(t testing.TB, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(testDeadline):
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatalf("timed out waiting for %s", what)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pair is two connected hosts: a client A and a serving device B.
type pair struct {
	a, b   host.Host
	auth   *members
	server *Server
	client *Client
	events chan Event
}

func newPair(t testing.TB, listen ...string) *pair {
	t.Helper()
	p := &pair{a: newHost(t, listen...), b: newHost(t, listen...), events: make(chan Event, 1000)}
	p.auth = newMembers(p.a.ID(), p.b.ID())
	p.server = NewServer(p.b, p.auth, testLogger(t).With("side", "server"),
		WithOnOpen(func(e Event) { p.events <- e }),
		WithOnRefuse(func(e Event) { p.events <- e }))
	t.Cleanup(func() { within(t, "server close", func() { _ = p.server.Close() }) })
	p.client = NewClient(p.a, testLogger(t).With("side", "client"))
	t.Cleanup(func() { within(t, "client close", func() { _ = p.client.Close() }) })
	connect(t, p.a, p.b)
	return p
}

func (p *pair) listen(t testing.TB, svc string) *Forward {
	t.Helper()
	f, err := p.client.Listen(context.Background(), p.b.ID(), svc, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func dialTCP(t testing.TB, f *Forward) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(testDeadline))
	return c.(*net.TCPConn)
}

func TestHTTPThroughTunnel(t *testing.T) {
	p := newPair(t)
	body := make([]byte, 3<<20)
	_, _ = rand.Read(body)
	svc := newService(t, func(c net.Conn) {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(body)
		})}
		_ = srv.Serve(&oneConnListener{c: c, done: make(chan struct{})})
	})
	if err := p.server.Expose("web", svc.addr(), nil); err != nil {
		t.Fatal(err)
	}
	f := p.listen(t, "web")
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get("http://" + f.Addr().String() + "/file")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("status %d, %d bytes, equal %v", resp.StatusCode, len(got), bytes.Equal(got, body))
	}
	ev := recv(t, p.events, "open event")
	if ev.Status != StatusOK || ev.Peer != p.a.ID() || ev.Service != "web" || ev.Relayed || ev.Remote == nil || ev.Time.IsZero() {
		t.Fatalf("event %+v", ev)
	}
	eventually(t, "forward idle", func() bool { return f.Stats().Active == 0 })
	st := f.Stats()
	if st.Conns != 1 || st.Direct != 1 || st.BytesIn < int64(len(body)) || st.BytesOut == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// oneConnListener serves a single accepted connection with net/http.
type oneConnListener struct {
	c    net.Conn
	once sync.Once
	done chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = &closeNotifyConn{Conn: l.c, done: l.done} })
	if c != nil {
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}
func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.c.LocalAddr() }

type closeNotifyConn struct {
	net.Conn
	once sync.Once
	done chan struct{}
}

func (c *closeNotifyConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
}

func TestParallelConnections(t *testing.T) {
	for _, tr := range allTransports {
		t.Run(tr.name, func(t *testing.T) { testParallelConnections(t, tr.listen) })
	}
}

func testParallelConnections(t *testing.T, listen string) {
	p := newPair(t, listen)
	svc := newService(t, echo)
	if err := p.server.Expose("echo", svc.addr(), nil); err != nil {
		t.Fatal(err)
	}
	f := p.listen(t, "echo")
	const n = 50
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- func() error {
				c, err := net.Dial("tcp", f.Addr().String())
				if err != nil {
					return err
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(testDeadline))
				msg := make([]byte, 64<<10+i*1000)
				_, _ = rand.Read(msg)
				werr := make(chan error, 1)
				go func() {
					_, err := c.Write(msg)
					if err == nil {
						err = c.(*net.TCPConn).CloseWrite()
					}
					werr <- err
				}()
				got, err := io.ReadAll(c)
				if err != nil {
					return fmt.Errorf("conn %d: read: %w", i, err)
				}
				if err := <-werr; err != nil {
					return fmt.Errorf("conn %d: write: %w", i, err)
				}
				if !bytes.Equal(got, msg) {
					return fmt.Errorf("conn %d: echo differs (%d of %d bytes)", i, len(got), len(msg))
				}
				return nil
			}()
		}()
	}
	for range n {
		if err := recv(t, errs, "connection result"); err != nil {
			t.Error(err)
		}
	}
	if got := svc.accepted.Load(); got != n {
		t.Fatalf("service accepted %d connections, want %d", got, n)
	}
	eventually(t, "all connections closed", func() bool {
		return f.Stats().Active == 0 && p.server.Stats().Active == 0
	})
	if st := p.server.Stats(); st.Conns != n {
		t.Fatalf("server stats %+v", st)
	}
}

// TestHalfClose checks both directions: the client shuts down its write
// side and still receives the full reply; the service shuts down its write
// side first and still receives what the client sends afterwards.
func TestHalfClose(t *testing.T) {
	p := newPair(t)
	reply := make([]byte, 2<<20)
	_, _ = rand.Read(reply)
	// "digest": read everything, then answer with its hash and a large reply.
	digest := newService(t, func(c net.Conn) {
		h := sha256.New()
		if _, err := io.Copy(h, c); err != nil {
			return
		}
		_, _ = c.Write(h.Sum(nil))
		_, _ = c.Write(reply)
	})
	// "greet": say hello and half-close, then read until EOF and report it.
	got := make(chan []byte, 1)
	greet := newService(t, func(c net.Conn) {
		_, _ = c.Write([]byte("hello"))
		_ = c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		got <- b
	})
	if err := p.server.Expose("digest", digest.addr(), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.server.Expose("greet", greet.addr(), []peer.ID{p.a.ID()}); err != nil {
		t.Fatal(err)
	}

	t.Run("client", func(t *testing.T) {
		c := dialTCP(t, p.listen(t, "digest"))
		msg := make([]byte, 1<<20)
		_, _ = rand.Read(msg)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		all, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(msg)
		if len(all) != 32+len(reply) || !bytes.Equal(all[:32], sum[:]) || !bytes.Equal(all[32:], reply) {
			t.Fatalf("reply of %d bytes, want %d and matching", len(all), 32+len(reply))
		}
	})
	t.Run("service", func(t *testing.T) {
		c := dialTCP(t, p.listen(t, "greet"))
		hello, err := io.ReadAll(c) // ends at the service's half-close
		if err != nil || string(hello) != "hello" {
			t.Fatalf("read %q, %v", hello, err)
		}
		if _, err := c.Write([]byte("after your FIN")); err != nil {
			t.Fatal(err)
		}
		_ = c.CloseWrite()
		if b := recv(t, got, "service input"); string(b) != "after your FIN" {
			t.Fatalf("service received %q", b)
		}
	})
}

// TestDialConn uses Dial directly: the returned Conn is a net.Conn with half-close.
func TestDialConn(t *testing.T) {
	p := newPair(t)
	svc := newService(t, echo)
	if err := p.server.Expose("echo", svc.addr(), nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, p.a, p.b.ID(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testDeadline))
	var conn net.Conn = c
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = c.CloseWrite()
	b, err := io.ReadAll(conn)
	if err != nil || string(b) != "ping" {
		t.Fatalf("%q, %v", b, err)
	}
	if conn.RemoteAddr().Network() != "libp2p" || c.Relayed() {
		t.Fatalf("remote %v relayed %v", conn.RemoteAddr(), c.Relayed())
	}
}

func TestRefusals(t *testing.T) {
	p := newPair(t)
	svc := newService(t, echo)
	// D is a member but not on the allow list; C is not a member at all.
	c, d := newHost(t), newHost(t)
	p.auth.set(d.ID(), true)
	connect(t, c, p.b)
	connect(t, d, p.b)
	if err := p.server.Expose("ssh", svc.addr(), []peer.ID{p.a.ID()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var want int64 // connections the service should have accepted

	dial := func(h host.Host, name string) error {
		conn, err := Dial(ctx, h, p.b.ID(), name)
		if err == nil {
			want++
			_ = conn.SetDeadline(time.Now().Add(testDeadline))
			b := []byte("x")
			if _, err := conn.Write(b); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(conn, b); err != nil {
				t.Fatal(err)
			}
			_ = conn.Close()
		}
		return err
	}
	check := func(what string, err, wantErr error) {
		t.Helper()
		if !errors.Is(err, wantErr) {
			t.Fatalf("%s: got %v, want %v", what, err, wantErr)
		}
		// A refusal is decided before dialling, and the reply is written
		// after the decision: the count is final when the reply arrives.
		if got := svc.accepted.Load(); got != want {
			t.Fatalf("%s: service accepted %d connections, want %d", what, got, want)
		}
	}

	check("allowed member", dial(p.a, "ssh"), nil)
	check("non-member", dial(c, "ssh"), ErrRefused)
	check("non-member, unknown service", dial(c, "nothing"), ErrRefused) // learns nothing
	check("member not on allow list", dial(d, "ssh"), ErrRefused)
	check("member, unknown service", dial(d, "nothing"), ErrNotFound)

	// Through a forward: the local connection is closed and nothing is sent.
	fc, err := NewClient(c, testLogger(t)).Listen(ctx, p.b.ID(), "ssh", "")
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	lc := dialTCP(t, fc)
	_, _ = lc.Write([]byte("let me in"))
	if b, err := io.ReadAll(lc); len(b) != 0 {
		t.Fatalf("refused forward read %q, %v", b, err)
	}
	eventually(t, "failed forward counted", func() bool { return fc.Stats().Failed == 1 })
	check("non-member forward", nil, nil)

	// Revocation: A's open connection stays until DisconnectPeer, new streams are refused.
	open, err := Dial(ctx, p.a, p.b.ID(), "ssh")
	if err != nil {
		t.Fatal(err)
	}
	_ = open.SetDeadline(time.Now().Add(testDeadline))
	want++
	// Earlier connections finish closing asynchronously.
	eventually(t, "only the open connection left", func() bool { return p.server.Stats().Active == 1 })
	p.auth.set(p.a.ID(), false)
	check("revoked member", dial(p.a, "ssh"), ErrRefused)
	if n := p.server.DisconnectPeer(p.a.ID()); n != 1 {
		t.Fatalf("DisconnectPeer closed %d, want 1", n)
	}
	if _, err := io.ReadAll(open); err == nil {
		t.Fatal("connection of a disconnected peer ended cleanly")
	}
	p.auth.set(p.a.ID(), true)
	check("re-admitted member", dial(p.a, "ssh"), nil)

	var refused, opened int
	for len(p.events) > 0 {
		if e := <-p.events; e.Status == StatusOK {
			opened++
		} else {
			refused++
		}
	}
	if opened != int(want) || refused != 6 {
		t.Fatalf("events: %d opened (want %d), %d refused (want 6)", opened, want, refused)
	}
}

func TestUnexposeAndClose(t *testing.T) {
	p := newPair(t)
	svc := newService(t, echo)
	if err := p.server.Expose("echo", svc.addr(), nil); err != nil {
		t.Fatal(err)
	}
	f := p.listen(t, "echo")
	c := dialTCP(t, f)
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := p.server.Unexpose("echo"); err != nil {
		t.Fatal(err)
	}
	if err := p.server.Unexpose("echo"); !errors.Is(err, ErrNotExposed) {
		t.Fatalf("second unexpose: %v", err)
	}
	// The open connection is torn down; the local client sees an error or EOF.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("connection not torn down after unexpose")
	}
	if _, err := Dial(context.Background(), p.a, p.b.ID(), "echo"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("dial after unexpose: %v", err)
	}

	// Server.Close tears down open connections too.
	if err := p.server.Expose("echo", svc.addr(), nil); err != nil {
		t.Fatal(err)
	}
	c2 := dialTCP(t, f)
	if _, err := c2.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c2, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := p.server.Close(); err != nil {
		t.Fatal(err)
	}
	_ = p.server.Close()
	_ = c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c2); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("connection not torn down after server close")
	}
	if err := p.server.Expose("x", svc.addr(), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("expose after close: %v", err)
	}

	// Forward.Close: the listener goes away and Done closes.
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	<-f.Done()
	if _, err := net.Dial("tcp", f.Addr().String()); err == nil {
		t.Fatal("forward still listening after close")
	}
	if len(p.client.Forwards()) != 0 {
		t.Fatal("client still lists the forward")
	}
}

// TestTeardownWhenPeerGoes: the serving device disappears mid-connection;
// the local client's connection ends and the forward stays usable.
func TestTeardownWhenPeerGoes(t *testing.T) {
	p := newPair(t)
	svc := newService(t, echo)
	if err := p.server.Expose("echo", svc.addr(), nil); err != nil {
		t.Fatal(err)
	}
	f := p.listen(t, "echo")
	c := dialTCP(t, f)
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	_ = p.b.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("local connection not torn down after the serving host closed")
	}
	eventually(t, "forward idle", func() bool { return f.Stats().Active == 0 })
	// And the client going away closes the service's side: abort the
	// local client with a RST while the service waits for input.
	p2 := newPair(t)
	closed := make(chan error, 1)
	wait := newService(t, func(c net.Conn) {
		_, err := io.ReadAll(c)
		closed <- err
	})
	if err := p2.server.Expose("wait", wait.addr(), nil); err != nil {
		t.Fatal(err)
	}
	c2 := dialTCP(t, p2.listen(t, "wait"))
	if _, err := c2.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "service connection", func() bool { return wait.accepted.Load() == 1 })
	_ = c2.SetLinger(0)
	_ = c2.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("service connection not closed after the client went away")
	}
}

// TestBackPressure: a service that does not read makes the client's writes
// block after a bounded amount, and then everything arrives once it reads.
func TestBackPressure(t *testing.T) {
	p := newPair(t)
	start := make(chan struct{})
	sums := make(chan [32]byte, 1)
	svc := newService(t, func(c net.Conn) {
		<-start
		h := sha256.New()
		_, _ = io.Copy(h, c)
		sums <- [32]byte(h.Sum(nil))
	})
	if err := p.server.Expose("slow", svc.addr(), nil); err != nil {
		t.Fatal(err)
	}
	c := dialTCP(t, p.listen(t, "slow"))
	chunk := make([]byte, 1<<20)
	_, _ = rand.Read(chunk)
	h := sha256.New()
	var written int
	_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	const limit = 256 << 20
	for written < limit {
		n, err := c.Write(chunk)
		written += n
		h.Write(chunk[:n])
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			break
		}
	}
	// Socket buffers (a few MiB each, four of them), two copy buffers and a
	// 16 MiB yamux window: well under 64 MiB.
	t.Logf("in flight before the writer blocked: %.1f MiB", float64(written)/(1<<20))
	if written >= 64<<20 {
		t.Fatalf("wrote %d MiB to a service that does not read", written>>20)
	}
	close(start)
	_ = c.SetWriteDeadline(time.Now().Add(testDeadline))
	for range 8 {
		n, err := c.Write(chunk)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(chunk[:n])
	}
	_ = c.CloseWrite()
	if got := recv(t, sums, "service digest"); got != [32]byte(h.Sum(nil)) {
		t.Fatal("service received different bytes")
	}
}

func TestValidation(t *testing.T) {
	p := newPair(t)
	for _, tc := range []struct {
		name, addr string
		want       error
	}{
		{"", "127.0.0.1:1", ErrInvalidName},
		{"Web", "127.0.0.1:1", ErrInvalidName},
		{"-web", "127.0.0.1:1", ErrInvalidName},
		{"a b", "127.0.0.1:1", ErrInvalidName},
		{string(bytes.Repeat([]byte("a"), MaxNameLen+1)), "127.0.0.1:1", ErrInvalidName},
		{"web", "127.0.0.1", ErrInvalidAddr},
		{"web", ":22", ErrInvalidAddr},
		{"web", "127.0.0.1:0", ErrInvalidAddr},
		{"web", "127.0.0.1:70000", ErrInvalidAddr},
		{"web", "127.0.0.1:ssh", ErrInvalidAddr},
		{"web", "bad host:22", ErrInvalidAddr},
		{"web", "127.0.0.1:22", nil},
		{"vnc", "[::1]:5900", nil},
		{"my-svc.v2_x", "printer.lan:631", nil},
	} {
		if err := p.server.Expose(tc.name, tc.addr, nil); !errors.Is(err, tc.want) {
			t.Errorf("Expose(%q, %q) = %v, want %v", tc.name, tc.addr, err, tc.want)
		}
	}
	if err := p.server.Expose("web", "127.0.0.1:80", []peer.ID{p.a.ID()}); err != nil {
		t.Fatal(err)
	}
	got := p.server.Services()
	if len(got) != 3 || got[2].Name != "web" || got[2].Addr != "127.0.0.1:80" || len(got[2].Allow) != 1 {
		t.Fatalf("services %+v", got)
	}
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"", true}, {"127.0.0.1:0", true}, {"localhost:0", true}, {"[::1]:0", true},
		{"0.0.0.0:0", false}, {":0", false}, {"192.0.2.1:0", false}, {"example.com:0", false},
	} {
		f, err := p.client.Listen(context.Background(), p.b.ID(), "web", tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("Listen(%q) = %v, want ok %v", tc.addr, err, tc.ok)
		}
		if err == nil {
			_ = f.Close()
		} else if !errors.Is(err, ErrInvalidAddr) {
			t.Errorf("Listen(%q) = %v, want ErrInvalidAddr", tc.addr, err)
		}
	}
	f, err := p.client.Listen(context.Background(), p.b.ID(), "web", "0.0.0.0:0", AllowNonLoopback())
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if _, err := Dial(context.Background(), p.a, p.b.ID(), "Bad Name"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("Dial with a bad name: %v", err)
	}
}

// TestListenContext: a forward stops when its context ends.
func TestListenContext(t *testing.T) {
	p := newPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	f, err := p.client.Listen(ctx, p.b.ID(), "x", "")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-f.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("forward did not stop with its context")
	}
}
