package syncproto

import (
	"errors"

	"github.com/meshwork/meshwork/syncproto/hlc"
)

// Sentinel errors. Callers test them with errors.Is; the wrapping error
// names the object, item or device at fault.
var (
	// ErrMalformed reports bytes or values that are not a valid encoding
	// or a valid item.
	ErrMalformed = errors.New("malformed")
	// ErrUnsupportedVersion reports an encoding of an unknown version.
	ErrUnsupportedVersion = errors.New("unsupported encoding version")
	// ErrReadOnly reports a change authored by a device that may not
	// write to the object (a reader or a non-member).
	ErrReadOnly = errors.New("device may not write to object")
	// ErrNotOwner reports a membership change by a device that is not an
	// owner of the object.
	ErrNotOwner = errors.New("device is not an owner of object")
	// ErrNotFound reports an unknown item.
	ErrNotFound = errors.New("item not found")
	// ErrEpochMismatch reports a cursor from another log epoch: the peer's
	// database was lost or replaced and the caller must fall back to a full
	// reconciliation (ChangesSince with a zero Cursor).
	ErrEpochMismatch = errors.New("change log epoch mismatch")
	// ErrBadSignature reports a version whose signature is missing (and
	// that did not come straight from its author) or does not verify.
	ErrBadSignature = errors.New("bad version signature")
	// ErrUpdateStep reports a version whose update count jumps further
	// ahead of what the replica knows of the item than MaxUpdateStep.
	ErrUpdateStep = errors.New("update count advances too far")
	// ErrTooLarge reports an incoming item whose encoding exceeds the
	// replica's Config.MaxItemSize.
	ErrTooLarge = errors.New("item too large")
	// ErrRefused reports a version refused by the object's Validator (its
	// meaning is not allowed: for example a catalog entry rewritten by a
	// device that does not own it).
	ErrRefused = errors.New("version refused by the object's rules")
	// ErrClockSkew reports a `when` too far in the future; it is
	// hlc.ErrClockSkew.
	ErrClockSkew = hlc.ErrClockSkew
)
