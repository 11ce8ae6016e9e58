package transfer

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// silentPeer is a host that takes blob streams, reads the requests and
// never answers (a half-dead connection, or a member stalling transfers).
func silentPeer(t *testing.T) *node {
	n := newNode(t, nil, nil)
	n.h.SetStreamHandler(ProtocolID, func(s network.Stream) {
		_, _ = io.Copy(io.Discard, s) // until the fetcher resets the stream
		s.Reset()
	})
	return n
}

// TestStalledPeerDropped: a peer that never answers is dropped after the
// stall timeout: alone, the fetch ends ErrUnavailable (and is retried by
// its caller) instead of waiting for good (chaos harness, seed 61: a fetch
// from a just-restarted sender hung with no answer); beside a peer that
// serves, the fetch completes.
func TestStalledPeerDropped(t *testing.T) {
	data := randBytes(6, 3<<20)
	silent, good := silentPeer(t), newNode(t, nil, nil)
	m := good.seed(t, "f", data)
	c := newNode(t, nil, nil)
	c.svc.SetStallTimeout(300 * time.Millisecond)
	if err := c.h.Connect(context.Background(), peer.AddrInfo{ID: silent.h.ID(), Addrs: silent.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if err := c.svc.Fetch(context.Background(), m, ids(silent), nil); !errors.Is(err, ErrUnavailable) || !errors.Is(err, errStalled) {
		t.Fatalf("fetch from a silent peer: %v, want ErrUnavailable naming the stall", err)
	}
	connect(t, c, good)
	if err := c.svc.Fetch(context.Background(), m, ids(silent, good), nil); err != nil {
		t.Fatalf("fetch from a silent and a serving peer: %v", err)
	}
	c.checkMaterialize(t, m, data)
}
