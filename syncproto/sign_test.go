package syncproto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/meshwork/meshwork/syncproto/hlc"
)

// Test keys: each device's ed25519 key derives from its name.
func testKey(d DeviceID) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(d))
	return ed25519.NewKeyFromSeed(seed[:])
}

type testSigner struct{ key ed25519.PrivateKey }

func (s testSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

type testVerifier struct{}

func (testVerifier) Verify(d DeviceID, msg, sig []byte) error {
	if !ed25519.Verify(testKey(d).Public().(ed25519.PublicKey), msg, sig) {
		return fmt.Errorf("signature of %q does not verify", d)
	}
	return nil
}

// fixedVerifier verifies with one key, for benchmarks.
type fixedVerifier struct{ pub ed25519.PublicKey }

func (f fixedVerifier) Verify(_ DeviceID, msg, sig []byte) error {
	if !ed25519.Verify(f.pub, msg, sig) {
		return errors.New("bad signature")
	}
	return nil
}

const devC DeviceID = "12D3KooWCharlie"

// signedObject is a replica held by self that signs and verifies.
func signedObject(t testing.TB, sim *simTime, self DeviceID) *Object {
	t.Helper()
	members := map[DeviceID]Role{devA: RoleOwner, devB: RoleEditor, devC: RoleEditor, devR: RoleReader}
	o, err := NewObject("obj", TypeFolder, members, Config{
		Self: self, Clock: sim.clockAt(0), Epoch: Epoch{1, self[len(self)-1]},
		Signer: testSigner{testKey(self)}, Verifier: testVerifier{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func fileContent(t testing.TB, path, ref string) Content {
	return Content{Title: path, Body: &FileEntry{Path: path, Mode: 0o644, ModTime: simStart, Size: 5, Blob: mustRef(t, ref)}}
}

// TestSignedVersionsRelay: A's signed versions (update, delete, resolve)
// verify at C when B relays them, and B's merge keeps A's signature.
func TestSignedVersionsRelay(t *testing.T) {
	sim := &simTime{t: simStart}
	a, b, c := signedObject(t, sim, devA), signedObject(t, sim, devB), signedObject(t, sim, devC)
	it, err := a.Update("f", fileContent(t, "f", "blake3-aa"))
	if err != nil {
		t.Fatal(err)
	}
	if len(it.Sync.Signature) != ed25519.SignatureSize {
		t.Fatalf("update carries a signature of %d bytes", len(it.Sync.Signature))
	}
	if _, _, err := b.ApplyFrom(devA, it); err != nil {
		t.Fatal(err)
	}
	relayed, _ := b.Item("f")
	if _, _, err := c.ApplyFrom(devB, relayed); err != nil {
		t.Fatalf("C refused A's version relayed by B: %v", err)
	}
	// Concurrent edits by A and B: B's merge holds a conflict; C verifies both.
	sim.advance(time.Second)
	va, _ := a.Update("f", fileContent(t, "f", "blake3-a1"))
	vb, _ := b.Update("f", fileContent(t, "f", "blake3-b1"))
	if _, m, err := b.ApplyFrom(devA, va); err != nil || len(m.Sync.Conflicts) != 1 {
		t.Fatalf("merge at B: %v %s", err, show(m))
	}
	merged, _ := b.Item("f")
	if _, res, err := c.ApplyFrom(devB, merged); err != nil || !res.Equal(merged) {
		t.Fatalf("C: %v\n%s", err, show(res))
	}
	_ = vb
	// B resolves and deletes; C verifies both, relayed by A.
	for _, op := range []func() (Item, error){func() (Item, error) { return b.Resolve("f") }, func() (Item, error) { return b.Delete("f") }} {
		v, err := op()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := a.ApplyFrom(devB, v); err != nil {
			t.Fatal(err)
		}
		held, _ := a.Item("f")
		if _, _, err := c.ApplyFrom(devA, held); err != nil {
			t.Fatalf("C refused B's version relayed by A: %v", err)
		}
	}
	if got, _ := c.Item("f"); !got.Sync.Deleted || got.Sync.Top().By != devB {
		t.Fatalf("C holds %s", show(got))
	}
}

// TestForgedVersionRefused: C, an editor, forges versions by A: unsigned,
// signed by C, signed over other content, with history added. Each is
// refused by B (ErrBadSignature), nothing is logged, and A's genuine
// version is still accepted afterwards.
func TestForgedVersionRefused(t *testing.T) {
	sim := &simTime{t: simStart}
	a, b, c := signedObject(t, sim, devA), signedObject(t, sim, devB), signedObject(t, sim, devC)
	genuine, err := a.Update("f", fileContent(t, "f", "blake3-aa"))
	if err != nil {
		t.Fatal(err)
	}
	forge := func(mod func(*Item)) Item {
		it := genuine.Clone()
		mod(&it)
		return it
	}
	cSigned, _ := SignVersion("obj", forge(func(it *Item) { it.Body.(*FileEntry).Blob = mustRef(t, "blake3-ee") }), testSigner{testKey(devC)})
	forged := map[string]Item{
		"unsigned":    forge(func(it *Item) { it.Sync.Signature = nil }),
		"signed by C": cSigned,
		"other blob":  forge(func(it *Item) { it.Body.(*FileEntry).Blob = mustRef(t, "blake3-ee") }),
		"deleted":     forge(func(it *Item) { it.Sync.Deleted = true }),
		"garbage":     forge(func(it *Item) { it.Sync.Signature = bytes.Repeat([]byte{7}, 64) }),
		"short":       forge(func(it *Item) { it.Sync.Signature = []byte{1} }),
		"history added": forge(func(it *Item) {
			it.Sync.History = append(it.Sync.History, History{Sequence: 1, When: it.Sync.Top().When, By: devB})
		}),
		"other object": forge(func(it *Item) { it.Sync.Signature, _ = testSigner{testKey(devA)}.Sign(VersionMessage("other", *it)) }),
		"as a conflict": forge(func(it *Item) {
			it.Sync.Conflicts = []Item{{Sync: Sync{ID: "f", Updates: 9, History: []History{{Sequence: 9, When: it.Sync.Top().When, By: devA}}}}}
		}),
		"endpoint of A":   forge(func(it *Item) { it.Sync.History[0].By = devA + "/tool" }),
		"later when":      forge(func(it *Item) { it.Sync.History[0].When = hlc.FromTime(simStart.Add(time.Second)) }),
		"other item":      forge(func(it *Item) { it.Sync.ID = "g" }),
		"more updates":    forge(func(it *Item) { it.Sync.Updates, it.Sync.History[0].Sequence = 2, 2 }),
		"noconflicts set": forge(func(it *Item) { it.Sync.NoConflicts = true }),
	}
	for name, it := range forged {
		head := b.Head()
		_, _, err := b.ApplyFrom(devC, it)
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: ApplyFrom = %v, want ErrBadSignature", name, err)
		}
		if b.Head() != head {
			t.Errorf("%s: refused item was logged", name)
		}
	}
	if _, ok := b.Item("f"); ok {
		t.Fatal("B holds a forged item")
	}
	if changed, _, err := b.ApplyFrom(devC, genuine); err != nil || !changed {
		t.Fatalf("genuine version relayed by C: %v %v", changed, err)
	}
	// A held version is never replaced by a copy with other bytes, even
	// one that would win the merge (later when, same by and sequence): the
	// copy counts as a new version (see newVersions), so its signature is
	// checked, and it fails.
	sim.advance(time.Minute)
	later := forge(func(it *Item) {
		it.Sync.History[0].When = hlc.FromTime(simStart.Add(time.Minute))
		it.Title = "forged"
	})
	head := b.Head()
	if changed, _, err := b.ApplyFrom(devC, later); !errors.Is(err, ErrBadSignature) || changed {
		t.Fatalf("copy of a held version: changed %v err %v, want ErrBadSignature", changed, err)
	}
	if held, _ := b.Item("f"); held.Title != "f" || b.Head() != head {
		t.Fatalf("copy of a held version replaced it: title %q", held.Title)
	}
	_ = c
}

// TestUnsignedFromAuthor: an unsigned version (written before signatures)
// is accepted from its author, or from an endpoint's device, and refused
// when relayed by another device or applied without a sender.
func TestUnsignedFromAuthor(t *testing.T) {
	sim := &simTime{t: simStart}
	old := newSimObject(t, sim, devA, 0, map[DeviceID]Role{devA: RoleOwner, devB: RoleEditor, devC: RoleEditor})
	it, err := old.Update("f", Content{Title: "old"})
	if err != nil || it.Sync.Signature != nil {
		t.Fatalf("replica without a signer: %v %x", err, it.Sync.Signature)
	}
	if _, _, err := signedObject(t, sim, devB).ApplyFrom(devC, it); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("relayed unsigned: %v", err)
	}
	if _, _, err := signedObject(t, sim, devB).Apply(it); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("unsigned without sender: %v", err)
	}
	if _, _, err := signedObject(t, sim, devB).ApplyFrom(devA, it); err != nil {
		t.Fatalf("unsigned from its author: %v", err)
	}
	ep := it.Clone()
	ep.Sync.History[0].By = devA + "/tool"
	if _, _, err := signedObject(t, sim, devB).ApplyFrom(devA, ep); err != nil {
		t.Fatalf("unsigned by an endpoint, from its device: %v", err)
	}
}

// TestSignOwn: versions written by an endpoint of this device (DEVICE/NAME)
// through its API are signed by the device's key and verify elsewhere;
// other devices' versions are left alone.
func TestSignOwn(t *testing.T) {
	sim := &simTime{t: simStart}
	a, b := signedObject(t, sim, devA), signedObject(t, sim, devB)
	w := hlc.FromTime(simStart)
	ext := Item{Sync: Sync{ID: "e", Updates: 1, History: []History{{Sequence: 1, When: w, By: devA + "/tool"}},
		Conflicts: []Item{{Sync: Sync{ID: "e", Updates: 1, History: []History{{Sequence: 1, When: w, By: devB}}}}}}, Content: Content{Title: "from a tool"}}
	signed, err := a.SignOwn(ext)
	if err != nil {
		t.Fatal(err)
	}
	if len(signed.Sync.Signature) == 0 || signed.Sync.Conflicts[0].Sync.Signature != nil {
		t.Fatalf("SignOwn signed the wrong versions: %x %x", signed.Sync.Signature, signed.Sync.Conflicts[0].Sync.Signature)
	}
	if err := VerifyVersion("obj", signed, "", testVerifier{}); err != nil {
		t.Fatal(err)
	}
	signed.Sync.Conflicts = nil
	if _, _, err := b.ApplyFrom(devC, signed); err != nil {
		t.Fatal(err)
	}
}

// TestVersionMessageLayout pins the signed bytes (doc.go, sign.go).
func TestVersionMessageLayout(t *testing.T) {
	it := Item{Sync: Sync{ID: "a", Updates: 1, Deleted: true, History: []History{{Sequence: 1, When: hlc.Timestamp{Wall: 1, Logical: 2}, By: "D"}}},
		Content: Content{Title: "T", Body: Text("x")}}
	hh := sha256.Sum256([]byte("\x01" + "\x01\x03\x02\x02\x01D"))
	ch := sha256.Sum256([]byte("\x01T" + "\x02\x01x" + "\x00"))
	want := "meshwork/version/v1\x00" + "\x01o" + "\x01a" + "\x01" + "\x01" + "\x01\x03\x02\x02\x01D" + string(hh[:]) + string(ch[:])
	if got := VersionMessage("o", it); string(got) != want {
		t.Fatalf("VersionMessage =\n%q\nwant\n%q", got, want)
	}
	// Conflicts and the signature itself are not signed.
	it.Sync.Signature = []byte{1}
	it.Sync.Conflicts = []Item{it.stripped()}
	if got := VersionMessage("o", it); string(got) != want {
		t.Fatal("VersionMessage depends on conflicts or the signature")
	}
}

func BenchmarkSignVerify(b *testing.B) {
	it := Item{Sync: Sync{ID: "dir/file-000123.bin", Updates: 1, History: []History{{Sequence: 1, When: hlc.FromTime(simStart), By: devA}}},
		Content: fileContent(b, "dir/file-000123.bin", "blake3-0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab")}
	s := testSigner{testKey(devA)}
	v := fixedVerifier{testKey(devA).Public().(ed25519.PublicKey)}
	b.ReportAllocs()
	for b.Loop() {
		signed, err := SignVersion("obj", it, s)
		if err != nil {
			b.Fatal(err)
		}
		if err := VerifyVersion("obj", signed, "", v); err != nil {
			b.Fatal(err)
		}
	}
}
