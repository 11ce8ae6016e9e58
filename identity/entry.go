package identity

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// entryDomain prefixes every signed entry body (domain separation).
const entryDomain = "meshwork/membership/v1\x00"

// kind is the type of a membership entry. Values are permanent.
type kind byte

const (
	kindGenesis kind = 1 // author creates the mesh and is its first owner
	kindAdd     kind = 2 // admin/owner adds subject with name and role
	kindSetRole kind = 3 // admin/owner changes subject's role
	kindRevoke  kind = 4 // admin/owner revokes subject, permanently
	kindRedeem  kind = 5 // member adds subject on the authority of an invite
)

func (k kind) String() string {
	switch k {
	case kindGenesis:
		return "genesis"
	case kindAdd:
		return "add"
	case kindSetRole:
		return "set-role"
	case kindRevoke:
		return "revoke"
	case kindRedeem:
		return "redeem"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// Role bytes on the wire. Values are permanent; 0 means "no role".
var roleCodes = [...]Role{0: "", 1: RoleOwner, 2: RoleAdmin, 3: RoleMember}

func roleCode(r Role) byte {
	for i, v := range roleCodes {
		if v == r {
			return byte(i)
		}
	}
	return 0xff
}

// redemption is the invite evidence carried by a kindRedeem entry: enough
// for every device to re-verify the invite, but not its secret.
type redemption struct {
	grant     InviteGrant
	challenge []byte
	proof     []byte // signature by grant.PubKey over proofMessage
}

// entry is one signed membership log entry. It is immutable once sealed or
// parsed, so logs may share *entry values.
type entry struct {
	kind    kind
	mesh    MeshID // zero in the genesis entry
	author  peer.ID
	parents []EntryID // sorted, distinct: the author's heads
	time    int64     // unix nanoseconds, as claimed by the author
	subject peer.ID
	name    string
	role    Role
	redeem  *redemption
	sig     []byte

	raw []byte  // body + signature: the wire form
	id  EntryID // hash of raw
}

// when is the entry's claimed time.
func (e *entry) when() time.Time { return time.Unix(0, e.time).UTC() }

// body is the canonical encoding of every field except the signature.
func (e *entry) body() []byte {
	w := encoder{b: make([]byte, 0, 256)}
	w.byte(byte(e.kind))
	w.id(e.mesh)
	w.bytes([]byte(e.author))
	w.uvarint(uint64(len(e.parents)))
	for _, p := range e.parents {
		w.id(p)
	}
	w.int64(e.time)
	w.bytes([]byte(e.subject))
	w.string(e.name)
	w.byte(roleCode(e.role))
	if e.redeem == nil {
		w.byte(0)
	} else {
		w.byte(1)
		g, _ := e.redeem.grant.MarshalBinary() // checked by checkShape
		w.bytes(g)
		w.bytes(e.redeem.challenge)
		w.bytes(e.redeem.proof)
	}
	return w.b
}

func signedMessage(body []byte) []byte {
	return append([]byte(entryDomain), body...)
}

// seal signs e with key (which must be the author's) and sets raw and id.
func (e *entry) seal(key crypto.PrivKey) error {
	if err := e.checkShape(); err != nil {
		return err
	}
	body := e.body()
	sig, err := key.Sign(signedMessage(body))
	if err != nil {
		return fmt.Errorf("sign entry: %w", err)
	}
	e.sig = sig
	w := encoder{b: body}
	w.bytes(sig)
	e.raw = w.b
	e.id = hashID(e.raw)
	return nil
}

// parseEntry decodes one entry's wire form. It checks the shape but no
// signature. Non-canonical encodings are refused, so an entry has exactly
// one encoding and one ID.
func parseEntry(raw []byte) (*entry, error) {
	r := decoder{b: raw, short: ErrMalformed, what: "entry"}
	e := &entry{}
	e.kind = kind(r.byte("kind"))
	e.mesh = r.id("mesh")
	e.author = peer.ID(r.bytes(maxPeerIDLen, "author"))
	n := r.count(maxParents, "parent count")
	if r.err == nil && n > 0 {
		if !r.need(n*32, "parents") {
			return nil, r.err
		}
		e.parents = make([]EntryID, n)
		for i := range e.parents {
			e.parents[i] = r.id("parent")
		}
	}
	e.time = r.int64("time")
	e.subject = peer.ID(r.bytes(maxPeerIDLen, "subject"))
	e.name = string(r.bytes(maxNameLen, "name"))
	rc := r.byte("role")
	if int(rc) < len(roleCodes) {
		e.role = roleCodes[rc]
	} else {
		r.fail(fmt.Errorf("entry: unknown role code %d: %w", rc, ErrMalformed))
	}
	switch flag := r.byte("redemption flag"); flag {
	case 0:
	case 1:
		e.redeem = &redemption{}
		g := r.bytes(maxEntrySize, "invite grant")
		if r.err == nil {
			if err := e.redeem.grant.UnmarshalBinary(g); err != nil {
				return nil, fmt.Errorf("entry: %w", err)
			}
		}
		e.redeem.challenge = bytes.Clone(r.bytes(maxChallenge, "challenge"))
		e.redeem.proof = bytes.Clone(r.bytes(sigLen, "proof"))
	default:
		r.fail(fmt.Errorf("entry: bad redemption flag %d: %w", flag, ErrMalformed))
	}
	e.sig = bytes.Clone(r.bytes(sigLen, "signature"))
	r.end()
	if r.err != nil {
		return nil, r.err
	}
	if err := e.checkShape(); err != nil {
		return nil, err
	}
	w := encoder{b: e.body()}
	w.bytes(e.sig)
	if !bytes.Equal(w.b, raw) {
		return nil, fmt.Errorf("entry: non-canonical encoding: %w", ErrMalformed)
	}
	e.raw = bytes.Clone(raw)
	e.id = hashID(e.raw)
	return e, nil
}

// checkShape checks the fields each kind must and must not have. It needs
// no state and no signature.
func (e *entry) checkShape() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%v entry: %s: %w", e.kind, fmt.Sprintf(format, args...), ErrMalformed)
	}
	if _, err := edPublicKey(e.author); err != nil {
		return bad("author: %v", err)
	}
	if _, err := edPublicKey(e.subject); err != nil {
		return bad("subject: %v", err)
	}
	if len(e.parents) > maxParents {
		return bad("%d parents", len(e.parents))
	}
	for i := 1; i < len(e.parents); i++ {
		if bytes.Compare(e.parents[i-1][:], e.parents[i][:]) >= 0 {
			return bad("parents not sorted and distinct")
		}
	}
	needName := e.kind == kindGenesis || e.kind == kindAdd || e.kind == kindRedeem
	if needName {
		if err := checkName(e.name); err != nil {
			return bad("%v", err)
		}
	} else if e.name != "" {
		return bad("unexpected name")
	}
	if (e.kind == kindRedeem) != (e.redeem != nil) {
		return bad("redemption record present=%v", e.redeem != nil)
	}
	if e.kind == kindRevoke {
		if e.role != "" {
			return bad("unexpected role")
		}
	} else if roleRank(e.role) == 0 {
		return bad("missing role")
	}
	switch e.kind {
	case kindGenesis:
		if !e.mesh.IsZero() || len(e.parents) != 0 || e.subject != e.author || e.role != RoleOwner {
			return bad("genesis must have zero mesh, no parents, and make its author owner")
		}
	case kindAdd, kindSetRole, kindRevoke, kindRedeem:
		if e.mesh.IsZero() || len(e.parents) == 0 {
			return bad("missing mesh or parents")
		}
	default:
		return bad("unknown kind")
	}
	if rd := e.redeem; rd != nil {
		if _, err := rd.grant.MarshalBinary(); err != nil {
			return bad("%v", err)
		}
		if e.role != rd.grant.Role {
			return bad("role %q differs from the invite's %q", e.role, rd.grant.Role)
		}
		if len(rd.challenge) < minChallenge || len(rd.challenge) > maxChallenge {
			return bad("challenge of %d bytes, want %d to %d", len(rd.challenge), minChallenge, maxChallenge)
		}
		if len(rd.proof) != ed25519.SignatureSize {
			return bad("proof of %d bytes", len(rd.proof))
		}
	}
	return nil
}

