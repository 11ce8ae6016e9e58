package identity

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func newInvite(t testing.TB, f *fixture, role Role) *Invite {
	t.Helper()
	addr, err := ma.NewMultiaddr("/ip4/192.0.2.1/udp/4001/quic-v1")
	must(t, err)
	inv, err := f.log.NewInvite(f.admin.key, role, time.Hour, []ma.Multiaddr{addr}, t0.Add(time.Minute), f.member.id, f.owner.id)
	must(t, err)
	return inv
}

// redeem has joiner prove inv through redeemer and redeem it in l.
func redeem(l *Log, inv *Invite, redeemer, joiner device, name string, now time.Time) error {
	proof, err := inv.Prove(joiner.id, redeemer.id, name, challenge(7))
	if err != nil {
		return err
	}
	return l.Redeem(redeemer.key, &inv.Grant, joiner.id, name, challenge(7), proof, now)
}

func TestInviteRedeem(t *testing.T) {
	f := newFixture(t)
	inv := newInvite(t, f, RoleMember)
	if !inv.Grant.Expires.Equal(t0.Add(time.Hour + time.Minute)) {
		t.Fatalf("expires %v", inv.Grant.Expires)
	}
	parsed, err := ParseInviteCode(inv.Code())
	must(t, err)
	joiner := newDevice(t, 100)
	must(t, redeem(f.log, parsed, f.member, joiner, "phone", t0.Add(2*time.Minute)))
	m, ok := f.log.Lookup(joiner.id)
	if !ok || m.Role != RoleMember || m.Name != "phone" || m.AddedBy != f.admin.id {
		t.Fatalf("joiner %+v", m)
	}
	dec, err := DecodeLog(f.log.Encode())
	must(t, err)
	sameLog(t, f.log, dec)
	if bytes.Contains(f.log.Encode(), parsed.secret) {
		t.Fatal("the invite secret is in the log")
	}
}

func TestInviteRefusals(t *testing.T) {
	f := newFixture(t)
	if _, err := f.log.NewInvite(f.member.key, RoleMember, time.Hour, nil, t0); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("member invites: %v", err)
	}
	if _, err := f.log.NewInvite(f.admin.key, RoleOwner, time.Hour, nil, t0); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("admin invites owner: %v", err)
	}
	joiner := newDevice(t, 101)
	later := t0.Add(2 * time.Minute)
	cases := []struct {
		name  string
		setup func(l *Log)
		do    func(l *Log, inv *Invite) error
		want  []error
	}{
		{"expired", nil, func(l *Log, inv *Invite) error {
			return redeem(l, inv, f.member, joiner, "j", inv.Grant.Expires)
		}, []error{ErrInviteExpired}},
		{"wrong secret", nil, func(l *Log, inv *Invite) error {
			other := newInvite(t, f, RoleMember) // a different seed
			proof, _ := other.Prove(joiner.id, f.member.id, "j", challenge(7))
			return l.Redeem(f.member.key, &inv.Grant, joiner.id, "j", challenge(7), proof, later)
		}, []error{ErrWrongSecret}},
		{"proof for another redeemer", nil, func(l *Log, inv *Invite) error {
			proof, _ := inv.Prove(joiner.id, f.owner.id, "j", challenge(7))
			return l.Redeem(f.member.key, &inv.Grant, joiner.id, "j", challenge(7), proof, later)
		}, []error{ErrWrongSecret}},
		{"proof for another name", nil, func(l *Log, inv *Invite) error {
			proof, _ := inv.Prove(joiner.id, f.member.id, "j", challenge(7))
			return l.Redeem(f.member.key, &inv.Grant, joiner.id, "k", challenge(7), proof, later)
		}, []error{ErrWrongSecret}},
		{"forged grant", nil, func(l *Log, inv *Invite) error {
			inv.Grant.Role = RoleAdmin
			return redeem(l, inv, f.member, joiner, "j", later)
		}, []error{ErrInviteForged}},
		{"stranger redeems", nil, func(l *Log, inv *Invite) error {
			return redeem(l, inv, newDevice(t, 102), joiner, "j", later)
		}, []error{ErrUnauthorized}},
		{"inviter revoked", func(l *Log) { must(t, l.Revoke(f.owner.key, f.admin.id, t0.Add(time.Minute))) }, func(l *Log, inv *Invite) error {
			return redeem(l, inv, f.member, joiner, "j", later)
		}, []error{ErrUnauthorized}},
		{"inviter demoted", func(l *Log) { must(t, l.SetRole(f.owner.key, f.admin.id, RoleMember, t0.Add(time.Minute))) }, func(l *Log, inv *Invite) error {
			return redeem(l, inv, f.member, joiner, "j", later)
		}, []error{ErrUnauthorized}},
		{"joiner already member", nil, func(l *Log, inv *Invite) error {
			return redeem(l, inv, f.owner, f.member, "j", later)
		}, []error{ErrAlreadyMember}},
		{"joiner revoked", func(l *Log) { must(t, l.Revoke(f.owner.key, f.member.id, t0.Add(time.Minute))) }, func(l *Log, inv *Invite) error {
			return redeem(l, inv, f.owner, f.member, "j", later)
		}, []error{ErrRevoked}},
		{"another mesh", nil, func(_ *Log, inv *Invite) error {
			other, err := NewMesh(f.owner.key, "other", t0.Add(time.Second))
			must(t, err)
			return redeem(other, inv, f.owner, joiner, "j", later)
		}, []error{ErrWrongMesh}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			l := f.log.Clone()
			inv := newInvite(t, f, RoleMember)
			if tt.setup != nil {
				tt.setup(l)
			}
			before := l.Encode()
			err := tt.do(l, inv)
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("got %v, want %v", err, w)
				}
			}
			if !bytes.Equal(before, l.Encode()) || l.IsMember(joiner.id) {
				t.Error("a refused redemption changed the log")
			}
		})
	}
}

