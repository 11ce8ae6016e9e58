package tunnel

import (
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/protocol"
)

// ProtocolID is the libp2p protocol of a tunnel stream. See the package
// documentation for the message flow and the layout of each message.
const ProtocolID protocol.ID = "/meshwork/tunnel/1.0.0"

// requestVersion is the first byte of a request in this protocol version.
const requestVersion = 1

// Bounds on the variable-length fields; both fit a one-byte uvarint length.
const (
	MaxNameLen   = 64  // a service name, in bytes
	maxReasonLen = 127 // the text of a reply, in bytes
)

// Status is the first byte of the serving device's reply.
type Status uint8

// Reply statuses. Values are permanent; a client treats any status it does
// not know as a failure.
const (
	StatusOK          Status = 0 // the service was dialled; bytes follow
	StatusRefused     Status = 1 // not a member, or not on the service's allow list
	StatusNotFound    Status = 2 // no service of that name is exposed
	StatusUnavailable Status = 3 // the service's address did not accept a connection
	StatusBadRequest  Status = 4 // malformed request or unknown request version
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusRefused:
		return "refused"
	case StatusNotFound:
		return "not found"
	case StatusUnavailable:
		return "unavailable"
	case StatusBadRequest:
		return "bad request"
	}
	return fmt.Sprintf("status %d", uint8(s))
}

// errMalformed is wrapped by every decoding error.
var errMalformed = errors.New("malformed tunnel message")

// appendRequest encodes a request for the service name.
func appendRequest(b []byte, name string) []byte {
	b = append(b, requestVersion, byte(len(name)))
	return append(b, name...)
}

// appendReply encodes a reply. The reason is truncated to maxReasonLen bytes
// (at a rune boundary) so that any reason can be sent.
func appendReply(b []byte, st Status, reason string) []byte {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	b = append(b, byte(st), byte(len(reason)))
	return append(b, reason...)
}

// readRequest decodes a request from r, reading exactly its bytes (a stream
// carries the tunnelled bytes right after it). It returns the version read
// even when the version is unknown, so that the server can say so; the name
// is then empty.
func readRequest(r io.Reader) (version byte, name string, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		return 0, "", fmt.Errorf("%w: request: %w", errMalformed, err)
	}
	if hdr[0] != requestVersion {
		return hdr[0], "", fmt.Errorf("%w: request version %d", errMalformed, hdr[0])
	}
	if _, err := io.ReadFull(r, hdr[1:]); err != nil {
		return hdr[0], "", fmt.Errorf("%w: request: %w", errMalformed, err)
	}
	n := int(hdr[1])
	if n == 0 || n > MaxNameLen {
		return hdr[0], "", fmt.Errorf("%w: service name length %d", errMalformed, n)
	}
	var nb [MaxNameLen]byte // n is bounded above: nothing is allocated from the wire
	buf := nb[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return hdr[0], "", fmt.Errorf("%w: request: %w", errMalformed, err)
	}
	name = string(buf)
	if err := checkName(name); err != nil {
		return hdr[0], "", fmt.Errorf("%w: %w", errMalformed, err)
	}
	return hdr[0], name, nil
}

// readReply decodes a reply from r, reading exactly its bytes.
func readReply(r io.Reader) (Status, string, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, "", fmt.Errorf("%w: reply: %w", errMalformed, err)
	}
	n := int(hdr[1])
	if n > maxReasonLen {
		return 0, "", fmt.Errorf("%w: reason length %d", errMalformed, n)
	}
	var rb [maxReasonLen]byte // n is bounded above: nothing is allocated from the wire
	buf := rb[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, "", fmt.Errorf("%w: reply: %w", errMalformed, err)
	}
	if !utf8.Valid(buf) {
		return 0, "", fmt.Errorf("%w: reason is not UTF-8", errMalformed)
	}
	return Status(hdr[0]), string(buf), nil
}

// checkName reports whether name is a valid service name: 1 to MaxNameLen
// bytes of a-z, 0-9, '-', '_' and '.', starting with a letter or digit.
func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("service name %q: %w: must be 1 to %d characters", name, ErrInvalidName, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return fmt.Errorf("service name %q: %w: use a-z, 0-9, '-', '_', '.', starting with a letter or digit", name, ErrInvalidName)
		}
	}
	return nil
}
