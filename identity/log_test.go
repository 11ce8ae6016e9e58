package identity

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewMeshAndMembers(t *testing.T) {
	f := newFixture(t)
	l := f.log
	if l.MeshID() != MeshID(l.order[0].id) || l.MeshID() != MeshID(hashID(l.order[0].raw)) {
		t.Fatal("mesh id is not the hash of the genesis entry")
	}
	ms := l.Members()
	if len(ms) != 3 || ms[0].Name != "admin" || ms[1].Name != "member" || ms[2].Name != "owner" {
		t.Fatalf("members %+v", ms)
	}
	m, ok := l.Lookup(f.member.id)
	if !ok || m.Role != RoleMember || m.AddedBy != f.admin.id || !m.AddedAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("lookup member: %+v %v", m, ok)
	}
	if o, _ := l.Lookup(f.owner.id); o.Role != RoleOwner || o.AddedBy != f.owner.id {
		t.Fatalf("owner %+v", o)
	}
	if !l.IsMember(f.member.id) || l.IsMember(newDevice(t, 99).id) {
		t.Fatal("IsMember")
	}
	if l.Len() != 3 || len(l.Heads()) != 1 || l.Heads()[0] != l.order[2].id {
		t.Fatalf("len %d heads %v", l.Len(), l.Heads())
	}
	must(t, l.SetRole(f.owner.key, f.member.id, RoleAdmin, t0.Add(3*time.Second)))
	must(t, l.Revoke(f.owner.key, f.admin.id, t0.Add(4*time.Second)))
	if m, _ := l.Lookup(f.member.id); m.Role != RoleAdmin {
		t.Fatalf("role not changed: %+v", m)
	}
	if m, ok := l.Lookup(f.admin.id); !ok || !m.Revoked || l.IsMember(f.admin.id) {
		t.Fatalf("revoked admin: %+v", m)
	}
	if len(l.Members()) != 2 {
		t.Fatalf("members after revoke: %+v", l.Members())
	}
}

func TestSortByNameThenID(t *testing.T) {
	f := newFixture(t)
	a, b := newDevice(t, 10), newDevice(t, 11)
	must(t, f.log.Add(f.owner.key, a.id, "same", RoleMember, t0.Add(time.Hour)))
	must(t, f.log.Add(f.owner.key, b.id, "same", RoleMember, t0.Add(time.Hour)))
	ms := f.log.Members()
	if len(ms) != 5 || ms[3].Name != "same" || ms[4].Name != "same" || ms[3].ID > ms[4].ID {
		t.Fatalf("not sorted by name then id: %+v", ms)
	}
}

func TestRefusals(t *testing.T) {
	newcomer := newDevice(t, 20)
	later := t0.Add(time.Minute)
	tests := []struct {
		name string
		do   func(f *fixture) error
		want []error
	}{
		{"member adds", func(f *fixture) error {
			return f.log.Add(f.member.key, newcomer.id, "x", RoleMember, later)
		}, []error{ErrUnauthorized}},
		{"stranger adds", func(f *fixture) error {
			return f.log.Add(newcomer.key, newDevice(t, 21).id, "x", RoleMember, later)
		}, []error{ErrUnauthorized, ErrNotMember}},
		{"admin adds owner", func(f *fixture) error {
			return f.log.Add(f.admin.key, newcomer.id, "x", RoleOwner, later)
		}, []error{ErrUnauthorized}},
		{"admin promotes to owner", func(f *fixture) error {
			return f.log.SetRole(f.admin.key, f.member.id, RoleOwner, later)
		}, []error{ErrUnauthorized}},
		{"admin demotes owner", func(f *fixture) error {
			return f.log.SetRole(f.admin.key, f.owner.id, RoleMember, later)
		}, []error{ErrUnauthorized}},
		{"admin revokes owner", func(f *fixture) error {
			return f.log.Revoke(f.admin.key, f.owner.id, later)
		}, []error{ErrUnauthorized}},
		{"owner revokes itself", func(f *fixture) error {
			return f.log.Revoke(f.owner.key, f.owner.id, later)
		}, []error{ErrUnauthorized}},
		{"admin changes own role", func(f *fixture) error {
			return f.log.SetRole(f.admin.key, f.admin.id, RoleMember, later)
		}, []error{ErrUnauthorized}},
		{"member changes role", func(f *fixture) error {
			return f.log.SetRole(f.member.key, f.admin.id, RoleMember, later)
		}, []error{ErrUnauthorized}},
		{"add existing", func(f *fixture) error {
			return f.log.Add(f.owner.key, f.member.id, "again", RoleMember, later)
		}, []error{ErrAlreadyMember}},
		{"set role of stranger", func(f *fixture) error {
			return f.log.SetRole(f.owner.key, newcomer.id, RoleAdmin, later)
		}, []error{ErrNotMember}},
		{"revoke stranger", func(f *fixture) error {
			return f.log.Revoke(f.owner.key, newcomer.id, later)
		}, []error{ErrNotMember}},
		{"bad name", func(f *fixture) error {
			return f.log.Add(f.owner.key, newcomer.id, "", RoleMember, later)
		}, []error{ErrMalformed}},
		{"bad role", func(f *fixture) error {
			return f.log.Add(f.owner.key, newcomer.id, "x", Role("root"), later)
		}, []error{ErrMalformed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			before := f.log.Encode()
			err := tt.do(f)
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("got %v, want %v", err, w)
				}
			}
			if !bytes.Equal(before, f.log.Encode()) || f.log.Len() != 3 {
				t.Error("log changed by a refused operation")
			}
		})
	}
}

