package node

import (
	"bufio"
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/meshwork/meshwork/node/internal/wire"
	"github.com/meshwork/meshwork/syncproto"
)

// TestInSyncRule: in_sync is 1 only when nothing local is left to do and
// every online member of the folder was caught up with since it connected
// (and one member was reached since start when some are offline); the
// reasons say what is behind, offline members are named.
func TestInSyncRule(t *testing.T) {
	up := peerView{Name: "up", Online: true, CaughtUp: true, Reached: true}
	for _, c := range []struct {
		name    string
		v       syncView
		in      float64
		behind  []string
		offline []string
	}{
		{"alone", syncView{Fraction: 1}, 1, nil, nil},
		{"caught up", syncView{Fraction: 1, Peers: []peerView{up}}, 1, nil, nil},
		{"indexing", syncView{Fraction: 1, Indexing: true, Peers: []peerView{up}}, 0.99, []string{"indexing local changes"}, nil},
		{"pending", syncView{Fraction: 1, Pending: true}, 0.99, []string{"applying received changes"}, nil},
		{"transferring", syncView{Fraction: 0.5, Transferring: 2}, 0.5, []string{"receiving 2 files"}, nil},
		{"content missing", syncView{Fraction: 0.25}, 0.25, []string{"content missing here"}, nil},
		{"content unavailable", syncView{Fraction: 0.5, Unavailable: 3, Peers: []peerView{up}}, 0.5,
			[]string{"content of 3 files unavailable from every online member"}, nil},
		{"not caught up", syncView{Fraction: 1, Peers: []peerView{up, {Name: "new", Online: true, Reached: true}}}, 0.99,
			[]string{"catching up with new"}, nil},
		{"offline, another reached", syncView{Fraction: 1, Peers: []peerView{up, {Name: "off"}}}, 1, nil, []string{"off"}},
		{"offline, one reached before it left", syncView{Fraction: 1, Peers: []peerView{{Name: "off", Reached: true}}}, 1, nil, []string{"off"}},
		{"connecting, another reached", syncView{Fraction: 1, Peers: []peerView{up, {Name: "dialled", Connecting: true}}}, 0.99,
			[]string{"connecting to dialled"}, nil},
		{"offline, none reached since start", syncView{Fraction: 1, Peers: []peerView{{Name: "off"}}}, 0.99,
			[]string{"no member of the folder reached since this daemon started"}, []string{"off"}},
	} {
		in, behind, offline := c.v.verdict()
		if in != c.in || !slices.Equal(behind, c.behind) || !slices.Equal(offline, c.offline) {
			t.Errorf("%s: got %v %q %q, want %v %q %q", c.name, in, behind, offline, c.in, c.behind, c.offline)
		}
		if (in == 1) != (len(behind) == 0) {
			t.Errorf("%s: in_sync %v with behind %q", c.name, in, behind)
		}
	}
}

func TestFlushCodec(t *testing.T) {
	id, err := decodeFlushReq(encodeFlushReq("folder-abc"))
	if err != nil || id != "folder-abc" {
		t.Fatalf("request round trip: %q %v", id, err)
	}
	for _, bad := range [][]byte{nil, {0}, append(encodeFlushReq("x"), 0), wire.AppendBytes(nil, []byte("a\x00b"))} {
		if _, err := decodeFlushReq(bad); err == nil {
			t.Errorf("request %x accepted", bad)
		}
	}
	code, msg, err := decodeFlushReply(encodeFlushReply(flushFailed, strings.Repeat("é", 400)))
	if err != nil || code != flushFailed || len(msg) > maxFlushMsg {
		t.Fatalf("reply round trip: %d %d bytes %v", code, len(msg), err)
	}
	for _, bad := range [][]byte{nil, {9, 0}, {0, 1}, append(encodeFlushReply(0, ""), 1)} {
		if _, _, err := decodeFlushReply(bad); err == nil {
			t.Errorf("reply %x accepted", bad)
		}
	}
}

// fwStream is a peer's folder-wait stream: the fuzzer's bytes in, the
// reply out, with a scope counting frame memory.
type fwStream struct {
	io.Reader
	out bytes.Buffer
	sc  *fsScope
}

func (s *fwStream) Write(b []byte) (int, error) { return s.out.Write(b) }
func (s *fwStream) Scope() network.StreamScope  { return s.sc }

// FuzzFolderWaitServer drives the server side of ProtoFolderWait
// (serveFlush, as handleFolderWait runs it) with arbitrary bytes: it must
// not panic, must call the scan only for a well-formed request, must
// release its frame memory, never reserve more than the request bound,
// and write a reply that the client's decoder accepts.
func FuzzFolderWaitServer(f *testing.F) {
	var req bytes.Buffer
	_ = wire.WriteFrame(&req, msgFlushReq, encodeFlushReq("folder-0123"))
	f.Add(req.Bytes())
	f.Add([]byte{})
	f.Add([]byte{0x05, msgFlushReq, 0x03, 'a', 'b', 'c'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, msgFlushReq})
	f.Add([]byte{0x02, msgFlushReply, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		st := &fwStream{Reader: bytes.NewReader(in), sc: &fsScope{}}
		called := 0
		err := serveFlush(st, func(id syncproto.ObjectID) (byte, string) {
			called++
			if _, perr := syncproto.ParseObjectID(string(id)); perr != nil {
				t.Fatalf("scan asked for a malformed id %q", id)
			}
			return flushFailed, strings.Repeat("x", 2*maxFlushMsg)
		})
		if st.sc.used != 0 {
			t.Fatalf("%d bytes of frame memory not released", st.sc.used)
		}
		if st.sc.peak > maxFlushReq {
			t.Fatalf("reserved %d bytes for a request of at most %d", st.sc.peak, maxFlushReq)
		}
		if err != nil {
			if called != 0 || st.out.Len() != 0 {
				t.Fatalf("error %v after scanning (%d) or replying (%d bytes)", err, called, st.out.Len())
			}
			return
		}
		if called != 1 {
			t.Fatalf("served without one scan (%d)", called)
		}
		typ, payload, err := wire.ReadFrame(bufio.NewReader(&st.out), maxFlushReply)
		if err != nil || typ != msgFlushReply {
			t.Fatalf("reply frame: type %d, %v", typ, err)
		}
		if code, _, err := decodeFlushReply(payload); err != nil || code != flushFailed {
			t.Fatalf("reply: code %d, %v", code, err)
		}
	})
}
