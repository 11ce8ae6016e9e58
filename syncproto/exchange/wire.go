package exchange

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"

	"github.com/meshwork/meshwork/internal/framebuf"
	"github.com/meshwork/meshwork/syncproto"
)

// Message types (see the wire format in doc.go).
const (
	msgAnnounce byte = 0x01
	msgRequest  byte = 0x02
	msgChanges  byte = 0x03
	msgEnd      byte = 0x04
	msgError    byte = 0x7f
)

// Error codes carried by msgError.
const (
	codeRefused    byte = 1 // not a member of the mesh
	codeBadRequest byte = 2 // protocol violation; the stream is closed after it
	codeInternal   byte = 3
)

// Limits of the wire format, version 1.0.0.
const (
	frameHeader = 5 // type u8, length u32 big-endian

	// MaxFrameSize bounds the payload of one frame.
	MaxFrameSize = 8 << 20
	// MaxItemSize bounds the encoding of an item made by a local change
	// (Engine.Update refuses bigger ones), so that every item fits a
	// CHANGES frame with room to spare.
	MaxItemSize = 4 << 20

	maxAnnounceHeads = 4096 // heads per ANNOUNCE frame
	maxSummary       = 8192 // summary entries per REQUEST frame
	maxErrorText     = 256
	changesTarget    = 4 << 20 // a CHANGES frame is cut before this many bytes of items
	digestLen        = 16
)

// errFrame is wrapped by every decoding error.
var errFrame = errors.New("bad frame")

// head is one object of an ANNOUNCE: the sender's change log of it.
type head struct {
	Object syncproto.ObjectID
	Epoch  syncproto.Epoch
	Head   uint64
}

// announce says which objects the sender shares with the receiver and how
// far its change logs go. Reply asks the receiver to announce its own.
type announce struct {
	Reply bool
	Heads []head // object IDs strictly increasing
}

// digest identifies an item's exact state: the first 16 bytes of the
// SHA-256 of its encoding (syncproto.EncodeItem).
type digest [digestLen]byte

// summaryEntry is one item the requester already holds.
type summaryEntry struct {
	Item   syncproto.ItemID
	Digest digest
}

// request asks for the changes of one object after Cursor. A full request
// (zero Cursor) may carry a summary of the items the requester holds,
// split over several frames (More set on all but the last), so that the
// sender skips identical items.
type request struct {
	Object  syncproto.ObjectID
	Cursor  syncproto.Cursor
	More    bool
	Summary []summaryEntry // item IDs strictly increasing within a frame
}

// errorMsg reports why the sender gives up on the stream.
type errorMsg struct {
	Code byte
	Text string
}

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendString(b []byte, s string) []byte {
	b = appendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (a announce) encode() []byte {
	b := make([]byte, 0, 2+len(a.Heads)*40)
	var flags byte
	if a.Reply {
		flags |= 1
	}
	b = append(b, flags)
	b = appendUvarint(b, uint64(len(a.Heads)))
	for _, h := range a.Heads {
		b = appendString(b, string(h.Object))
		b = append(b, h.Epoch[:]...)
		b = appendUvarint(b, h.Head)
	}
	return b
}

func (r request) encode() []byte {
	b := make([]byte, 0, 32+len(r.Object)+len(r.Summary)*(digestLen+16))
	b = appendString(b, string(r.Object))
	b = append(b, r.Cursor.Epoch[:]...)
	b = appendUvarint(b, r.Cursor.Seq)
	var flags byte
	if r.More {
		flags |= 1
	}
	b = append(b, flags)
	b = appendUvarint(b, uint64(len(r.Summary)))
	for _, s := range r.Summary {
		b = appendString(b, string(s.Item))
		b = append(b, s.Digest[:]...)
	}
	return b
}

func (m errorMsg) encode() []byte {
	b := []byte{m.Code}
	return appendString(b, m.Text)
}

// reader decodes a payload; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errFrame)
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("unexpected end of payload")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// uvarint reads a varint in its shortest form.
func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	if n != len(binary.AppendUvarint(nil, v)) {
		r.fail("varint %d not in shortest form", v)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) fixed(dst []byte) {
	if r.err != nil {
		return
	}
	if len(r.b) < len(dst) {
		r.fail("unexpected end of payload")
		return
	}
	copy(dst, r.b)
	r.b = r.b[len(dst):]
}

// text reads a string of at most max bytes of UTF-8.
func (r *reader) text(max int, what string) string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(max) || n > uint64(len(r.b)) {
		r.fail("%s length %d exceeds %d or payload", what, n, max)
		return ""
	}
	s := r.b[:n]
	r.b = r.b[n:]
	if !utf8.Valid(s) {
		r.fail("%s is not UTF-8", what)
		return ""
	}
	return string(s)
}

// count reads an element count no larger than max and than the payload
// could hold with elements of at least min bytes.
func (r *reader) count(max, min int, what string) int {
	n := r.uvarint()
	if r.err == nil && (n > uint64(max) || n > uint64(len(r.b)/min)) {
		r.fail("%s count %d exceeds %d or payload", what, n, max)
		return 0
	}
	return int(n)
}

func (r *reader) finish() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}

