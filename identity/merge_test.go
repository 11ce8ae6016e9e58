package identity

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// mergeBoth merges a and b both ways and checks the results agree.
func mergeBoth(t *testing.T, a, b *Log) *Log {
	t.Helper()
	ab, ba := a.Clone(), b.Clone()
	if _, err := ab.Merge(b); err != nil {
		t.Fatal(err)
	}
	if _, err := ba.Merge(a); err != nil {
		t.Fatal(err)
	}
	sameLog(t, ab, ba)
	dec, err := DecodeLog(ab.Encode())
	if err != nil {
		t.Fatalf("merged log does not decode: %v", err)
	}
	sameLog(t, ab, dec)
	return ab
}

func TestMergeCommutativeIdempotent(t *testing.T) {
	f := newFixture(t)
	a, b := f.log, f.log.Clone()
	d1, d2 := newDevice(t, 70), newDevice(t, 71)
	must(t, a.Add(f.owner.key, d1.id, "d1", RoleMember, t0.Add(time.Minute)))
	must(t, b.Add(f.admin.key, d2.id, "d2", RoleAdmin, t0.Add(time.Minute)))
	m := mergeBoth(t, a, b)
	if !m.IsMember(d1.id) || !m.IsMember(d2.id) || m.Len() != 5 || len(m.Heads()) != 2 {
		t.Fatalf("merged: %v heads %d", m.Members(), len(m.Heads()))
	}
	before := m.Encode()
	if n, err := m.Merge(a); err != nil || n != 0 {
		t.Fatalf("re-merge added %d: %v", n, err)
	}
	if n, err := m.Merge(m.Clone()); err != nil || n != 0 || !bytes.Equal(before, m.Encode()) {
		t.Fatalf("self merge added %d: %v", n, err)
	}
	c := a.Clone()
	if n, err := c.Merge(b); err != nil || n != 1 {
		t.Fatalf("merge added %d, want 1: %v", n, err)
	}
	// The next entry names both heads and decodes.
	must(t, m.Add(f.owner.key, newDevice(t, 72).id, "d3", RoleMember, t0.Add(2*time.Minute)))
	if len(m.order[len(m.order)-1].parents) != 2 || len(m.Heads()) != 1 {
		t.Fatal("new entry does not name both heads")
	}
	if _, err := DecodeLog(m.Encode()); err != nil {
		t.Fatal(err)
	}
}

// TestRevokedAdminConcurrentAdd: an owner revokes admin X while X, not
// having seen it, adds D. Whatever the tie-break order, D is not a member.
func TestRevokedAdminConcurrentAdd(t *testing.T) {
	for i := range 12 { // different times give different entry IDs and orders
		f := newFixture(t)
		x, d := f.admin, newDevice(t, 80)
		lo, lx := f.log, f.log.Clone()
		at := t0.Add(time.Duration(i) * time.Millisecond)
		must(t, lo.Revoke(f.owner.key, x.id, at.Add(time.Minute)))
		must(t, lx.Add(x.key, d.id, "d", RoleAdmin, at.Add(time.Minute)))
		must(t, lx.SetRole(d.key, f.member.id, RoleAdmin, at.Add(2*time.Minute))) // D acts too
		m := mergeBoth(t, lo, lx)
		if m.IsMember(d.id) || m.IsMember(x.id) {
			t.Fatalf("round %d: D member=%v, X member=%v", i, m.IsMember(d.id), m.IsMember(x.id))
		}
		if mem, _ := m.Lookup(f.member.id); mem.Role != RoleMember {
			t.Fatalf("round %d: D's action took effect: %+v", i, mem)
		}
		if _, ok := m.Lookup(d.id); ok {
			t.Fatalf("round %d: D appears in the log's state", i)
		}
		// The revoked device cannot be re-added.
		if err := m.Add(f.owner.key, x.id, "x again", RoleMember, at.Add(time.Hour)); !errors.Is(err, ErrRevoked) {
			t.Fatalf("re-add revoked: %v", err)
		}
	}
}