func TestRevokedDevice(t *testing.T) {
	f := newFixture(t)
	must(t, f.log.Revoke(f.owner.key, f.admin.id, t0.Add(time.Minute)))
	if m, ok := f.log.Lookup(f.admin.id); !ok || !m.Revoked || !m.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("revoked member %+v, want Revoked and RevokedAt %v", m, t0.Add(time.Minute))
	}
	if r := f.log.Revoked(); len(r) != 1 || r[0].ID != f.admin.id {
		t.Errorf("Revoked() = %+v, want the admin only", r)
	}
	before := f.log.Encode()
	if err := f.log.Add(f.owner.key, f.admin.id, "back", RoleMember, t0.Add(2*time.Minute)); !errors.Is(err, ErrRevoked) {
		t.Errorf("re-add revoked: %v", err)
	}
	if err := f.log.Revoke(f.owner.key, f.admin.id, t0.Add(2*time.Minute)); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoke twice: %v", err)
	}
	if err := f.log.SetRole(f.owner.key, f.admin.id, RoleMember, t0.Add(2*time.Minute)); !errors.Is(err, ErrRevoked) {
		t.Errorf("set role of revoked: %v", err)
	}
	err := f.log.Add(f.admin.key, newDevice(t, 30).id, "x", RoleMember, t0.Add(2*time.Minute))
	if !errors.Is(err, ErrUnauthorized) || !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked admin adds: %v", err)
	}
	if !bytes.Equal(before, f.log.Encode()) {
		t.Error("log changed")
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	f := newFixture(t)
	must(t, f.log.SetRole(f.owner.key, f.member.id, RoleAdmin, t0.Add(time.Minute)))
	must(t, f.log.Revoke(f.member.key, f.admin.id, t0.Add(2*time.Minute)))
	enc := f.log.Encode()
	if !bytes.HasPrefix(enc, []byte("MWLOG\x01")) {
		t.Fatalf("no magic: %q", enc[:8])
	}
	got, err := DecodeLog(enc)
	if err != nil {
		t.Fatal(err)
	}
	sameLog(t, f.log, got)
	if got.MeshID() != f.log.MeshID() || got.Len() != f.log.Len() {
		t.Fatal("mesh id or length differ")
	}
	// Any order of entries decodes to the same log.
	rev := make([]*entry, len(f.log.order))
	for i, e := range f.log.order {
		rev[len(rev)-1-i] = e
	}
	got, err = DecodeLog(encodeEntries(rev))
	if err != nil {
		t.Fatal(err)
	}
	sameLog(t, f.log, got)
}

func TestDecodeForged(t *testing.T) {
	f := newFixture(t)
	enc := f.log.Encode()
	// Flip a byte of the member entry's name ("member" -> "membes").
	i := bytes.LastIndex(enc, []byte("member"))
	bad := bytes.Clone(enc)
	bad[i+5] ^= 1
	if _, err := DecodeLog(bad); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "entry 2") {
		t.Errorf("altered name: %v", err)
	}
	// Flip a byte of the last signature.
	bad = bytes.Clone(enc)
	bad[len(bad)-7] ^= 0x40
	if _, err := DecodeLog(bad); !errors.Is(err, ErrBadSignature) {
		t.Errorf("altered signature: %v", err)
	}
	// Flip a byte of the time of the admin entry.
	e := f.log.order[1]
	j := bytes.Index(enc, e.raw)
	k := bytes.Index(e.raw, e.parents[0][:]) + 32 // time follows the parents
	bad = bytes.Clone(enc)
	bad[j+k+7] ^= 1
	if _, err := DecodeLog(bad); !errors.Is(err, ErrBadSignature) {
		t.Errorf("altered time: %v", err)
	}
}