func (r *reader) objectID() syncproto.ObjectID {
	s := r.text(syncproto.MaxIDLen, "object id")
	if r.err != nil {
		return ""
	}
	id, err := syncproto.ParseObjectID(s)
	if err != nil {
		r.fail("%v", err)
	}
	return id
}

func decodeAnnounce(p []byte) (announce, error) {
	r := &reader{b: p}
	var a announce
	flags := r.byte()
	if flags&^1 != 0 {
		r.fail("announce flags %#x", flags)
	}
	a.Reply = flags&1 != 0
	n := r.count(maxAnnounceHeads, 18, "head")
	for i := 0; i < n && r.err == nil; i++ {
		var h head
		h.Object = r.objectID()
		r.fixed(h.Epoch[:])
		h.Head = r.uvarint()
		if r.err == nil {
			if h.Epoch.IsZero() {
				r.fail("object %q: zero epoch", h.Object)
			}
			if i > 0 && h.Object <= a.Heads[i-1].Object {
				r.fail("object %q out of order", h.Object)
			}
		}
		a.Heads = append(a.Heads, h)
	}
	if err := r.finish(); err != nil {
		return announce{}, fmt.Errorf("decode announce: %w", err)
	}
	return a, nil
}

func decodeRequest(p []byte) (request, error) {
	r := &reader{b: p}
	var q request
	q.Object = r.objectID()
	r.fixed(q.Cursor.Epoch[:])
	q.Cursor.Seq = r.uvarint()
	flags := r.byte()
	if flags&^1 != 0 {
		r.fail("request flags %#x", flags)
	}
	q.More = flags&1 != 0
	n := r.count(maxSummary, 1+digestLen+1, "summary")
	for i := 0; i < n && r.err == nil; i++ {
		var s summaryEntry
		id := r.text(syncproto.MaxIDLen, "item id")
		if r.err == nil {
			var err error
			if s.Item, err = syncproto.ParseItemID(id); err != nil {
				r.fail("%v", err)
			}
		}
		r.fixed(s.Digest[:])
		if r.err == nil && i > 0 && s.Item <= q.Summary[i-1].Item {
			r.fail("summary item %q out of order", s.Item)
		}
		q.Summary = append(q.Summary, s)
	}
	if r.err == nil {
		full := q.Cursor == syncproto.Cursor{}
		switch {
		case q.Cursor.Epoch.IsZero() && q.Cursor.Seq != 0:
			r.fail("request of %q: sequence %d without epoch", q.Object, q.Cursor.Seq)
		case !full && (len(q.Summary) > 0 || q.More):
			r.fail("request of %q: summary with a cursor", q.Object)
		}
	}
	if err := r.finish(); err != nil {
		return request{}, fmt.Errorf("decode request: %w", err)
	}
	return q, nil
}

func decodeError(p []byte) (errorMsg, error) {
	r := &reader{b: p}
	m := errorMsg{Code: r.byte()}
	m.Text = r.text(maxErrorText, "error text")
	if err := r.finish(); err != nil {
		return errorMsg{}, fmt.Errorf("decode error: %w", err)
	}
	return m, nil
}

// writeFrame writes one frame to w (which the caller flushes).
func writeFrame(w *bufio.Writer, typ byte, payload []byte) error {
	if len(payload) > MaxFrameSize {
		return fmt.Errorf("write frame %#x: payload of %d bytes exceeds %d: %w", typ, len(payload), MaxFrameSize, errFrame)
	}
	var h [frameHeader]byte
	h[0] = typ
	binary.BigEndian.PutUint32(h[1:], uint32(len(payload)))
	if _, err := w.Write(h[:]); err != nil {
		return fmt.Errorf("write frame %#x: %w", typ, err)
	}
	if _, err := w.Write(payload); err != nil {
		return fmt.Errorf("write frame %#x: %w", typ, err)
	}
	return nil
}

// readFrame reads one frame without memory accounting (see readFrameIn).
func readFrame(r io.Reader) (typ byte, payload []byte, err error) {
	typ, b, err := readFrameIn(r, nil)
	return typ, b.B, err
}

// readFrameIn reads one frame. The payload length is checked against
// MaxFrameSize before anything is allocated; an END frame must be empty.
// The payload buffer grows as its bytes arrive, its memory reserved in
// scope (nil: none) until the caller releases it; a refused reservation
// is framebuf.ErrMemory.
func readFrameIn(r io.Reader, scope framebuf.Scope) (typ byte, payload framebuf.Buffer, err error) {
	var h [frameHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, payload, fmt.Errorf("read frame header: %w", err)
	}
	typ = h[0]
	n := binary.BigEndian.Uint32(h[1:])
	if !slices.Contains([]byte{msgAnnounce, msgRequest, msgChanges, msgEnd, msgError}, typ) {
		return 0, payload, fmt.Errorf("read frame: unknown type %#x: %w", typ, errFrame)
	}
	if n > MaxFrameSize || typ == msgEnd && n != 0 {
		return 0, payload, fmt.Errorf("read frame %#x: length %d: %w", typ, n, errFrame)
	}
	payload, err = framebuf.Read(r, int(n), scope)
	if err != nil {
		return 0, payload, fmt.Errorf("read frame %#x of %d bytes: %w", typ, n, err)
	}
	return typ, payload, nil
}
