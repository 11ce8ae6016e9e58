// Package wire frames the messages of Meshwork's own libp2p protocols.
//
// A frame is:
//
//	uvarint  length of what follows (type byte + payload), at most a caller-given bound
//	byte     message type (defined by each protocol)
//	[]byte   payload
//
// The decoder never allocates more than the bound the caller passes, so a
// peer cannot make us allocate from an untrusted length. Wire never
// interprets payloads: each protocol documents its own message layouts.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrTooLarge is returned when a frame's declared length exceeds the bound.
var ErrTooLarge = errors.New("frame too large")

// WriteFrame writes one frame of the given type.
func WriteFrame(w io.Writer, typ byte, payload []byte) error {
	var hdr [binary.MaxVarintLen64 + 1]byte
	n := binary.PutUvarint(hdr[:], uint64(len(payload))+1)
	hdr[n] = typ
	if _, err := w.Write(hdr[:n+1]); err != nil {
		return fmt.Errorf("write frame header: %w", err)
	}
	if _, err := w.Write(payload); err != nil {
		return fmt.Errorf("write frame payload: %w", err)
	}
	return nil
}

// ReadFrame reads one frame whose payload is at most max bytes.
func ReadFrame(r *bufio.Reader, max int) (typ byte, payload []byte, err error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil, io.EOF
		}
		return 0, nil, fmt.Errorf("read frame length: %w", err)
	}
	if n == 0 {
		return 0, nil, fmt.Errorf("read frame: zero length")
	}
	if n-1 > uint64(max) {
		return 0, nil, fmt.Errorf("read frame: %d bytes, limit %d: %w", n-1, max, ErrTooLarge)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("read frame body: %w", io.ErrUnexpectedEOF)
	}
	return buf[0], buf[1:], nil
}

// AppendBytes appends a uvarint length and b.
func AppendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// ReadBytes reads a uvarint-length-prefixed field from b, returning the field
// and the rest. It fails if the field is longer than the input.
func ReadBytes(b []byte) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, nil, fmt.Errorf("read field length: malformed uvarint")
	}
	b = b[k:]
	if n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("read field: %d bytes declared, %d left", n, len(b))
	}
	return b[:n], b[n:], nil
}
