package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Domain-separation prefixes of the invite signatures and checksum.
const (
	grantDomain    = "meshwork/invite/v1\x00"       // inviter's signature on a grant
	proofDomain    = "meshwork/invite-proof/v1\x00" // invite key's proof of the secret
	checksumDomain = "meshwork/invite-code/v1\x00"  // invite code checksum
)

// grantVersion is the first byte of an encoded grant naming its
// redeemers; grantVersion1 the first byte of one that does not.
//
// Grant format, version 2 (every grant made now):
//
//	grant = 0x02 mesh:[32] inviter:bytes naddrs:uvarint addr:bytes*n
//	        nredeemers:uvarint(1..4) redeemer:bytes*n
//	        role:u8 expires:uvarint(unix seconds) pubkey:[32] sig:bytes
//
// Version 1 (grants made before redeemers were named; still decoded, and
// still valid inside logs) is the same without nredeemers and redeemer:
//
//	grant = 0x01 mesh:[32] inviter:bytes naddrs:uvarint addr:bytes*n
//	        role:u8 expires:uvarint(unix seconds) pubkey:[32] sig:bytes
//
// sig is the inviter's signature over grantDomain followed by every byte
// before sig. Redeemers are distinct Ed25519 peer IDs, in the order the
// inviter chose; only they may redeem the invite (InviteGrant.MayRedeem),
// so that two members can never both welcome a device with one code.
const (
	grantVersion  = 2
	grantVersion1 = 1
)

// invitePrefix starts an invite code; the digit is the code format version.
//
// Code format, version 1: "meshinv1" + base32(grant || seed[32] || sum[4]),
// lower case without padding, where sum is the first 4 bytes of
// SHA-256(checksumDomain || grant || seed).
const invitePrefix = "meshinv1"

const checksumLen = 4

// ID returns the invite's ID: the hash of its public key.
func (g *InviteGrant) ID() InviteID { return InviteID(hashID(g.PubKey)) }

// Expired reports whether the invite can no longer be redeemed at now.
func (g *InviteGrant) Expired(now time.Time) bool { return !now.Before(g.Expires) }

func (g *InviteGrant) clone() InviteGrant {
	c := *g
	c.Addrs = slices.Clone(g.Addrs)
	c.PubKey = bytes.Clone(g.PubKey)
	c.Sig = bytes.Clone(g.Sig)
	c.Redeemers = slices.Clone(g.Redeemers)
	return c
}

// MayRedeem reports whether device id may redeem the invite now: one of
// its named redeemers, or, for a version 1 grant (none named), its inviter.
func (g *InviteGrant) MayRedeem(id peer.ID) bool {
	if len(g.Redeemers) == 0 {
		return id == g.Inviter
	}
	return slices.Contains(g.Redeemers, id)
}

// redeemersText names the devices that may redeem g, for messages.
func (g *InviteGrant) redeemersText() string {
	ids := g.Redeemers
	if len(ids) == 0 {
		ids = []peer.ID{g.Inviter}
	}
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(id.String())
	}
	return b.String()
}

// notRedeemer is the error for a redemption at a device g does not name.
func (g *InviteGrant) notRedeemer(at peer.ID) error {
	return fmt.Errorf("invite %s can only be redeemed at %s, not at %s: %w: %w",
		g.ID(), g.redeemersText(), at, ErrNotRedeemer, ErrUnauthorized)
}

// body encodes the grant, without the signature unless withSig.
func (g *InviteGrant) body(withSig bool) ([]byte, error) {
	if _, err := edPublicKey(g.Inviter); err != nil {
		return nil, fmt.Errorf("invite grant: inviter: %w", err)
	}
	bad := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("invite grant: %s: %w", fmt.Sprintf(format, args...), ErrMalformed)
	}
	switch {
	case g.Mesh.IsZero():
		return bad("no mesh")
	case len(g.Addrs) > maxAddrs:
		return bad("%d addresses, limit %d", len(g.Addrs), maxAddrs)
	case len(g.Redeemers) > maxRedeemers:
		return bad("%d redeemers, limit %d", len(g.Redeemers), maxRedeemers)
	case roleRank(g.Role) == 0:
		return bad("bad role %q", g.Role)
	case g.Expires.Unix() < 0 || g.Expires.Nanosecond() != 0:
		return bad("expiry %v is not a whole second after 1970", g.Expires)
	case len(g.PubKey) != keyLen:
		return bad("public key of %d bytes", len(g.PubKey))
	case withSig && len(g.Sig) != sigLen:
		return bad("signature of %d bytes", len(g.Sig))
	}
	for i, r := range g.Redeemers {
		if _, err := edPublicKey(r); err != nil {
			return nil, fmt.Errorf("invite grant: redeemer %d: %w", i, err)
		}
		if slices.Contains(g.Redeemers[:i], r) {
			return bad("redeemer %s named twice", r)
		}
	}
	w := encoder{}
	if len(g.Redeemers) == 0 {
		w.byte(grantVersion1)
	} else {
		w.byte(grantVersion)
	}
	w.id(g.Mesh)
	w.bytes([]byte(g.Inviter))
	w.uvarint(uint64(len(g.Addrs)))
	for _, a := range g.Addrs {
		b := a.Bytes()
		if len(b) == 0 || len(b) > maxAddrLen {
			return bad("address of %d bytes", len(b))
		}
		w.bytes(b)
	}
	if len(g.Redeemers) > 0 {
		w.uvarint(uint64(len(g.Redeemers)))
		for _, r := range g.Redeemers {
			w.bytes([]byte(r))
		}
	}
	w.byte(roleCode(g.Role))
	w.uvarint(uint64(g.Expires.Unix()))
	w.fixed(g.PubKey)
	if withSig {
		w.bytes(g.Sig)
	}
	return w.b, nil
}

