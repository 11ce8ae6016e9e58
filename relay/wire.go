package relay

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// AuthProtocolID is the libp2p protocol of the membership proof exchange
// (see the package documentation for its layout and history).
const AuthProtocolID = "/meshwork/relay-auth/1.0.0"

// DefaultMaxLogSize bounds the encoded membership log a relay accepts.
const DefaultMaxLogSize = 4 << 20

// maxMessageLen bounds the human-readable text of a response.
const maxMessageLen = 256

// Status is the first byte of an auth response. Values are permanent once
// shipped; new ones may be added at the end.
type Status byte

// The auth response statuses.
const (
	StatusOK             Status = 0 // the peer may now reserve and connect
	StatusMalformed      Status = 1 // the request framing was invalid
	StatusTooLarge       Status = 2 // the log exceeds the relay's size bound
	StatusInvalidLog     Status = 3 // identity.DecodeLog rejected the log
	StatusMeshNotAllowed Status = 4 // the log's mesh is not in the relay's ACL
	StatusNotMember      Status = 5 // the sender is not a current member (or is revoked)
	StatusConflict       Status = 6 // the log cannot be merged with what the relay knows
	StatusBusy           Status = 7 // the relay is overloaded; retry later
)

var statusNames = [...]string{
	StatusOK:             "ok",
	StatusMalformed:      "malformed",
	StatusTooLarge:       "too_large",
	StatusInvalidLog:     "invalid_log",
	StatusMeshNotAllowed: "mesh_not_allowed",
	StatusNotMember:      "not_member",
	StatusConflict:       "conflict",
	StatusBusy:           "busy",
}

// String returns the status's short name (also used as a metrics label).
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status_%d", byte(s))
}

// Wire errors.
var (
	// ErrRefused is matched (errors.Is) by every *AuthError: the relay
	// answered and said no.
	ErrRefused = errors.New("relay refused authentication")
	// ErrMalformed reports a request or response that breaks the wire format.
	ErrMalformed = errors.New("malformed relay-auth message")
	// ErrTooLarge reports a log larger than the bound in force.
	ErrTooLarge = errors.New("membership log too large")
)

// AuthError is the relay's refusal of a membership proof.
type AuthError struct {
	Status  Status
	Message string
}

func (e *AuthError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("relay refused authentication: %s", e.Status)
	}
	return fmt.Sprintf("relay refused authentication: %s: %s", e.Status, e.Message)
}

// Is makes errors.Is(err, ErrRefused) true for every AuthError.
func (e *AuthError) Is(target error) bool { return target == ErrRefused }

// appendRequest appends the request framing of an encoded log.
func appendRequest(dst, encodedLog []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(encodedLog)))
	return append(dst, encodedLog...)
}

// readRequest reads one request and returns the encoded log it carries.
// A zero-length log, a length above maxLog, or a short body is an error.
func readRequest(r *bufio.Reader, maxLog int) ([]byte, error) {
	n, err := readUvarint(r)
	if err != nil {
		return nil, fmt.Errorf("read request length: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("read request: %w: empty log", ErrMalformed)
	}
	if n > uint64(maxLog) {
		return nil, fmt.Errorf("read request: %w: %d bytes, limit %d", ErrTooLarge, n, maxLog)
	}
	// Grow the buffer as bytes arrive, so that announcing a large log
	// costs a peer as much memory as it actually sends.
	buf, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err != nil {
		return nil, fmt.Errorf("read request body of %d bytes: %w: %w", n, ErrMalformed, err)
	}
	if uint64(len(buf)) != n {
		return nil, fmt.Errorf("read request body: %w: got %d of %d bytes", ErrMalformed, len(buf), n)
	}
	return buf, nil
}

// appendResponse appends a response: status byte, uvarint length, message.
// The message is cut to maxMessageLen bytes on a rune boundary.
func appendResponse(dst []byte, st Status, msg string) []byte {
	msg = strings.ToValidUTF8(msg, "?")
	if len(msg) > maxMessageLen {
		msg = msg[:maxMessageLen]
		for !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
	}
	dst = append(dst, byte(st))
	dst = binary.AppendUvarint(dst, uint64(len(msg)))
	return append(dst, msg...)
}

// readResponse reads one response.
func readResponse(r *bufio.Reader) (Status, string, error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, "", fmt.Errorf("read response status: %w: %w", ErrMalformed, err)
	}
	n, err := readUvarint(r)
	if err != nil {
		return 0, "", fmt.Errorf("read response length: %w", err)
	}
	if n > maxMessageLen {
		return 0, "", fmt.Errorf("read response: %w: message of %d bytes, limit %d", ErrMalformed, n, maxMessageLen)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return 0, "", fmt.Errorf("read response message of %d bytes: %w: %w", n, ErrMalformed, err)
	}
	if !utf8.Valid(msg) {
		return 0, "", fmt.Errorf("read response: %w: message is not UTF-8", ErrMalformed)
	}
	return Status(b), string(msg), nil
}

// readUvarint reads an unsigned varint in its minimal encoding (as
// multiformats' unsigned-varint requires), so that every value has exactly
// one encoding.
func readUvarint(r io.ByteReader) (uint64, error) {
	var n uint64
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if i == 9 && b > 1 {
			return 0, fmt.Errorf("%w: varint overflows 64 bits", ErrMalformed)
		}
		n |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, fmt.Errorf("%w: varint not minimally encoded", ErrMalformed)
			}
			return n, nil
		}
	}
}
