package identity

import (
	"bytes"
	"testing"
	"time"
)

// seedLogs returns real encodings: a genesis, a small mesh, a merged log
// with a redemption and a revocation.
func seedLogs(t testing.TB) [][]byte {
	f := newFixture(t)
	genesis, err := NewMesh(f.owner.key, "solo", t0)
	must(t, err)
	small := f.log.Encode()
	inv := newInvite(t, f, RoleMember)
	a, b := f.log.Clone(), f.log.Clone()
	must(t, redeem(a, inv, f.member, newDevice(t, 200), "phone", t0.Add(2*time.Minute)))
	must(t, b.Revoke(f.owner.key, f.admin.id, t0.Add(2*time.Minute)))
	_, err = a.Merge(b)
	must(t, err)
	must(t, a.SetRole(f.owner.key, f.member.id, RoleAdmin, t0.Add(3*time.Minute)))
	return [][]byte{genesis.Encode(), small, a.Encode()}
}

func FuzzDecodeLog(f *testing.F) {
	for _, s := range seedLogs(f) {
		f.Add(s)
	}
	f.Add([]byte(logMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := DecodeLog(data)
		if err != nil {
			return
		}
		enc := l.Encode()
		l2, err := DecodeLog(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		sameLog(t, l, l2)
		if l2.MeshID() != l.MeshID() {
			t.Fatal("mesh id changed")
		}
	})
}

func seedCodes(t testing.TB) []string {
	f := newFixture(t)
	a := newInvite(t, f, RoleMember)
	b, err := f.log.NewInvite(f.owner.key, RoleOwner, time.Minute, nil, t0)
	must(t, err)
	return []string{a.Code(), b.Code()}
}

func FuzzParseInviteCode(f *testing.F) {
	for _, c := range seedCodes(f) {
		f.Add(c)
	}
	f.Add("meshinv1")
	f.Fuzz(func(t *testing.T, code string) {
		inv, err := ParseInviteCode(code)
		if err != nil {
			return
		}
		c := inv.Code()
		inv2, err := ParseInviteCode(c)
		if err != nil {
			t.Fatalf("re-parse %q: %v", c, err)
		}
		if inv2.Code() != c || !bytes.Equal(inv2.secret, inv.secret) {
			t.Fatal("code round trip changed the invite")
		}
	})
}

func FuzzInviteGrant(f *testing.F) {
	for _, c := range seedCodes(f) {
		inv, err := ParseInviteCode(c)
		must(f, err)
		b, err := inv.Grant.MarshalBinary()
		must(f, err)
		f.Add(b)
		v1 := inv.Grant.clone() // a version 1 grant, as codes made before redeemers were named
		v1.Redeemers = nil
		b, err = v1.MarshalBinary()
		must(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var g InviteGrant
		if err := g.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := g.MarshalBinary()
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip changed the encoding:\n%x\n%x", b, out)
		}
		var g2 InviteGrant
		if err := g2.UnmarshalBinary(out); err != nil || g2.ID() != g.ID() || !g2.Expires.Equal(g.Expires) {
			t.Fatalf("re-unmarshal: %v", err)
		}
	})
}
