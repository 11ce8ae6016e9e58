package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// freezer is a TCP proxy to one address that can be frozen: from then on
// it moves no byte and closes nothing (until Close), as a device that lost
// power looks from the other side.
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen bool
	conns  []net.Conn
	wg     sync.WaitGroup
	done   chan struct{}
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target, done: make(chan struct{})}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.Close)
	return f
}

func (f *freezer) accept() {
	defer f.wg.Done()
	for {
		in, err := f.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", f.target)
		if err != nil {
			in.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, in, out)
		f.mu.Unlock()
		f.wg.Add(2)
		go f.pipe(in, out)
		go f.pipe(out, in)
	}
}

// pipe copies src to dst until either fails; frozen, it stops moving bytes
// and waits for Close instead of closing anything.
func (f *freezer) pipe(dst, src net.Conn) {
	defer f.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		f.mu.Lock()
		frozen := f.frozen
		f.mu.Unlock()
		if frozen {
			<-f.done
			return
		}
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			dst.Close()
			src.Close()
			return
		}
	}
}

func (f *freezer) freeze() {
	f.mu.Lock()
	f.frozen = true
	f.mu.Unlock()
}

func (f *freezer) addr() ma.Multiaddr {
	return ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", f.ln.Addr().(*net.TCPAddr).Port))
}

func (f *freezer) Close() {
	select {
	case <-f.done:
		return
	default:
	}
	close(f.done)
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func tcpHost(t *testing.T, key crypto.PrivKey) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type probeResult struct {
	conn network.Conn
	err  error
}

// tcpTarget is h's TCP listen address as host:port.
func tcpTarget(t *testing.T, h host.Host) string {
	t.Helper()
	for _, a := range h.Addrs() {
		if na, err := manet.ToNetAddr(a); err == nil {
			return na.String()
		}
	}
	t.Fatalf("host %s has no TCP address: %v", h.ID(), h.Addrs())
	return ""
}

// nextProbe waits for the next probe result.
func nextProbe(t *testing.T, probes <-chan probeResult) probeResult {
	t.Helper()
	select {
	case r := <-probes:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("no probe within 30 s")
		return probeResult{}
	}
}

// A member killed without a close leaves its connection open on the other
// side; when it connects again, that connection is probed, found dead and
// closed, while a second live connection of a member is probed and stays.
func TestStaleConnClosed(t *testing.T) {
	kA, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kB, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := tcpHost(t, kA)
	defer a.Close()
	sc := newStaleConns(a, slog.New(slog.DiscardHandler))
	// probeTimeout as the daemon has it: the dead connection costs its 5 s, and
	// the live one must answer within it even on a loaded machine.
	sc.timeout = probeTimeout
	probes := make(chan probeResult, 8)
	sc.probed = func(c network.Conn, err error) { probes <- probeResult{c, err} }
	a.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) { sc.connected(c) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sc.run(ctx) }()
	defer func() { cancel(); <-done }()
	dialCtx, cancelDial := context.WithTimeout(ctx, 10*time.Second)
	defer cancelDial()

	// b reaches a through the proxy, then "loses power": the proxy freezes
	// and b's host goes away without a's side hearing of it.
	fz := newFreezer(t, tcpTarget(t, a))
	b := tcpHost(t, kB)
	if err := b.Connect(dialCtx, peer.AddrInfo{ID: a.ID(), Addrs: []ma.Multiaddr{fz.addr()}}); err != nil {
		t.Fatal(err)
	}
	old := a.Network().ConnsToPeer(b.ID())
	if len(old) != 1 {
		t.Fatalf("a holds %d connections to b, want 1", len(old))
	}
	fz.freeze()
	b.Close()
	if old[0].IsClosed() {
		t.Fatal("a's connection closed although the proxy froze: the test shows nothing")
	}

	// b comes back with the same key, directly.
	b2 := tcpHost(t, kB)
	defer b2.Close()
	if err := b2.Connect(dialCtx, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		t.Fatal(err)
	}
	r := nextProbe(t, probes)
	if r.conn.ID() != old[0].ID() || r.err == nil {
		t.Fatalf("probe of %s: %v; want the old connection %s, failed", r.conn.ID(), r.err, old[0].ID())
	}
	if !old[0].IsClosed() {
		t.Fatal("the dead connection is still open after its probe failed")
	}
	live := a.Network().ConnsToPeer(b.ID())
	if len(live) != 1 || live[0].ID() == old[0].ID() {
		t.Fatalf("a's connections to b after the probe: %v", live)
	}

	// A second connection of a live member (a second host with its key,
	// as after a fast restart that kept the first alive): the first is
	// probed, answers and stays.
	b3 := tcpHost(t, kB)
	defer b3.Close()
	if err := b3.Connect(dialCtx, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		t.Fatal(err)
	}
	r = nextProbe(t, probes)
	if r.conn.ID() != live[0].ID() || r.err != nil {
		t.Fatalf("probe of %s: %v; want the live connection %s, answered", r.conn.ID(), r.err, live[0].ID())
	}
	if live[0].IsClosed() {
		t.Fatal("a live connection was closed")
	}
	if n := len(a.Network().ConnsToPeer(b.ID())); n != 2 {
		t.Fatalf("a holds %d connections to b, want both", n)
	}
}