func TestInviteReuse(t *testing.T) {
	f := newFixture(t)
	inv := newInvite(t, f, RoleMember)
	j1, j2 := newDevice(t, 110), newDevice(t, 111)
	a, b := f.log.Clone(), f.log.Clone()
	must(t, redeem(a, inv, f.member, j1, "j1", t0.Add(2*time.Minute)))
	if err := redeem(a, inv, f.member, j2, "j2", t0.Add(3*time.Minute)); !errors.Is(err, ErrInviteUsed) {
		t.Fatalf("second redeem: %v", err)
	}
	// Redeemed concurrently on two devices: only one joiner gets in.
	must(t, redeem(b, inv, f.owner, j2, "j2", t0.Add(2*time.Minute)))
	m := mergeBoth(t, a, b)
	if m.IsMember(j1.id) == m.IsMember(j2.id) {
		t.Fatalf("j1=%v j2=%v, want exactly one", m.IsMember(j1.id), m.IsMember(j2.id))
	}
	if len(m.Members()) != 4 {
		t.Fatalf("members %+v", m.Members())
	}
	if err := redeem(m, inv, f.member, newDevice(t, 112), "j3", t0.Add(4*time.Minute)); !errors.Is(err, ErrInviteUsed) {
		t.Fatalf("redeem after merge: %v", err)
	}
}

func TestDecodeBadRedemption(t *testing.T) {
	f := newFixture(t)
	inv := newInvite(t, f, RoleMember)
	j := newDevice(t, 120)
	good, _ := inv.Prove(j.id, f.member.id, "j", challenge(7))
	grant := inv.Grant.clone()

	l := f.log.Clone()
	forge(t, l, f.member.key, &entry{kind: kindRedeem, subject: j.id, name: "j", role: RoleMember,
		redeem: &redemption{grant: grant, challenge: challenge(8), proof: good}}, t0.Add(2*time.Minute))
	if _, err := DecodeLog(l.Encode()); !errors.Is(err, ErrWrongSecret) {
		t.Errorf("bad proof: %v", err)
	}
	l = f.log.Clone()
	forge(t, l, f.member.key, &entry{kind: kindRedeem, subject: j.id, name: "j", role: RoleMember,
		redeem: &redemption{grant: grant, challenge: challenge(7), proof: good}}, grant.Expires.Add(time.Second))
	if _, err := DecodeLog(l.Encode()); !errors.Is(err, ErrInviteExpired) {
		t.Errorf("redeemed after expiry: %v", err)
	}
	l = f.log.Clone()
	forged := grant.clone()
	forged.Role = RoleAdmin
	forge(t, l, f.member.key, &entry{kind: kindRedeem, subject: j.id, name: "j", role: RoleAdmin,
		redeem: &redemption{grant: forged, challenge: challenge(7), proof: good}}, t0.Add(2*time.Minute))
	if _, err := DecodeLog(l.Encode()); !errors.Is(err, ErrInviteForged) {
		t.Errorf("forged grant: %v", err)
	}
	// A redemption reusing an invite it has seen is refused on decode.
	l = f.log.Clone()
	must(t, redeem(l, inv, f.member, j, "j", t0.Add(2*time.Minute)))
	j2 := newDevice(t, 121)
	p2, _ := inv.Prove(j2.id, f.member.id, "j2", challenge(7))
	forge(t, l, f.member.key, &entry{kind: kindRedeem, subject: j2.id, name: "j2", role: RoleMember,
		redeem: &redemption{grant: grant, challenge: challenge(7), proof: p2}}, t0.Add(3*time.Minute))
	if _, err := DecodeLog(l.Encode()); !errors.Is(err, ErrInviteUsed) {
		t.Errorf("reused invite: %v", err)
	}
}

