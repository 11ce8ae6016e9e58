package node

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/node/internal/wire"
)

// ivFuzzHost is an inviteHost over an in-memory membership log: serving a
// redemption without a daemon.
type ivFuzzHost struct {
	key  crypto.PrivKey
	self peer.ID
	log  *identity.Log
}

func (h *ivFuzzHost) inviteSelf() (identity.MeshID, peer.ID, bool) {
	return h.log.MeshID(), h.self, true
}

func (h *ivFuzzHost) redeemInvite(g *identity.InviteGrant, joiner peer.ID, name string, challenge, proof []byte) ([]byte, error) {
	l := h.log.Clone() // every input starts from the same log
	if err := l.Redeem(h.key, g, joiner, name, challenge, proof, h.now()); err != nil {
		return nil, err
	}
	return l.Encode(), nil
}

func (h *ivFuzzHost) joined(peer.ID, string, identity.Role) {}

func (h *ivFuzzHost) now() time.Time { return time.Now() }

func ivFrame(typ byte, p []byte) []byte {
	var b bytes.Buffer
	_ = wire.WriteFrame(&b, typ, p)
	return b.Bytes()
}

// FuzzInviteServer drives the redeemer's side of /meshwork/invite/1.0.0
// (serveInvite, what the stream handler runs) with arbitrary bytes from a
// stranger: no panic, it returns, and it answers with at most a challenge
// and then one refusal or welcome, each within its bound; no input gets a
// welcome, since no valid proof can answer a challenge drawn after it.
func FuzzInviteServer(f *testing.F) {
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		f.Fatal(err)
	}
	self, _ := peer.IDFromPrivateKey(key)
	now := time.Now()
	l, err := identity.NewMesh(key, "owner", now)
	if err != nil {
		f.Fatal(err)
	}
	other, _, _ := crypto.GenerateEd25519Key(nil)
	otherID, _ := peer.IDFromPrivateKey(other)
	if err := l.Add(key, otherID, "other", identity.RoleMember, now); err != nil {
		f.Fatal(err)
	}
	h := &ivFuzzHost{key: key, self: self, log: l}
	jkey, _, _ := crypto.GenerateEd25519Key(nil)
	joiner, _ := peer.IDFromPrivateKey(jkey)

	here, err := l.NewInvite(key, identity.RoleMember, time.Hour, nil, now)
	if err != nil {
		f.Fatal(err)
	}
	elsewhere, err := l.NewInvite(key, identity.RoleMember, time.Hour, nil, now, otherID)
	if err != nil {
		f.Fatal(err)
	}
	for _, inv := range []*identity.Invite{here, elsewhere} {
		g, _ := inv.Grant.MarshalBinary()
		hello := ivFrame(msgHello, wire.AppendBytes(wire.AppendBytes(nil, g), []byte("phone")))
		f.Add(hello)
		f.Add(append(hello, ivFrame(msgProof, make([]byte, 64))...))
		f.Add(append(bytes.Clone(hello), ivFrame(msgHello, nil)...))
	}
	f.Add(ivFrame(msgHello, nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, msgHello})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(data), &out}
		_ = serveInvite(rw, joiner, h, slog.New(slog.DiscardHandler))
		r := bufio.NewReader(&out)
		refused := false
		for i := 0; ; i++ {
			typ, p, err := wire.ReadFrame(r, maxInviteFrame)
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatalf("answer %d: %v", i, err)
			}
			switch {
			case refused:
				t.Fatalf("answer %d after a refusal", i)
			case i == 0 && typ == msgChallenge && len(p) == 32:
			case typ == msgRefused:
				refused = true
			default:
				t.Fatalf("answer %d: type %d, %d bytes", i, typ, len(p))
			}
		}
	})
}
