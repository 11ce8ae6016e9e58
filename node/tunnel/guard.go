package tunnel

import (
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/libp2p/go-libp2p/core/network"
)

// recoverStream is the backstop of the stream handler: deferred directly,
// it turns a panic into an ERROR log line (peer, protocol, the panic and
// its stack) and a reset stream, so that nothing from the wire can take
// the daemon down. A panic here is a bug.
func recoverStream(log *slog.Logger, st network.Stream, what string) {
	v := recover()
	if v == nil {
		return
	}
	log.Error("panic in tunnel stream; stream reset", "in", what, "proto", ProtocolID,
		"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	_ = st.Reset()
}
