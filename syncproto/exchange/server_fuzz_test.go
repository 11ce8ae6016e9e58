package exchange

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/meshwork/meshwork/internal/framebuf"
	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/hlc"
)

// fuzzScope is a stream scope that tracks the frame memory reserved in it.
type fuzzScope struct {
	network.StreamScope
	used, peak int
}

func (s *fuzzScope) ReserveMemory(n int, _ uint8) error {
	s.used += n
	s.peak = max(s.peak, s.used)
	return nil
}

func (s *fuzzScope) ReleaseMemory(n int) { s.used -= n }

// fuzzStream is a peer's stream: it reads the fuzzer's bytes, discards
// what the server writes and has a resource scope.
type fuzzStream struct {
	io.Reader
	sc      *fuzzScope
	written int
	reset   bool
}

func (s *fuzzStream) Write(p []byte) (int, error)      { s.written += len(p); return len(p), nil }
func (s *fuzzStream) SetReadDeadline(time.Time) error  { return nil }
func (s *fuzzStream) SetWriteDeadline(time.Time) error { return nil }
func (s *fuzzStream) Close() error                     { return nil }
func (s *fuzzStream) Reset() error                     { s.reset = true; return nil }
func (s *fuzzStream) Scope() network.StreamScope       { return s.sc }

type fuzzMembers struct{}

func (fuzzMembers) IsMember(peer.ID) bool { return true }

// fuzzPeer is the peer whose stream the fuzzer writes: an editor of the
// object "list" held by the server, with its own replica of it.
func fuzzPeer(t testing.TB, server peer.ID) (peer.ID, *syncproto.Object) {
	key, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := syncproto.Config{Self: syncproto.DeviceID(id.String()), Clock: hlc.NewClock(time.Now, hlc.DefaultMaxSkew), Epoch: testEpoch2}
	o, err := syncproto.NewObject("list", syncproto.TypeList, map[syncproto.DeviceID]syncproto.Role{
		syncproto.DeviceID(server.String()): syncproto.RoleOwner, cfg.Self: syncproto.RoleEditor,
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range []string{"a", "b", "c"} {
		if _, err := o.Update(syncproto.ItemID(it), syncproto.Content{Title: it, Body: syncproto.Text("from the peer " + it)}); err != nil {
			t.Fatal(err)
		}
	}
	return id, o
}

// fuzzSeeds are whole sessions as the initiator sends them (see doc.go).
func fuzzSeeds(t testing.TB, o *syncproto.Object) [][]byte {
	c, err := o.ChangesSince(syncproto.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	ann := announce{Reply: true, Heads: []head{{Object: "list", Epoch: o.Epoch(), Head: o.Head()}}}
	changes := syncproto.EncodeChanges(c)
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	end := frame(msgEnd, nil)
	return [][]byte{
		// Announce, then the changes the server asks for.
		cat(frame(msgAnnounce, ann.encode()), end, frame(msgChanges, changes), end),
		// Announce with a reply, then ask for the server's changes.
		cat(frame(msgAnnounce, ann.encode()), end, frame(msgRequest, request{Object: "list"}.encode()), end),
		// A summary split over two frames.
		cat(frame(msgAnnounce, announce{}.encode()), end,
			frame(msgRequest, request{Object: "list", More: true, Summary: []summaryEntry{{Item: "a"}}}.encode()),
			frame(msgRequest, request{Object: "list", Summary: []summaryEntry{{Item: "b"}}}.encode()), end),
		cat(frame(msgAnnounce, ann.encode()), end, frame(msgError, errorMsg{Code: codeRefused, Text: "no"}.encode())),
		cat(frame(msgAnnounce, ann.encode()), end, frame(msgChanges, sampleChanges()), end),
		// A half-sent 8 MiB frame.
		{msgChanges, 0, 0x80, 0, 0, 1, 2, 3},
	}
}

// FuzzSyncServer drives the responder's side of a session (Engine.serve,
// what the stream handler runs for a member) with arbitrary bytes from
// the peer. It must return without panicking, release all frame memory,
// and reserve no more than the input could justify.
func FuzzSyncServer(f *testing.F) {
	mn := mocknet.New()
	defer mn.Close()
	h, err := mn.GenPeer()
	if err != nil {
		f.Fatal(err)
	}
	p, peerObj := fuzzPeer(f, h.ID())
	for _, s := range fuzzSeeds(f, peerObj) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := New(h, Config{Members: fuzzMembers{}}, nil)
		defer e.Close()
		o, err := syncproto.NewObject("list", syncproto.TypeList, map[syncproto.DeviceID]syncproto.Role{
			e.Self(): syncproto.RoleOwner, syncproto.DeviceID(p.String()): syncproto.RoleEditor,
		}, e.ObjectConfig())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.Update("a", syncproto.Content{Title: "a", Body: syncproto.Text("from the server")}); err != nil {
			t.Fatal(err)
		}
		if err := e.Add(o); err != nil {
			t.Fatal(err)
		}
		st := &fuzzStream{Reader: bytes.NewReader(data), sc: &fuzzScope{}}
		e.serve(p, st)
		if st.sc.used != 0 {
			t.Fatalf("%d bytes of frame memory still reserved", st.sc.used)
		}
		if limit := max(framebuf.Step, 2*len(data)); st.sc.peak > limit {
			t.Fatalf("reserved %d bytes of frame memory for %d bytes of input", st.sc.peak, len(data))
		}
	})
}

// The first seed is a whole valid session: the server takes the peer's
// items, so the fuzzer starts from inputs that reach apply.
func TestSyncServerSeedApplies(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	p, peerObj := fuzzPeer(t, h.ID())
	e := New(h, Config{Members: fuzzMembers{}}, nil)
	defer e.Close()
	o, err := syncproto.NewObject("list", syncproto.TypeList, map[syncproto.DeviceID]syncproto.Role{
		e.Self(): syncproto.RoleOwner, syncproto.DeviceID(p.String()): syncproto.RoleEditor,
	}, e.ObjectConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Add(o); err != nil {
		t.Fatal(err)
	}
	st := &fuzzStream{Reader: bytes.NewReader(fuzzSeeds(t, peerObj)[0]), sc: &fuzzScope{}}
	e.serve(p, st)
	if got := e.Stats().ItemsChanged; got != 3 {
		t.Fatalf("the valid session changed %d items, want 3", got)
	}
	if st.sc.used != 0 || st.sc.peak == 0 {
		t.Fatalf("frame memory: %d still reserved, peak %d", st.sc.used, st.sc.peak)
	}
}

// A panic in a session is recovered: counted, the stream reset, and the
// initiator's call fails with ErrProtocol.
func TestSessionPanicRecovered(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	e := New(h, Config{Members: fuzzMembers{}}, nil)
	defer e.Close()
	st := &fuzzStream{Reader: bytes.NewReader(nil), sc: &fuzzScope{}}
	err = func() (err error) {
		defer e.recoverStream(h.ID(), st, "initiator", &err)
		panic("boom")
	}()
	if !errors.Is(err, ErrProtocol) || e.Stats().Panics != 1 || !st.reset {
		t.Fatalf("err %v, panics %d, reset %v", err, e.Stats().Panics, st.reset)
	}
}
