package node

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/internal/framebuf"
	"github.com/meshwork/meshwork/node/internal/wire"
)

// fsScope is a stream scope that tracks the frame memory reserved in it.
type fsScope struct {
	network.StreamScope
	used, peak int
}

func (s *fsScope) ReserveMemory(n int, _ uint8) error {
	s.used += n
	s.peak = max(s.peak, s.used)
	return nil
}

func (s *fsScope) ReleaseMemory(n int) { s.used -= n }

// fsStream is a peer's stream carrying the fuzzer's bytes, with a scope.
type fsStream struct {
	io.Reader
	sc *fsScope
}

func (s fsStream) Scope() network.StreamScope { return s.sc }

func fsKey(t testing.TB, seed byte) crypto.PrivKey {
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fsStateFrame is a state message frame as a member sends it.
func fsStateFrame(t testing.TB, l *identity.Log, recs ...[]byte) []byte {
	var b bytes.Buffer
	if err := wire.WriteFrame(&b, msgState, encodeState(stateMsg{log: l.Encode(), records: recs})); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// FuzzMembershipServer drives what handleMembership does with a member's
// stream, short of the node's own state: read the state frame (memory
// reserved in the stream's scope), decode it, verify the log, merge it
// into this device's log and verify the peer records. It must not panic,
// must release all frame memory and reserve no more than the input could
// justify.
func FuzzMembershipServer(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	keyA := fsKey(f, 1)
	ours, err := identity.NewMesh(keyA, "alpha", now)
	if err != nil {
		f.Fatal(err)
	}
	other, err := identity.NewMesh(fsKey(f, 2), "stranger", now)
	if err != nil {
		f.Fatal(err)
	}
	idA, _ := peer.IDFromPrivateKey(keyA)
	env, err := record.Seal(&peer.PeerRecord{PeerID: idA, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001")}, Seq: 1}, keyA)
	if err != nil {
		f.Fatal(err)
	}
	rec, err := env.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	forged, err := record.Seal(&peer.PeerRecord{PeerID: idA, Seq: 2}, fsKey(f, 3))
	if err != nil {
		f.Fatal(err)
	}
	forgedRec, _ := forged.Marshal()
	valid := fsStateFrame(f, ours, rec)
	f.Add(valid)
	f.Add(fsStateFrame(f, ours))
	f.Add(fsStateFrame(f, other, rec, forgedRec))
	f.Add(valid[:len(valid)/2])
	f.Add(append(append([]byte{}, valid...), valid...))
	f.Add([]byte{0x81, 0x80, 0x80, 0x04, msgState, 1, 2, 3}) // announces 8 MiB, sends 3 bytes
	encoded := ours.Encode()
	f.Fuzz(func(t *testing.T, data []byte) {
		st := fsStream{Reader: bytes.NewReader(data), sc: &fsScope{}}
		rd := wire.NewReader(st)
		msg, in, err := readState(rd)
		if err == nil {
			local, err := identity.DecodeLog(encoded)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = local.Merge(in)
			for _, r := range msg.records {
				_, _ = verifyPeerRecord(r)
			}
		}
		rd.Release()
		if st.sc.used != 0 {
			t.Fatalf("%d bytes of frame memory still reserved", st.sc.used)
		}
		if limit := max(framebuf.Step, 2*len(data)); st.sc.peak > limit {
			t.Fatalf("reserved %d bytes of frame memory for %d bytes of input", st.sc.peak, len(data))
		}
	})
}

// The valid seed reaches the merge, and a record signed by another key is
// refused.
func TestMembershipServerSeeds(t *testing.T) {
	keyA := fsKey(t, 1)
	l, err := identity.NewMesh(keyA, "alpha", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	idA, _ := peer.IDFromPrivateKey(keyA)
	good, _ := record.Seal(&peer.PeerRecord{PeerID: idA, Seq: 1}, keyA)
	bad, _ := record.Seal(&peer.PeerRecord{PeerID: idA, Seq: 1}, fsKey(t, 3))
	g, _ := good.Marshal()
	b, _ := bad.Marshal()
	msg, in, err := readState(wire.NewReader(bytes.NewReader(fsStateFrame(t, l, g, b))))
	if err != nil || in.Len() != l.Len() || len(msg.records) != 2 {
		t.Fatalf("valid state: %v", err)
	}
	if pr, err := verifyPeerRecord(msg.records[0]); err != nil || pr.PeerID != idA {
		t.Fatalf("good record: %v", err)
	}
	if _, err := verifyPeerRecord(msg.records[1]); err == nil {
		t.Fatal("a record signed by another key was accepted")
	}
}

type fsResetter struct{ reset bool }

func (r *fsResetter) Reset() error { r.reset = true; return nil }

// A panic in a stream handler is logged at ERROR with the peer, the
// protocol and the stack, and the stream is reset.
func TestRecoverStream(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	id, _ := peer.IDFromPrivateKey(fsKey(t, 1))
	st := &fsResetter{}
	func() {
		defer recoverStream(log, id, ProtoMembership, st)
		panic("boom")
	}()
	for _, want := range []string{"level=ERROR", "peer=" + id.String(), "protocol=" + ProtoMembership, "panic=boom", "membership_fuzz_test.go"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, out.String())
		}
	}
	if !st.reset {
		t.Error("stream not reset")
	}
}
