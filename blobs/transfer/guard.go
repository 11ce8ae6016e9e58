package transfer

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
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

// frameBufSize is the memory one pooled frame buffer takes.
const frameBufSize = maxFrame + pageSize

// frameMem reserves the pooled frame buffers a stream holds on the stream's
// resource-manager scope, so the per-stream, per-peer, per-protocol and
// system memory limits of libp2p's resource manager hold for them. A
// stream that already holds a buffer waits for one of its own to be
// released when a reservation fails; one that holds none gets the error
// (and answers it rather than allocating).
type frameMem struct {
	scope network.ResourceScope
	held  atomic.Int32
	freed chan struct{} // a token after each release
}

func newFrameMem(scope network.ResourceScope) *frameMem {
	if scope == nil {
		scope = &network.NullScope{}
	}
	return &frameMem{scope: scope, freed: make(chan struct{}, 1)}
}

// reserve reserves one frame buffer, waiting for a release of this
// stream's own buffers while it holds any.
func (m *frameMem) reserve(ctx context.Context) error {
	for {
		err := m.scope.ReserveMemory(frameBufSize, network.ReservationPriorityAlways)
		if err == nil {
			m.held.Add(1)
			return nil
		}
		if m.held.Load() == 0 {
			return fmt.Errorf("reserve %d bytes for a frame buffer: %w", frameBufSize, err)
		}
		select {
		case <-m.freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release releases one reservation made by reserve.
func (m *frameMem) release() {
	m.scope.ReleaseMemory(frameBufSize)
	m.held.Add(-1)
	select {
	case m.freed <- struct{}{}:
	default:
	}
}