// checkName checks a device name: 1 to 64 bytes of printable UTF-8.
func checkName(name string) error {
	if name == "" || len(name) > maxNameLen || !utf8.ValidString(name) {
		return fmt.Errorf("device name %q must be 1 to %d bytes of UTF-8", clip(name), maxNameLen)
	}
	if slices.ContainsFunc([]rune(name), func(r rune) bool { return !unicode.IsPrint(r) }) {
		return fmt.Errorf("device name %q has unprintable characters", name)
	}
	return nil
}

// verify checks everything about e that needs no membership state: the
// author's signature, and for a redemption the inviter's signature on the
// grant, the grant's mesh, and the proof of the invite secret.
func (e *entry) verify() error {
	// raw is body, then the signature with a one-byte length (sigLen < 128).
	if !verifySig(e.author, signedMessage(e.raw[:len(e.raw)-1-len(e.sig)]), e.sig) {
		return fmt.Errorf("signature by %s: %w", e.author, ErrBadSignature)
	}
	if rd := e.redeem; rd != nil {
		if err := rd.grant.Verify(); err != nil {
			return err
		}
		if rd.grant.Mesh != e.mesh {
			return fmt.Errorf("invite for mesh %s: %w", rd.grant.Mesh, ErrWrongMesh)
		}
		if err := rd.grant.VerifyProof(e.subject, e.author, e.name, rd.challenge, rd.proof); err != nil {
			return err
		}
	}
	return nil
}