func TestInviteCode(t *testing.T) {
	f := newFixture(t)
	inv := newInvite(t, f, RoleAdmin)
	code := inv.Code()
	if !strings.HasPrefix(code, "meshinv1") || strings.ToLower(code) != code {
		t.Fatalf("code %q", code)
	}
	t.Logf("code of %d characters", len(code))
	for _, variant := range []string{code, strings.ToUpper(code), " " + code[:40] + "\n" + code[40:] + "\n"} {
		got, err := ParseInviteCode(variant)
		if err != nil {
			t.Fatalf("ParseInviteCode: %v", err)
		}
		if got.Code() != code || !bytes.Equal(got.secret, inv.secret) || got.Grant.ID() != inv.Grant.ID() {
			t.Fatal("code round trip changed the invite")
		}
	}
	if (&Invite{Grant: inv.Grant}).Code() != "" {
		t.Error("invite without secret has a code")
	}
}

func TestInviteCodeErrors(t *testing.T) {
	f := newFixture(t)
	inv := newInvite(t, f, RoleMember)
	code := inv.Code()
	typo := []byte(code)
	typo[30] = map[bool]byte{true: 'b', false: 'a'}[typo[30] == 'a']
	check := func(name, c string, want error, msg string) {
		t.Helper()
		_, err := ParseInviteCode(c)
		if !errors.Is(err, want) || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: got %v, want %v containing %q", name, err, want, msg)
		}
	}
	check("typo", string(typo), ErrMalformed, "checksum")
	check("cut", code[:len(code)-5], ErrMalformed, "checksum")
	check("bad character", code[:20]+"1"+code[21:], ErrMalformed, "position 20")
	check("no prefix", code[8:], ErrMalformed, "meshinv1")
	check("future version", "meshinv2"+code[8:], ErrMalformed, "version")
	check("short", "meshinv1abc", ErrMalformed, "short")

	// A grant altered after signing, in a code with a valid checksum.
	g := inv.Grant.clone()
	g.Role = RoleAdmin
	gb, err := g.MarshalBinary()
	must(t, err)
	check("forged role", inviteCode(gb, inv.secret), ErrInviteForged, "invite")
	// A grant naming an inviter that did not sign it.
	g = inv.Grant.clone()
	g.Inviter = f.owner.id
	gb, _ = g.MarshalBinary()
	check("wrong inviter", inviteCode(gb, inv.secret), ErrInviteForged, "invite")
	// A secret that does not match the grant.
	other := newInvite(t, f, RoleMember)
	gb, _ = inv.Grant.MarshalBinary()
	check("wrong secret", inviteCode(gb, other.secret), ErrWrongSecret, "secret")
}

func TestInviteGrantBinary(t *testing.T) {
	f := newFixture(t)
	inv := newInvite(t, f, RoleMember)
	b, err := inv.Grant.MarshalBinary()
	must(t, err)
	var g InviteGrant
	must(t, g.UnmarshalBinary(b))
	b2, _ := g.MarshalBinary()
	if !bytes.Equal(b, b2) || g.ID() != inv.Grant.ID() || !g.Addrs[0].Equal(inv.Grant.Addrs[0]) || !g.Expires.Equal(inv.Grant.Expires) {
		t.Fatal("grant round trip")
	}
	must(t, g.Verify())
	if g.Expired(g.Expires.Add(-time.Second)) || !g.Expired(g.Expires) {
		t.Error("Expired")
	}
	for i := range b {
		if err := g.UnmarshalBinary(b[:i]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("cut at %d: %v", i, err)
		}
	}
	bad := bytes.Clone(b)
	bad[0] = 3
	if err := g.UnmarshalBinary(bad); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "version") {
		t.Errorf("version 3: %v", err)
	}
}