// MarshalBinary encodes a signed grant (format in grantVersion's comment).
func (g *InviteGrant) MarshalBinary() ([]byte, error) { return g.body(true) }

// UnmarshalBinary decodes a grant made by MarshalBinary. It checks the
// format, not the signature (see Verify); non-canonical input is refused.
func (g *InviteGrant) UnmarshalBinary(b []byte) error {
	r := decoder{b: b, short: ErrMalformed, what: "invite grant"}
	v := r.byte("version")
	if r.err == nil && v != grantVersion && v != grantVersion1 {
		return fmt.Errorf("invite grant: unsupported version %d: %w", v, ErrMalformed)
	}
	var n InviteGrant
	n.Mesh = r.id("mesh")
	inviter := r.bytes(maxPeerIDLen, "inviter")
	naddrs := r.count(maxAddrs, "address count")
	for i := 0; i < naddrs && r.err == nil; i++ {
		ab := r.bytes(maxAddrLen, "address")
		if r.err != nil {
			break
		}
		a, err := ma.NewMultiaddrBytes(ab)
		if err != nil || a == nil {
			return fmt.Errorf("invite grant: address %d: %v: %w", i, err, ErrMalformed)
		}
		n.Addrs = append(n.Addrs, a)
	}
	var redeemers [][]byte
	if v == grantVersion {
		nr := r.count(maxRedeemers, "redeemer count")
		for i := 0; i < nr && r.err == nil; i++ {
			redeemers = append(redeemers, r.bytes(maxPeerIDLen, "redeemer"))
		}
	}
	if rc := r.byte("role"); int(rc) < len(roleCodes) {
		n.Role = roleCodes[rc]
	}
	exp := r.uvarint("expiry")
	if exp > 1<<40 {
		return fmt.Errorf("invite grant: expiry %d out of range: %w", exp, ErrMalformed)
	}
	n.Expires = time.Unix(int64(exp), 0).UTC()
	n.PubKey = bytes.Clone(r.fixed(keyLen, "public key"))
	n.Sig = bytes.Clone(r.bytes(sigLen, "signature"))
	r.end()
	if r.err != nil {
		return r.err
	}
	id, _, err := parsePeerID(inviter)
	if err != nil {
		return fmt.Errorf("invite grant: inviter: %w", err)
	}
	n.Inviter = id
	for i, rb := range redeemers {
		rid, _, err := parsePeerID(rb)
		if err != nil {
			return fmt.Errorf("invite grant: redeemer %d: %w", i, err)
		}
		n.Redeemers = append(n.Redeemers, rid)
	}
	again, err := n.MarshalBinary()
	if err != nil {
		return err
	}
	if !bytes.Equal(again, b) {
		return fmt.Errorf("invite grant: non-canonical encoding: %w", ErrMalformed)
	}
	*g = n
	return nil
}

// Verify checks the inviter's signature on the grant (ErrInviteForged).
// The inviter's public key is the one inlined in its peer ID.
func (g *InviteGrant) Verify() error {
	body, err := g.body(false)
	if err != nil {
		return err
	}
	if !verifySig(g.Inviter, append([]byte(grantDomain), body...), g.Sig) {
		return fmt.Errorf("invite %s from %s: %w", g.ID(), g.Inviter, ErrInviteForged)
	}
	return nil
}

func proofMessage(mesh MeshID, joiner, redeemer peer.ID, name string, challenge []byte) []byte {
	w := encoder{}
	w.fixed([]byte(proofDomain))
	w.id(mesh)
	w.bytes([]byte(joiner))
	w.bytes([]byte(redeemer))
	w.string(name)
	w.bytes(challenge)
	return w.b
}

