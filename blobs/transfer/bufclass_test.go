package transfer

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestBufClasses: every size gets the smallest class that holds it, the
// classes grow by powers of two (plus a frame's slack) up to a whole frame buffer, and a buffer
// goes back to its own class.
func TestBufClasses(t *testing.T) {
	for _, n := range []int{0, 1, 16 << 10, 16<<10 + 1, 16<<10 + bufSlack, 16<<10 + bufSlack + 1, 1 << 20, 1<<20 + bufSlack, 1<<20 + bufSlack + 1, 2 << 20, 2<<20 + 1, maxFrame, frameBufSize} {
		c := bufClassOf(n)
		if got := bufClassSize(c); got < n {
			t.Errorf("size %d: class %d holds %d bytes", n, c, got)
		}
		if c > 0 && bufClassSize(c-1) >= n {
			t.Errorf("size %d: class %d, but class %d (%d bytes) holds it", n, c, c-1, bufClassSize(c-1))
		}
	}
	if bufClassSize(nBufClasses-1) != frameBufSize || bufClassOf(frameBufSize) != nBufClasses-1 {
		t.Errorf("the last class is %d bytes, want a whole frame buffer (%d)", bufClassSize(nBufClasses-1), frameBufSize)
	}
	// A 1 MiB chunk's frame, read where chunkShift may put it, fits the
	// 1 MiB class: not one of twice its size.
	if need := frameHeader + chunkRespHead + 1<<20 + pageSize; bufClassSize(bufClassOf(need)) != 1<<20+bufSlack {
		t.Errorf("a 1 MiB chunk's frame takes a %d-byte buffer, want %d", bufClassSize(bufClassOf(need)), 1<<20+bufSlack)
	}
	var p bufPools
	b := p.get(3000)
	if len(*b) != bufClassSize(0) {
		t.Fatalf("a 3,000-byte buffer is %d bytes, want the 16 KiB class", len(*b))
	}
	*b = (*b)[:10]
	p.put(b)
	foreign := make([]byte, 5000)
	p.put(&foreign) // not a class size: dropped, never handed out
	for range 4 {
		if got := p.get(100); len(*got) != bufClassSize(0) {
			t.Fatalf("got a %d-byte buffer from the 16 KiB class", len(*got))
		}
	}
}

// TestChunkLargerThanClaimedBlob: a GET that names a chunk's blob with a
// false small size is refused once the chunk proves larger than that size,
// so that its (unreserved) memory is never queued for sending.
func TestChunkLargerThanClaimedBlob(t *testing.T) {
	srv := newNode(t, nil, nil)
	man := srv.seed(t, "big", randBytes(9, 256<<10))
	cli := newHost(t)
	if err := cli.Connect(context.Background(), peer.AddrInfo{ID: srv.h.ID(), Addrs: srv.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	lie := man.Ref()
	lie.Size = 100
	in := getReq{ReqID: 7, Blob: lie, ID: man.Chunks[0].ID}.append(nil)
	out := serveRaw(t, cli, srv, in, 2*maxFrame)
	last, ok := checkAnswers(t, out, make([]byte, frameBufSize)).(errorResp)
	if !ok || last.ReqID != 7 || last.Code != codeNotFound {
		t.Fatalf("answer %#v, want ERROR(not found) for request 7", last)
	}
	if n := srv.svc.Stats().ChunksServed; n != 0 {
		t.Fatalf("%d chunks served for a request whose blob size was false", n)
	}
	// The true size is served.
	in = getReq{ReqID: 8, Blob: man.Ref(), ID: man.Chunks[0].ID}.append(nil)
	out = serveRaw(t, cli, srv, in, 2*maxFrame)
	if _, ok := checkAnswers(t, out, make([]byte, frameBufSize)).(chunkResp); !ok {
		t.Fatal("the chunk was not served with its blob's true size")
	}
}