// TestInviteRedeemers: only the redeemers a grant names may redeem it (by
// default its inviter), in Log.Redeem and when a log is decoded; a version
// 1 grant (no redeemers) still decodes, redeems at its inviter only, and
// stays valid in a log whoever redeemed it.
func TestInviteRedeemers(t *testing.T) {
	f := newFixture(t)
	later := t0.Add(2 * time.Minute)
	inv, err := f.log.NewInvite(f.admin.key, RoleMember, time.Hour, nil, t0.Add(time.Minute))
	must(t, err)
	if len(inv.Grant.Redeemers) != 1 || inv.Grant.Redeemers[0] != f.admin.id {
		t.Fatalf("default redeemers %v, want the inviter", inv.Grant.Redeemers)
	}
	parsed, err := ParseInviteCode(inv.Code())
	must(t, err)
	if len(parsed.Grant.Redeemers) != 1 || parsed.Grant.Redeemers[0] != f.admin.id {
		t.Fatalf("parsed redeemers %v", parsed.Grant.Redeemers)
	}
	j := newDevice(t, 130)
	l := f.log.Clone()
	before := l.Encode()
	err = redeem(l, parsed, f.member, j, "j", later)
	if !errors.Is(err, ErrNotRedeemer) || !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), f.admin.id.String()) {
		t.Fatalf("redeemed at a member the invite does not name: %v", err)
	}
	if !bytes.Equal(before, l.Encode()) {
		t.Fatal("a refused redemption changed the log")
	}
	must(t, redeem(l, parsed, f.admin, j, "j", later))

	// A member that redeems anyway (its own forged entry) is refused on decode.
	l = f.log.Clone()
	good, _ := inv.Prove(j.id, f.member.id, "j", challenge(7))
	forge(t, l, f.member.key, &entry{kind: kindRedeem, subject: j.id, name: "j", role: RoleMember,
		redeem: &redemption{grant: inv.Grant.clone(), challenge: challenge(7), proof: good}}, later)
	if _, err := DecodeLog(l.Encode()); !errors.Is(err, ErrNotRedeemer) {
		t.Fatalf("redemption at an unnamed member on decode: %v", err)
	}

	if _, err := f.log.NewInvite(f.admin.key, RoleMember, time.Hour, nil, t0, newDevice(t, 131).id); !errors.Is(err, ErrNotMember) {
		t.Fatalf("a stranger named as redeemer: %v", err)
	}

	// Version 1: the same grant without redeemers, signed again.
	v1 := inv.Grant.clone()
	v1.Redeemers = nil
	body, err := v1.body(false)
	must(t, err)
	if body[0] != grantVersion1 {
		t.Fatalf("grant without redeemers encodes as version %d", body[0])
	}
	v1.Sig, err = f.admin.key.Sign(append([]byte(grantDomain), body...))
	must(t, err)
	enc, err := v1.MarshalBinary()
	must(t, err)
	var dec InviteGrant
	must(t, dec.UnmarshalBinary(enc))
	must(t, dec.Verify())
	if dec.MayRedeem(f.member.id) || !dec.MayRedeem(f.admin.id) {
		t.Fatal("a version 1 grant is redeemable at its inviter only")
	}
	// A version 1 redemption at another member, as logs hold from before, stays valid.
	l = f.log.Clone()
	forge(t, l, f.member.key, &entry{kind: kindRedeem, subject: j.id, name: "j", role: RoleMember,
		redeem: &redemption{grant: dec, challenge: challenge(7), proof: good}}, later)
	old, err := DecodeLog(l.Encode())
	must(t, err)
	if !old.IsMember(j.id) {
		t.Fatal("a version 1 redemption in a log no longer counts")
	}
	// Two redeemers named, duplicates and too many refused.
	for _, rs := range [][]peer.ID{{f.owner.id, f.owner.id}, {f.owner.id, f.admin.id, f.member.id, j.id, newDevice(t, 132).id}} {
		g := inv.Grant.clone()
		g.Redeemers = rs
		if _, err := g.MarshalBinary(); !errors.Is(err, ErrMalformed) {
			t.Errorf("redeemers %v encoded: %v", rs, err)
		}
	}
}