// VerifyProof checks a proof made by Invite.Prove (ErrWrongSecret).
func (g *InviteGrant) VerifyProof(joiner, redeemer peer.ID, name string, challenge, proof []byte) error {
	msg := proofMessage(g.Mesh, joiner, redeemer, name, challenge)
	if len(g.PubKey) != keyLen || !ed25519.Verify(ed25519.PublicKey(g.PubKey), msg, proof) {
		return fmt.Errorf("invite %s, joiner %s: %w", g.ID(), joiner, ErrWrongSecret)
	}
	return nil
}

// Prove proves possession of the invite secret for joiner, who wants to
// join as name through redeemer, which chose challenge (16 to 64 random
// bytes). The proof, never the secret, goes to the redeemer.
func (inv *Invite) Prove(joiner, redeemer peer.ID, name string, challenge []byte) ([]byte, error) {
	if len(inv.secret) != ed25519.SeedSize {
		return nil, errors.New("prove invite: invite has no secret")
	}
	if len(challenge) < minChallenge || len(challenge) > maxChallenge {
		return nil, fmt.Errorf("prove invite: challenge of %d bytes, want %d to %d: %w",
			len(challenge), minChallenge, maxChallenge, ErrMalformed)
	}
	priv := ed25519.NewKeyFromSeed(inv.secret)
	return ed25519.Sign(priv, proofMessage(inv.Grant.Mesh, joiner, redeemer, name, challenge)), nil
}

// NewInvite makes a single-use invite to join as role until now+ttl
// (rounded up to a second), naming addrs where the mesh can be reached.
// key's device must be an owner or admin and cannot grant a role above
// its own. Only the redeemers (current members, at most 4) may redeem it;
// none given means key's device itself. The log is not changed: an invite
// leaves no trace until it is redeemed.
func (l *Log) NewInvite(key crypto.PrivKey, role Role, ttl time.Duration, addrs []ma.Multiaddr, now time.Time, redeemers ...peer.ID) (*Invite, error) {
	inviter, err := deviceID(key)
	if err != nil {
		return nil, fmt.Errorf("new invite: %w", err)
	}
	if l.st == nil {
		return nil, fmt.Errorf("new invite: empty log: %w", ErrTruncated)
	}
	if roleRank(role) == 0 {
		return nil, fmt.Errorf("new invite: bad role %q: %w", role, ErrMalformed)
	}
	if _, err := l.st.admin(inviter, role); err != nil {
		return nil, fmt.Errorf("new invite: %w", err)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("new invite: ttl %v is not positive: %w", ttl, ErrMalformed)
	}
	if len(redeemers) == 0 {
		redeemers = []peer.ID{inviter}
	}
	for _, r := range redeemers {
		if _, err := l.st.active(r); err != nil {
			return nil, fmt.Errorf("new invite: redeemer: %w", err)
		}
	}
	exp := now.Add(ttl)
	sec := exp.Unix()
	if exp.Nanosecond() != 0 {
		sec++
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new invite: %w", err)
	}
	inv := &Invite{secret: priv.Seed(), Grant: InviteGrant{
		Mesh: l.mesh, Inviter: inviter, Addrs: slices.Clone(addrs), Role: role,
		Expires: time.Unix(sec, 0).UTC(), PubKey: pub, Redeemers: slices.Clone(redeemers),
	}}
	body, err := inv.Grant.body(false)
	if err != nil {
		return nil, fmt.Errorf("new invite: %w", err)
	}
	if inv.Grant.Sig, err = key.Sign(append([]byte(grantDomain), body...)); err != nil {
		return nil, fmt.Errorf("new invite: sign: %w", err)
	}
	return inv, nil
}

// Code returns the invite as a copy-pasteable string ("meshinv1..."),
// secret included: whoever holds the code can join. It returns "" for an
// invite without a secret.
func (inv *Invite) Code() string {
	g, err := inv.Grant.MarshalBinary()
	if err != nil || len(inv.secret) != ed25519.SeedSize {
		return ""
	}
	return inviteCode(g, inv.secret)
}

func inviteCode(grant, seed []byte) string {
	payload := append(slices.Clone(grant), seed...)
	return invitePrefix + b32.EncodeToString(append(payload, codeChecksum(payload)...))
}

func codeChecksum(payload []byte) []byte {
	h := sha256.New()
	h.Write([]byte(checksumDomain))
	h.Write(payload)
	return h.Sum(nil)[:checksumLen]
}

