package node

// Stale connections: a member's connections that died without a close.
//
// A device that is killed (or loses power, or its network) leaves its
// connections open on the other side until their keep-alive or idle
// timeout, up to half a minute. Meanwhile they are chosen for new streams
// (which then fail), and whatever their streams hold stays held: chunks
// being served to the dead device keep their buffers reserved in the
// peer's resource-manager scope, so after a few restarts of a device in a
// row its frames were refused on its live connection ("frame memory
// refused", TestFolderCrashSafety under load). A live device does not
// open a second connection to a device it is connected to (libp2p reuses
// the one it has), so a new connection from a member makes its older ones
// suspects: each is probed with a ping round trip on that very
// connection, and closed when the probe fails within probeTimeout.
// Relayed connections are left to the relay and to hole punching.

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	msmux "github.com/multiformats/go-multistream"
)

// probeTimeout bounds one probe: a live connection answers a ping in
// milliseconds, a busy machine's in well under a second.
const probeTimeout = 5 * time.Second

// staleConns probes the older connections of members that connected
// anew. It owns its fields; run is its only goroutine (and the probes it
// starts and waits for).
type staleConns struct {
	host    host.Host
	log     *slog.Logger
	timeout time.Duration
	probed  func(c network.Conn, err error) // tests: after each probe

	mu      sync.Mutex
	pending map[peer.ID]string // member → ID of its newest connection
	wake    chan struct{}      // buffered 1
}

func newStaleConns(h host.Host, log *slog.Logger) *staleConns {
	return &staleConns{host: h, log: log, timeout: probeTimeout, pending: map[peer.ID]string{}, wake: make(chan struct{}, 1)}
}

// connected notes a new connection of a member (on the swarm's
// notification path: it never blocks).
func (sc *staleConns) connected(c network.Conn) {
	if c.Stat().Limited {
		return
	}
	sc.mu.Lock()
	sc.pending[c.RemotePeer()] = c.ID()
	sc.mu.Unlock()
	select {
	case sc.wake <- struct{}{}:
	default:
	}
}

// run probes the suspects until ctx ends, one round at a time; each round
// ends with its probes, so none outlives run.
func (sc *staleConns) run(ctx context.Context) {
	var wg sync.WaitGroup
	for {
		select {
		case <-ctx.Done():
			return
		case <-sc.wake:
		}
		sc.mu.Lock()
		batch := sc.pending
		sc.pending = map[peer.ID]string{}
		sc.mu.Unlock()
		for p, newest := range batch {
			for _, c := range sc.host.Network().ConnsToPeer(p) {
				if c.ID() == newest || c.Stat().Limited || c.IsClosed() {
					continue
				}
				wg.Go(func() { sc.check(ctx, c) })
			}
		}
		wg.Wait() // one round at a time: a member reconnecting in a loop costs one probe per connection
	}
}

// check probes c and closes it when the probe fails.
func (sc *staleConns) check(ctx context.Context, c network.Conn) {
	err := probeConn(ctx, c, sc.timeout)
	if err != nil && ctx.Err() == nil {
		sc.log.Info("closing a dead connection of a member that connected again", "peer", c.RemotePeer().String(), "addr", c.RemoteMultiaddr().String(), "err", err)
		_ = c.Close()
	}
	if sc.probed != nil {
		sc.probed(c, err)
	}
}

// probeConn runs one ping round trip on c itself (the host's ping picks a
// connection of its own), bounded by timeout.
func probeConn(ctx context.Context, c network.Conn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := c.NewStream(ctx)
	if err != nil {
		return fmt.Errorf("open a stream: %w", err)
	}
	defer func() { _ = s.Reset() }() // the ping protocol ends streams so
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	if err := s.SetProtocol(ping.ID); err != nil {
		return fmt.Errorf("ping stream: %w", err)
	}
	if err := msmux.SelectProtoOrFail(ping.ID, s); err != nil {
		return fmt.Errorf("negotiate ping: %w", err)
	}
	out := make([]byte, ping.PingSize)
	_, _ = rand.Read(out)
	if _, err := s.Write(out); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	in := make([]byte, ping.PingSize)
	if _, err := io.ReadFull(s, in); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if !bytes.Equal(in, out) {
		return fmt.Errorf("ping: wrong answer")
	}
	return nil
}
