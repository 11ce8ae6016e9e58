package identity

// This file is the package's public contract: the types and functions that
// node/ and relay/ use. Bodies live in the other files of the package.

import (
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Sentinel errors. Callers test them with errors.Is; the wrapping error
// says which entry, invite or device was at fault.
var (
	ErrMalformed     = errors.New("malformed data")
	ErrBadSignature  = errors.New("bad signature")
	ErrUnauthorized  = errors.New("author not authorised")
	ErrTruncated     = errors.New("log is truncated")
	ErrWrongMesh     = errors.New("entry belongs to another mesh")
	ErrNotMember     = errors.New("device is not a member")
	ErrRevoked       = errors.New("device is revoked")
	ErrAlreadyMember = errors.New("device is already a member")
	ErrInviteExpired = errors.New("invite expired")
	ErrInviteUsed    = errors.New("invite already used")
	ErrInviteForged  = errors.New("invite signature invalid")
	ErrWrongSecret   = errors.New("invite secret proof invalid")
	// ErrNotRedeemer: the invite names other members as its redeemers
	// (always wrapped together with ErrUnauthorized).
	ErrNotRedeemer = errors.New("invite is not redeemable at this device")
)

// Role is a device's role in a mesh.
type Role string

// The mesh roles. Owners and admins may change membership.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// ParseRole parses "owner", "admin" or "member".
func ParseRole(s string) (Role, error) { return parseRole(s) }

// CanAdmin reports whether the role may sign membership entries.
func (r Role) CanAdmin() bool { return r == RoleOwner || r == RoleAdmin }

// MeshID names a mesh: the hash of its genesis entry. Its text form is
// "mesh" followed by lower-case base32 without padding.
type MeshID [32]byte

// EntryID names a membership entry: the hash of its signed encoding.
type EntryID [32]byte

// Member is one device as the log sees it now.
type Member struct {
	ID      peer.ID
	Name    string
	Role    Role
	Revoked bool
	AddedBy peer.ID
	AddedAt time.Time
	// RevokedAt is the claimed time of the entry that revoked the device
	// (zero while it is not revoked): what it wrote before then stays
	// valid (see node's formerWriters).
	RevokedAt time.Time
}

// LoadOrCreateKey reads the Ed25519 device key at path, or creates it (mode
// 0600, written atomically) when the file does not exist.
func LoadOrCreateKey(path string) (key crypto.PrivKey, created bool, err error) {
	return loadOrCreateKey(path)
}

// NewMesh creates a mesh whose genesis entry makes key's device its owner.
func NewMesh(key crypto.PrivKey, deviceName string, now time.Time) (*Log, error) {
	return newMesh(key, deviceName, now)
}

// DecodeLog decodes and verifies a whole membership log (see Log.Encode).
// Every signature, every author's authority and every parent reference is
// checked; the first fault is returned.
func DecodeLog(data []byte) (*Log, error) { return decodeLog(data) }

// Invite is a signed capability to join a mesh, plus (in a code) the secret
// that proves possession. Grant is the part that may cross the wire.
type Invite struct {
	Grant  InviteGrant
	secret []byte // ed25519 seed; only in codes, never on the wire
}

// InviteGrant is the public, inviter-signed half of an invite.
type InviteGrant struct {
	Mesh    MeshID
	Inviter peer.ID
	Addrs   []ma.Multiaddr
	Role    Role
	Expires time.Time
	PubKey  []byte // ed25519 public key whose seed is the invite secret
	Sig     []byte // inviter's signature over all fields above
	// Redeemers are the only members that may redeem the invite (grant
	// version 2). Empty only in a version 1 grant (made before redeemers
	// were named): Log.Redeem then accepts its inviter only; redemptions of
	// version 1 grants already in a log stay valid whoever redeemed them.
	Redeemers []peer.ID
}

// InviteID identifies an invite across the mesh (hash of its public key).
type InviteID [32]byte

// EntryInfo describes one entry of the membership log, for display (the
// API's membership feed). It carries no signature: readers that must
// verify use Log.Encode and Merge.
type EntryInfo struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"` // genesis, add, role, revoke, redeem
	Author  peer.ID   `json:"author"`
	Subject peer.ID   `json:"subject"`
	Name    string    `json:"name,omitempty"`
	Role    Role      `json:"role,omitempty"`
	Time    time.Time `json:"time"` // as claimed by the author
	Summary string    `json:"summary"`
}

// Entries lists the log's entries in its deterministic order.
func (l *Log) Entries() []EntryInfo {
	out := make([]EntryInfo, 0, len(l.order))
	for _, e := range l.order {
		ei := EntryInfo{ID: e.id.String(), Kind: e.kind.String(), Author: e.author, Subject: e.subject, Name: e.name, Role: e.role, Time: e.when()}
		ei.Summary = fmt.Sprintf("%s %s", ei.Kind, e.subject.ShortString())
		if e.name != "" {
			ei.Summary += " (" + e.name + ")"
		}
		if e.role != "" {
			ei.Summary += " as " + string(e.role)
		}
		out = append(out, ei)
	}
	return out
}