func TestDecodeUnauthorized(t *testing.T) {
	f := newFixture(t)
	forge(t, f.log, f.member.key, &entry{kind: kindAdd, subject: newDevice(t, 40).id, name: "evil", role: RoleMember}, t0.Add(time.Minute))
	_, err := DecodeLog(f.log.Encode())
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "entry 3") {
		t.Fatalf("entry by a plain member: %v", err)
	}

	// A revoked admin that acts after seeing its revocation.
	f = newFixture(t)
	must(t, f.log.Revoke(f.owner.key, f.admin.id, t0.Add(time.Minute)))
	forge(t, f.log, f.admin.key, &entry{kind: kindAdd, subject: newDevice(t, 41).id, name: "evil", role: RoleMember}, t0.Add(2*time.Minute))
	if _, err := DecodeLog(f.log.Encode()); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("entry by a revoked admin: %v", err)
	}

	// An admin making an owner.
	f = newFixture(t)
	forge(t, f.log, f.admin.key, &entry{kind: kindSetRole, subject: f.member.id, role: RoleOwner}, t0.Add(time.Minute))
	if _, err := DecodeLog(f.log.Encode()); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("admin makes owner: %v", err)
	}
}

func TestDecodeTruncated(t *testing.T) {
	f := newFixture(t)
	enc := f.log.Encode()
	for n := 0; n < len(enc); n++ {
		if _, err := DecodeLog(enc[:n]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d of %d: %v", n, len(enc), err)
		}
	}
	o := f.log.order
	// Drop the admin entry, the parent of the member entry.
	if _, err := DecodeLog(encodeEntries([]*entry{o[0], o[2]})); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing parent: %v", err)
	}
	// Drop the genesis entry.
	if _, err := DecodeLog(encodeEntries(o[1:])); !errors.Is(err, ErrTruncated) {
		t.Errorf("no genesis: %v", err)
	}
	// Dropping the head leaves a valid, shorter log.
	if l, err := DecodeLog(encodeEntries(o[:2])); err != nil || l.Len() != 2 {
		t.Errorf("prefix log: %v", err)
	}
}

func TestDecodeWrongMesh(t *testing.T) {
	a := newFixture(t)
	other, err := NewMesh(a.owner.key, "other", t0.Add(time.Hour))
	must(t, err)
	must(t, other.Add(a.owner.key, a.admin.id, "admin", RoleAdmin, t0.Add(2*time.Hour)))
	mixed := append(append([]*entry{}, a.log.order...), other.order[1])
	if _, err := DecodeLog(encodeEntries(mixed)); !errors.Is(err, ErrWrongMesh) {
		t.Errorf("entry of another mesh: %v", err)
	}
	two := append(append([]*entry{}, a.log.order...), other.order[0])
	if _, err := DecodeLog(encodeEntries(two)); !errors.Is(err, ErrWrongMesh) {
		t.Errorf("two geneses: %v", err)
	}
	if _, err := a.log.Merge(other); !errors.Is(err, ErrWrongMesh) {
		t.Errorf("merge of another mesh: %v", err)
	}
}

func TestDecodeMalformed(t *testing.T) {
	f := newFixture(t)
	enc := f.log.Encode()
	huge := append([]byte(logMagic), 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f)
	cases := map[string][]byte{
		"garbage":        []byte("hello, world"),
		"wrong version":  append([]byte("MWLOG\x02"), enc[6:]...),
		"huge count":     append([]byte(logMagic), 0xff, 0xff, 0xff, 0xff, 0x0f),
		"huge length":    huge,
		"trailing bytes": append(bytes.Clone(enc), 0),
		"duplicate":      encodeEntries([]*entry{f.log.order[0], f.log.order[0]}),
		"empty entry":    append([]byte(logMagic), 1, 0),
	}
	for name, data := range cases {
		if _, err := DecodeLog(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func TestCloneIsIndependent(t *testing.T) {
	f := newFixture(t)
	c := f.log.Clone()
	before := f.log.Encode()
	must(t, c.Add(f.owner.key, newDevice(t, 60).id, "c", RoleMember, t0.Add(time.Hour)))
	must(t, c.Revoke(f.owner.key, f.member.id, t0.Add(time.Hour)))
	if !bytes.Equal(before, f.log.Encode()) || !f.log.IsMember(f.member.id) || len(f.log.Members()) != 3 {
		t.Fatal("clone shares state with the original")
	}
}
