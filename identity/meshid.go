package identity

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
)

// b32 is the text encoding of IDs and invite codes: lower-case base32
// (RFC 4648 alphabet) without padding. It is an immutable value.
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// meshIDPrefix starts the text form of a MeshID. It is permanent.
const meshIDPrefix = "mesh"

// roleRank orders roles by power: owner > admin > member; 0 is not a role.
func roleRank(r Role) int {
	switch r {
	case RoleOwner:
		return 3
	case RoleAdmin:
		return 2
	case RoleMember:
		return 1
	}
	return 0
}

func parseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if roleRank(r) == 0 {
		return "", fmt.Errorf("parse role %q: want owner, admin or member: %w", s, ErrMalformed)
	}
	return r, nil
}

// String returns the role's name.
func (r Role) String() string { return string(r) }

// String returns "mesh" followed by the lower-case base32 form of m.
func (m MeshID) String() string { return meshIDPrefix + b32.EncodeToString(m[:]) }

// IsZero reports whether m is the zero MeshID (no mesh).
func (m MeshID) IsZero() bool { return m == MeshID{} }

// MarshalText implements encoding.TextMarshaler.
func (m MeshID) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (see ParseMeshID).
func (m *MeshID) UnmarshalText(b []byte) error {
	id, err := ParseMeshID(string(b))
	if err != nil {
		return err
	}
	*m = id
	return nil
}

// ParseMeshID parses the text form made by MeshID.String.
func ParseMeshID(s string) (MeshID, error) {
	var m MeshID
	rest, ok := strings.CutPrefix(s, meshIDPrefix)
	if !ok {
		return m, fmt.Errorf("parse mesh id %q: missing %q prefix: %w", clip(s), meshIDPrefix, ErrMalformed)
	}
	if err := decodeID(m[:], rest); err != nil {
		return m, fmt.Errorf("parse mesh id %q: %w", clip(s), err)
	}
	return m, nil
}

// decodeID decodes the canonical base32 form of a 32-byte ID into dst.
func decodeID(dst []byte, s string) error {
	if want := b32.EncodedLen(len(dst)); len(s) != want {
		return fmt.Errorf("want %d base32 characters, got %d: %w", want, len(s), ErrMalformed)
	}
	n, err := b32.Decode(dst, []byte(s))
	if err != nil {
		return fmt.Errorf("invalid base32: %v: %w", err, ErrMalformed)
	}
	if n != len(dst) || b32.EncodeToString(dst) != s {
		return fmt.Errorf("non-canonical base32: %w", ErrMalformed)
	}
	return nil
}

// String returns the lower-case base32 form of the entry ID.
func (id EntryID) String() string { return b32.EncodeToString(id[:]) }

// short is an abbreviated form for error messages.
func (id EntryID) short() string { return id.String()[:12] }

// String returns the lower-case base32 form of the invite ID.
func (id InviteID) String() string { return b32.EncodeToString(id[:]) }

// hashID is the hash behind EntryID, MeshID and InviteID.
func hashID(b []byte) [32]byte { return sha256.Sum256(b) }

// clip shortens untrusted input quoted in error messages.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
