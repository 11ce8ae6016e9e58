package transfer

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/network"
)

// recoverStream is the backstop of every goroutine that reads or answers a
// blob stream: deferred directly, it turns a panic into an ERROR log line
// (peer, protocol, the panic and its stack) and a reset stream, so that no
// byte from the wire can take the daemon down. It reports whether it
// recovered a panic. A panic here is a bug: the decoders bound everything
// they read.
func recoverStream(log *slog.Logger, st network.Stream, what string) bool {
	v := recover()
	if v == nil {
		return false
	}
	log.Error("panic in blob stream; stream reset", "in", what, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	st.Reset()
	return true
}

// frameBufSize is the memory the largest pooled frame buffer takes.
const frameBufSize = maxFrame + pageSize

// frameMem reserves the pooled frame buffers a stream holds on the stream's
// resource-manager scope, so the per-stream, per-peer, per-protocol and
// system memory limits of libp2p's resource manager hold for them. When a
// reservation fails while the service holds buffers, it waits for one to
// be released (its scopes are then freed or the limit is not ours to
// wait for); when the service holds none, the error is returned (and
// answered rather than allocating).
type frameMem struct {
	scope network.ResourceScope
	all   *memNotify
}

// memNotify counts the frame buffers reserved by all of a service's streams
// and wakes waiters on each release.
type memNotify struct {
	held atomic.Int64
	mu   sync.Mutex
	ch   chan struct{} // closed (and replaced) on each release
}

func newMemNotify() *memNotify { return &memNotify{ch: make(chan struct{})} }

func (n *memNotify) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *memNotify) signal() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}

func newFrameMem(scope network.ResourceScope, all *memNotify) *frameMem {
	if scope == nil {
		scope = &network.NullScope{}
	}
	return &frameMem{scope: scope, all: all}
}

// reserve reserves a frame buffer of size bytes, waiting for a release
// while the service holds any.
func (m *frameMem) reserve(ctx context.Context, size int) error {
	for {
		freed := m.all.wait() // taken before trying, so no release is missed
		err := m.scope.ReserveMemory(size, network.ReservationPriorityAlways)
		if err == nil {
			m.all.held.Add(1)
			return nil
		}
		if m.all.held.Load() == 0 {
			return fmt.Errorf("reserve %d bytes for a frame buffer: %w", size, err)
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release releases one reservation of size bytes made by reserve.
func (m *frameMem) release(size int) {
	m.scope.ReleaseMemory(size)
	m.all.held.Add(-1)
	m.all.signal()
}