// TestRevokedAdminEarlierAddKept: what X did before its revocation (as
// seen by the revoker) stays.
func TestRevokedAdminEarlierAddKept(t *testing.T) {
	f := newFixture(t)
	d := newDevice(t, 81)
	must(t, f.log.Add(f.admin.key, d.id, "d", RoleMember, t0.Add(time.Minute)))
	must(t, f.log.Revoke(f.owner.key, f.admin.id, t0.Add(2*time.Minute)))
	if !f.log.IsMember(d.id) || f.log.IsMember(f.admin.id) {
		t.Fatal("earlier add lost or admin not revoked")
	}
}

// TestMutualRevocation: two admins revoke each other concurrently; exactly
// one of them ends up revoked, the same on every device.
func TestMutualRevocation(t *testing.T) {
	for i := range 8 {
		f := newFixture(t)
		y := newDevice(t, 90)
		at := t0.Add(time.Duration(i) * time.Millisecond)
		must(t, f.log.Add(f.owner.key, y.id, "y", RoleAdmin, at.Add(time.Minute)))
		a, b := f.log, f.log.Clone()
		must(t, a.Revoke(f.admin.key, y.id, at.Add(2*time.Minute)))
		must(t, b.Revoke(y.key, f.admin.id, at.Add(2*time.Minute)))
		m := mergeBoth(t, a, b)
		if m.IsMember(f.admin.id) == m.IsMember(y.id) {
			t.Fatalf("round %d: admin=%v y=%v", i, m.IsMember(f.admin.id), m.IsMember(y.id))
		}
	}
}

// TestConcurrentRoleChanges: the later change in the deterministic order wins.
func TestConcurrentRoleChanges(t *testing.T) {
	for i := range 8 {
		f := newFixture(t)
		at := t0.Add(time.Duration(i) * time.Millisecond)
		a, b := f.log, f.log.Clone()
		must(t, a.SetRole(f.owner.key, f.member.id, RoleAdmin, at.Add(time.Minute)))
		must(t, b.SetRole(f.admin.key, f.member.id, RoleMember, at.Add(time.Minute)))
		m := mergeBoth(t, a, b)
		last := m.order[len(m.order)-1]
		if last.kind != kindSetRole {
			t.Fatal("last entry is not a role change")
		}
		if got, _ := m.Lookup(f.member.id); got.Role != last.role {
			t.Fatalf("round %d: role %s, later entry says %s", i, got.Role, last.role)
		}
	}
}

// TestConcurrentOwnersDemoteEachOther: the mesh keeps an owner.
func TestConcurrentOwnersDemoteEachOther(t *testing.T) {
	for i := range 8 {
		f := newFixture(t)
		at := t0.Add(time.Duration(i) * time.Millisecond)
		must(t, f.log.SetRole(f.owner.key, f.admin.id, RoleOwner, at.Add(time.Minute)))
		a, b := f.log, f.log.Clone()
		must(t, a.SetRole(f.owner.key, f.admin.id, RoleMember, at.Add(2*time.Minute)))
		must(t, b.SetRole(f.admin.key, f.owner.id, RoleMember, at.Add(2*time.Minute)))
		m := mergeBoth(t, a, b)
		owners := 0
		for _, mem := range m.Members() {
			if mem.Role == RoleOwner {
				owners++
			}
		}
		if owners != 1 {
			t.Fatalf("round %d: %d owners: %+v", i, owners, m.Members())
		}
	}
}

func TestMergeRefusesForeignAndZero(t *testing.T) {
	f := newFixture(t)
	if _, err := f.log.Merge(nil); !errors.Is(err, ErrWrongMesh) {
		t.Error(err)
	}
	if _, err := f.log.Merge(&Log{}); !errors.Is(err, ErrWrongMesh) {
		t.Error(err)
	}
	var z Log
	if z.Len() != 0 || z.Members() != nil || z.IsMember(f.owner.id) {
		t.Error("zero Log is not empty")
	}
	if err := z.Add(f.owner.key, f.admin.id, "a", RoleAdmin, t0); err == nil {
		t.Error("add to zero Log succeeded")
	}
}
