package exchange

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/hlc"
)

// TestForgedAuthorRefused: B, an editor, holds versions it forged with
// A's `by` (unsigned, and with a bad signature) and offers them to C; C
// refuses them (counted as bad signatures), holds nothing by A, and still
// takes A's genuine change relayed by B: A and C never meet.
func TestForgedAuthorRefused(t *testing.T) {
	ms := newMemberSet()
	a, b, c := newNode(t, "A", ms), newNode(t, "B", ms), newNode(t, "C", ms)
	m := roles(a, owner, b, editor, c, editor)
	for _, n := range []*node{a, c} {
		n.addObject(obj, m)
	}
	// B's replica checks no signatures: it holds anything.
	cfg := b.e.ObjectConfig()
	cfg.Verifier = nil
	bo, err := syncproto.NewObject(obj, syncproto.TypeList, m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.e.Add(bo); err != nil {
		t.Fatal(err)
	}
	key := b.key
	when := b.e.cfg.Clock.Now()
	forged := []syncproto.Item{
		{Sync: syncproto.Sync{ID: "unsigned", Updates: 1, History: []syncproto.History{{Sequence: 1, When: when, By: a.dev()}}}, Content: syncproto.Content{Title: "forged"}},
		{Sync: syncproto.Sync{ID: "badsig", Updates: 1, History: []syncproto.History{{Sequence: 1, When: when, By: a.dev()}}, Signature: bytes.Repeat([]byte{1}, 64)}, Content: syncproto.Content{Title: "forged"}},
	}
	// Signed by B's key but claiming A.
	bs, err := syncproto.SignVersion(obj, syncproto.Item{Sync: syncproto.Sync{ID: "bsig", Updates: 1, History: []syncproto.History{{Sequence: 1, When: when, By: a.dev()}}}, Content: syncproto.Content{Title: "forged"}}, KeySigner{key})
	if err != nil {
		t.Fatal(err)
	}
	forged = append(forged, bs)
	if err := b.e.Change(obj, func(o *syncproto.Object) error {
		for _, it := range forged {
			if _, _, err := o.Apply(it); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	connect(t, b, c)
	waitFor(t, timeout, "C to refuse the forged versions", func() bool { return c.e.Stats().BadSignatures >= int64(len(forged)) })
	for _, it := range forged {
		if c.has(obj, string(it.Sync.ID)) {
			t.Fatalf("C holds forged item %q", it.Sync.ID)
		}
	}
	connect(t, a, b)
	a.update(obj, "genuine", "from A")
	waitFor(t, timeout, "A's change at C through B", func() bool { return c.has(obj, "genuine") })
	got, _ := c.item(obj, "genuine")
	if got.Sync.Top().By != a.dev() || len(got.Sync.Signature) != 64 {
		t.Fatalf("C holds %+v", got.Sync)
	}
	if connected(a, c) {
		t.Fatal("A and C are connected")
	}
}

func TestPeerVerifier(t *testing.T) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(key)
	dev := syncproto.DeviceID(id.String())
	sig, err := KeySigner{key}.Sign([]byte("msg"))
	if err != nil {
		t.Fatal(err)
	}
	var v PeerVerifier
	for range 2 { // the second time from the cache
		if err := v.Verify(dev, []byte("msg"), sig); err != nil {
			t.Fatal(err)
		}
	}
	if v.Verify(dev, []byte("other"), sig) == nil {
		t.Fatal("a signature of another message verified")
	}
	if v.Verify("not-a-peer-id", []byte("msg"), sig) == nil {
		t.Fatal("a bad device ID verified")
	}
	rsa, _, err := crypto.GenerateRSAKeyPair(2048, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rid, _ := peer.IDFromPrivateKey(rsa)
	if v.Verify(syncproto.DeviceID(rid.String()), []byte("msg"), sig) == nil {
		t.Fatal("an RSA peer ID verified")
	}
}

// BenchmarkSignVerify: one version signed with a libp2p Ed25519 key and
// verified with the PeerVerifier (key cached), as every device pays it per
// version it creates and per new version it receives.
func BenchmarkSignVerify(b *testing.B) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(key)
	dev := syncproto.DeviceID(id.String())
	ref, _ := syncproto.ParseBlobRef("blake3-" + string(bytes.Repeat([]byte("ab"), 32)))
	it := syncproto.Item{Sync: syncproto.Sync{ID: "dir/file-000123.bin", Updates: 1, History: []syncproto.History{{Sequence: 1, When: hlc.Timestamp{Wall: 1}, By: dev}}},
		Content: syncproto.Content{Title: "file-000123.bin", Body: &syncproto.FileEntry{Path: "dir/file-000123.bin", Mode: 0o644, Size: 10240, Blob: ref}}}
	s, v := KeySigner{key}, &PeerVerifier{}
	b.ReportAllocs()
	for b.Loop() {
		signed, err := syncproto.SignVersion(obj, it, s)
		if err != nil {
			b.Fatal(err)
		}
		if err := syncproto.VerifyVersion(obj, signed, "", v); err != nil {
			b.Fatal(err)
		}
	}
}
