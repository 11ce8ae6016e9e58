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
// stream's resource-manager scope, a buffer of the chunk's size class. With
// less room than that buffer a GET is answered ERROR(internal) instead of
// being loaded; a small chunk needs room for its own class only (not for a
// whole 4 MiB frame); with room for two whole buffers, a many-chunk fetch
// over several parallel streams still completes (reservations wait for
// releases), and every reservation is released.
func TestChunkBuffersReserved(t *testing.T) {
	get := func(t *testing.T, limit int64, size int) (errorResp, bool, int64) {
		srv := newNodeOn(t, newLimitedHost(t, limit), nil, nil)
		man := srv.seed(t, "a", randBytes(3, size))
		cli := newHost(t)
		if err := cli.Connect(context.Background(), peer.AddrInfo{ID: srv.h.ID(), Addrs: srv.h.Addrs()}); err != nil {
			t.Fatal(err)
		}
		in := getReq{ReqID: 5, Blob: man.Ref(), ID: man.Chunks[0].ID}.append(nil)
		out := serveRaw(t, cli, srv, in, 2*maxFrame)
		last := checkAnswers(t, out, make([]byte, frameBufSize))
		e, isErr := last.(errorResp)
		return e, isErr, srv.svc.Stats().ChunksServed
	}
	t.Run("no room", func(t *testing.T) {
		// A 64 KiB chunk takes a buffer of its class, 64 KiB and a frame's
		// slack: 64 KiB of room is not enough.
		last, isErr, served := get(t, 64<<10, 64<<10)
		if !isErr || last.ReqID != 5 || last.Code != codeInternal {
			t.Fatalf("answer %#v, want ERROR(internal) for request 5", last)
		}
		if served != 0 {
			t.Fatalf("%d chunks served without a reservation", served)
		}
	})
	t.Run("small chunk, small reservation", func(t *testing.T) {
		// 1 MiB of room is less than one whole frame buffer, enough for a
		// 64 KiB chunk's class.
		last, isErr, served := get(t, 1<<20, 64<<10)
		if isErr || served != 1 {
			t.Fatalf("answer %#v, %d chunks served; want the chunk", last, served)
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
