package syncproto

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on identifier lengths, in bytes.
const (
	MaxDeviceIDLen = 128
	MaxIDLen       = 256
)

// DeviceID names an endpoint: the FeedSync `by` value. In Meshwork it is
// the text form of a libp2p peer ID; syncproto treats it as an opaque
// string of printable ASCII without spaces.
type DeviceID string

// ParseDeviceID checks s and returns it as a DeviceID.
func ParseDeviceID(s string) (DeviceID, error) {
	if s == "" || len(s) > MaxDeviceIDLen {
		return "", fmt.Errorf("parse device id %q: length %d not in 1..%d: %w", s, len(s), MaxDeviceIDLen, ErrMalformed)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return "", fmt.Errorf("parse device id %q: byte %#x at %d: %w", s, s[i], i, ErrMalformed)
		}
	}
	return DeviceID(s), nil
}

// String returns the device ID's text form.
func (d DeviceID) String() string { return string(d) }

// Compare orders device IDs by the FeedSync collation: ordinal comparison
// of the characters (for UTF-8 strings, byte-wise comparison; equivalent to
// code point order). Length plays no part of its own: "B" > "AAAA".
func (d DeviceID) Compare(e DeviceID) int { return strings.Compare(string(d), string(e)) }

// MarshalText implements encoding.TextMarshaler.
func (d DeviceID) MarshalText() ([]byte, error) { return []byte(d), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *DeviceID) UnmarshalText(b []byte) error {
	v, err := ParseDeviceID(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ItemID names an item within an object (the FeedSync sx:sync id).
type ItemID string

// ParseItemID checks s: 1..MaxIDLen bytes of UTF-8 without control
// characters.
func ParseItemID(s string) (ItemID, error) {
	if err := checkID(s); err != nil {
		return "", fmt.Errorf("parse item id: %w", err)
	}
	return ItemID(s), nil
}

// String returns the item ID's text form.
func (id ItemID) String() string { return string(id) }

// ObjectID names a mesh object.
type ObjectID string

// ParseObjectID checks s like ParseItemID.
func ParseObjectID(s string) (ObjectID, error) {
	if err := checkID(s); err != nil {
		return "", fmt.Errorf("parse object id: %w", err)
	}
	return ObjectID(s), nil
}

// String returns the object ID's text form.
func (id ObjectID) String() string { return string(id) }

func checkID(s string) error {
	if s == "" || len(s) > MaxIDLen {
		return fmt.Errorf("%q: length %d not in 1..%d: %w", s, len(s), MaxIDLen, ErrMalformed)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q: invalid UTF-8: %w", s, ErrMalformed)
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%q: control character at %d: %w", s, i, ErrMalformed)
		}
	}
	return nil
}

// ObjectType says what kind of feed an object is. It is lower-case ASCII
// letters, digits and '-'; the constants are the known kinds, others are
// kept and synced as they are.
type ObjectType string

// Known object types.
const (
	TypeFolder ObjectType = "folder" // items are files (FileEntry bodies)
	TypeList   ObjectType = "list"   // items are list entries (Text bodies)
	TypeNote   ObjectType = "note"   // items are notes (Text bodies)
	TypeNews   ObjectType = "news"   // items are activity/news entries
)

// ParseObjectType checks s and returns it as an ObjectType.
func ParseObjectType(s string) (ObjectType, error) {
	if s == "" || len(s) > 64 {
		return "", fmt.Errorf("parse object type %q: length not in 1..64: %w", s, ErrMalformed)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "", fmt.Errorf("parse object type %q: byte %#x at %d: %w", s, c, i, ErrMalformed)
		}
	}
	return ObjectType(s), nil
}

// Role is a device's role in one object, on top of its mesh membership.
type Role uint8

// Object roles. The zero Role means "not a member of the object".
const (
	RoleNone   Role = iota
	RoleReader      // receives items and chunks; its changes are refused
	RoleEditor      // reads and writes items
	RoleOwner       // an editor that may also change the object's members
)

var roleNames = [...]string{RoleNone: "none", RoleReader: "reader", RoleEditor: "editor", RoleOwner: "owner"}

// String returns "none", "reader", "editor" or "owner".
func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// ParseRole parses the text form written by String.
func ParseRole(s string) (Role, error) {
	for r, name := range roleNames {
		if s == name {
			return Role(r), nil
		}
	}
	return RoleNone, fmt.Errorf("parse role %q: %w", s, ErrMalformed)
}

// CanWrite reports whether the role may change items.
func (r Role) CanWrite() bool { return r == RoleEditor || r == RoleOwner }

// valid reports whether r is one of the defined roles.
func (r Role) valid() bool { return r <= RoleOwner }

// Epoch names one incarnation of a device's change log. A new random epoch
// is created with the device's database; a peer that sees another epoch
// than the one its cursor holds knows the log was lost and starts over.
type Epoch [16]byte

// NewEpoch reads a random epoch from r (crypto/rand.Reader when r is nil).
func NewEpoch(r io.Reader) (Epoch, error) {
	if r == nil {
		r = rand.Reader
	}
	var e Epoch
	if _, err := io.ReadFull(r, e[:]); err != nil {
		return Epoch{}, fmt.Errorf("new epoch: %w", err)
	}
	return e, nil
}

// IsZero reports whether e is the zero (unset) epoch.
func (e Epoch) IsZero() bool { return e == Epoch{} }

// String returns the epoch in lower-case hex.
func (e Epoch) String() string { return hex.EncodeToString(e[:]) }

// ParseEpoch parses the text form written by String.
func ParseEpoch(s string) (Epoch, error) {
	var e Epoch
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(e) || hex.EncodeToString(b) != s {
		return Epoch{}, fmt.Errorf("parse epoch %q: %w", s, ErrMalformed)
	}
	copy(e[:], b)
	return e, nil
}

// MarshalText implements encoding.TextMarshaler.
func (e Epoch) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (e *Epoch) UnmarshalText(b []byte) error {
	v, err := ParseEpoch(string(b))
	if err != nil {
		return err
	}
	*e = v
	return nil
}
