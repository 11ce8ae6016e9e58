package transfer

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
)

// newLimitedHost is a host whose resource manager allows each peer mem bytes
// on ProtocolID.
func newLimitedHost(t testing.TB, mem int64) host.Host {
	t.Helper()
	limits := rcmgr.DefaultLimits
	limits.AddProtocolPeerLimit(ProtocolID,
		rcmgr.BaseLimit{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: mem},
		rcmgr.BaseLimitIncrease{})
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()))
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Security(noise.ID, noise.New),
		libp2p.DisableRelay(),
		libp2p.ResourceManager(rm),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestChunkBuffersReserved: the server reserves each chunk buffer on the
// stream's resource-manager scope. With less room than one buffer per peer
// a GET is answered ERROR(internal) instead of being loaded; with room for
// two, a many-chunk fetch over several parallel streams still completes
// (reservations wait for releases), and every reservation is released.
func TestChunkBuffersReserved(t *testing.T) {
	t.Run("no room", func(t *testing.T) {
		srv := newNodeOn(t, newLimitedHost(t, 1<<20), nil, nil)
		man := srv.seed(t, "a", randBytes(3, 64<<10))
		cli := newHost(t)
		if err := cli.Connect(context.Background(), peer.AddrInfo{ID: srv.h.ID(), Addrs: srv.h.Addrs()}); err != nil {
			t.Fatal(err)
		}
		in := getReq{ReqID: 5, Blob: man.Ref(), ID: man.Chunks[0].ID}.append(nil)
		out := serveRaw(t, cli, srv, in, 2*maxFrame)
		last, ok := checkAnswers(t, out, make([]byte, frameBufSize)).(errorResp)
		if !ok || last.ReqID != 5 || last.Code != codeInternal {
			t.Fatalf("answer %#v, want ERROR(internal) for request 5", last)
		}
		if n := srv.svc.Stats().ChunksServed; n != 0 {
			t.Fatalf("%d chunks served without a reservation", n)
		}
	})
	t.Run("room for two", func(t *testing.T) {
		h := newLimitedHost(t, 2*frameBufSize+frameBufSize/2)
		srv := newNodeOn(t, h, nil, nil)
		data := randBytes(4, 24<<20)
		man := srv.seed(t, "b", data)
		clients := []*node{newNode(t, nil, nil), newNode(t, nil, nil)}
		done := make(chan error, 2*len(clients))
		for _, c := range clients {
			connect(t, c, srv)
			for range 2 { // two fetches at once per client: parallel streams from one peer
				go func() { done <- c.svc.Fetch(context.Background(), man, ids(srv), nil) }()
			}
		}
		for range 2 * len(clients) {
			if err := <-done; err != nil {
				t.Fatalf("fetch with room for two chunk buffers: %v", err)
			}
		}
		for _, c := range clients {
			c.checkMaterialize(t, man, data)
		}
		for _, c := range clients {
			c.svc.Close()
		}
		waitHandlersDone(t, srv.svc)
		if n := srv.svc.mem.held.Load(); n != 0 {
			t.Fatalf("%d chunk buffer reservations left after every stream ended", n)
		}
		var used int64
		_ = h.Network().ResourceManager().ViewProtocol(ProtocolID, func(s network.ProtocolScope) error {
			used = s.Stat().Memory
			return nil
		})
		if used != 0 {
			t.Fatalf("%d bytes still reserved on %s", used, ProtocolID)
		}
	})
}
