package identity

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// t0 is the fixed clock of the tests.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// device is a test device: a key and its ID.
type device struct {
	key crypto.PrivKey
	id  peer.ID
}

// newDevice makes a device whose key is derived from seed, so tests are
// reproducible.
func newDevice(t testing.TB, seed uint64) device {
	t.Helper()
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	key, _, err := crypto.GenerateEd25519Key(rand.NewChaCha8(s))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return device{key, id}
}

// fixture is a small mesh: owner, admin and member.
type fixture struct {
	owner, admin, member device
	log                  *Log
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{owner: newDevice(t, 1), admin: newDevice(t, 2), member: newDevice(t, 3)}
	var err error
	if f.log, err = NewMesh(f.owner.key, "owner", t0); err != nil {
		t.Fatal(err)
	}
	must(t, f.log.Add(f.owner.key, f.admin.id, "admin", RoleAdmin, t0.Add(time.Second)))
	must(t, f.log.Add(f.admin.key, f.member.id, "member", RoleMember, t0.Add(2*time.Second)))
	return f
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// forge signs e with key and appends it to l without any authority check,
// as a misbehaving device could. l's state is left stale: only Encode is
// meaningful afterwards.
func forge(t testing.TB, l *Log, key crypto.PrivKey, e *entry, now time.Time) *entry {
	t.Helper()
	must(t, l.prepare(key, e, now))
	must(t, e.seal(key))
	l.g.byID[e.id] = e
	l.order = append(l.order, e)
	l.heads = []EntryID{e.id}
	return e
}

// encodeEntries encodes entries as a log, in the given order.
func encodeEntries(entries []*entry) []byte {
	w := encoder{}
	w.fixed([]byte(logMagic))
	w.uvarint(uint64(len(entries)))
	for _, e := range entries {
		w.bytes(e.raw)
	}
	return w.b
}

// sameLog fails unless a and b encode identically and list the same members.
func sameLog(t testing.TB, a, b *Log) {
	t.Helper()
	if !bytes.Equal(a.Encode(), b.Encode()) {
		t.Fatalf("encodings differ:\n%v\n%v", ids(a), ids(b))
	}
	am, bm := a.Members(), b.Members()
	if len(am) != len(bm) {
		t.Fatalf("members differ: %v vs %v", am, bm)
	}
	for i := range am {
		if am[i] != bm[i] {
			t.Fatalf("member %d differs: %+v vs %+v", i, am[i], bm[i])
		}
	}
}

func ids(l *Log) []string {
	var s []string
	for _, e := range l.order {
		s = append(s, e.kind.String()+":"+e.id.short())
	}
	return s
}

// challenge returns a fixed 32-byte challenge.
func challenge(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
