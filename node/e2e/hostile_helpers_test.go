package e2e

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/syncproto/exchange"
)

// startHostileEngine puts the key of d, which must be stopped (only one
// host may speak for a key), in a hostile program: a plain libp2p host and
// a sync engine of its own (cfg; Members defaults to everyone) instead of
// meshd. It speaks the real /meshwork/sync protocol with a member's
// identity. stop closes the engine and the host; it is idempotent and runs
// at cleanup too.
func startHostileEngine(t *testing.T, d *daemon, cfg exchange.Config) (e *exchange.Engine, h host.Host, stop func()) {
	t.Helper()
	key, _, err := identity.LoadOrCreateKey(node.KeyPath(d.home))
	if err != nil {
		t.Fatal(err)
	}
	h = newPlainHost(t, key)
	if cfg.Members == nil {
		cfg.Members = allMembers{}
	}
	e = exchange.New(h, cfg, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	stop = sync.OnceFunc(func() { cancel(); e.Close(); <-done; h.Close() })
	t.Cleanup(stop)
	return e, h, stop
}