// ParseInviteCode parses a code made by Invite.Code, ignoring case and
// white space. It checks the checksum (a typo gives ErrMalformed with
// "checksum"), the format and the inviter's signature (ErrInviteForged),
// but not expiry or membership: see InviteGrant.Expired and Log.Redeem.
func ParseInviteCode(code string) (*Invite, error) {
	s := strings.ToLower(strings.Join(strings.Fields(code), ""))
	rest, ok := strings.CutPrefix(s, invitePrefix)
	if !ok {
		if strings.HasPrefix(s, "meshinv") {
			return nil, fmt.Errorf("parse invite code: unsupported version %q, want %q: %w", clip(s[:min(len(s), 8)]), invitePrefix, ErrMalformed)
		}
		return nil, fmt.Errorf("parse invite code %q: must start with %q: %w", clip(code), invitePrefix, ErrMalformed)
	}
	raw, err := b32.DecodeString(rest)
	if err != nil {
		var ce base32.CorruptInputError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("parse invite code: invalid character at position %d (codes use a-z and 2-7): %w",
				len(invitePrefix)+int(ce), ErrMalformed)
		}
		return nil, fmt.Errorf("parse invite code: %v: %w", err, ErrMalformed)
	}
	if len(raw) < 1+keyLen+checksumLen {
		return nil, fmt.Errorf("parse invite code: too short (%d characters); was it cut off?: %w", len(s), ErrMalformed)
	}
	payload, sum := raw[:len(raw)-checksumLen], raw[len(raw)-checksumLen:]
	if !bytes.Equal(codeChecksum(payload), sum) {
		return nil, fmt.Errorf("parse invite code: checksum mismatch; the code was mistyped or cut off: %w", ErrMalformed)
	}
	if b32.EncodeToString(raw) != rest {
		return nil, fmt.Errorf("parse invite code: non-canonical base32 ending: %w", ErrMalformed)
	}
	inv := &Invite{secret: bytes.Clone(payload[len(payload)-keyLen:])}
	if err := inv.Grant.UnmarshalBinary(payload[:len(payload)-keyLen]); err != nil {
		return nil, fmt.Errorf("parse invite code: %w", err)
	}
	pub := ed25519.NewKeyFromSeed(inv.secret).Public().(ed25519.PublicKey)
	if !bytes.Equal(pub, inv.Grant.PubKey) {
		return nil, fmt.Errorf("parse invite code: secret does not match invite %s: %w", inv.Grant.ID(), ErrWrongSecret)
	}
	if err := inv.Grant.Verify(); err != nil {
		return nil, fmt.Errorf("parse invite code: %w", err)
	}
	return inv, nil
}

// Redeem adds joiner as name on the authority of invite g, signed by key:
// the redeemer, any current member, which sent challenge to the joiner
// and received proof (see Invite.Prove), and which g names as a redeemer
// (ErrNotRedeemer with ErrUnauthorized otherwise). The entry carries g, challenge
// and proof, so every device re-verifies it; the invite secret is never
// needed. Errors: ErrWrongMesh, ErrInviteForged, ErrUnauthorized (inviter
// no longer owner/admin, or key's device not a member), ErrInviteExpired,
// ErrInviteUsed, ErrWrongSecret, ErrAlreadyMember, ErrRevoked.
func (l *Log) Redeem(key crypto.PrivKey, g *InviteGrant, joiner peer.ID, name string, challenge, proof []byte, now time.Time) error {
	if g == nil {
		return fmt.Errorf("redeem invite: no grant: %w", ErrMalformed)
	}
	fail := func(err error) error { return fmt.Errorf("redeem invite %s for %s: %w", g.ID(), joiner, err) }
	redeemer, err := deviceID(key)
	if err != nil {
		return fail(err)
	}
	if g.Mesh != l.mesh {
		return fail(fmt.Errorf("invite for mesh %s, log is %s: %w", g.Mesh, l.mesh, ErrWrongMesh))
	}
	if err := g.Verify(); err != nil {
		return fail(err)
	}
	if !g.MayRedeem(redeemer) {
		return fail(g.notRedeemer(redeemer))
	}
	if _, err := l.st.admin(g.Inviter, g.Role); err != nil {
		return fail(fmt.Errorf("inviter: %w", err))
	}
	if g.Expired(now) {
		return fail(fmt.Errorf("expired at %s: %w", g.Expires.UTC().Format(time.RFC3339), ErrInviteExpired))
	}
	if l.st.invites[g.ID()] {
		return fail(ErrInviteUsed)
	}
	if err := g.VerifyProof(joiner, redeemer, name, challenge, proof); err != nil {
		return fail(err)
	}
	e := &entry{kind: kindRedeem, subject: joiner, name: name, role: g.Role, redeem: &redemption{
		grant: g.clone(), challenge: bytes.Clone(challenge), proof: bytes.Clone(proof),
	}}
	if err := l.append(key, e, now); err != nil {
		return fail(err)
	}
	return nil
}
