package identity

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Size limits. Every length read from untrusted data is checked against one
// of these before anything is allocated.
const (
	maxLogEntries = 1 << 14 // entries in one log
	maxEntrySize  = 16 << 10
	maxParents    = 256 // parents of one entry
	maxPeerIDLen  = 64  // an inline Ed25519 peer ID is 38 bytes
	maxNameLen    = 64  // device names, bytes of UTF-8
	maxAddrs      = 16  // addresses in an invite
	maxRedeemers  = 4   // redeemers named in an invite
	maxAddrLen    = 256 // bytes of one binary multiaddr
	minChallenge  = 16
	maxChallenge  = 64
	sigLen        = 64 // Ed25519 signature
	keyLen        = 32 // Ed25519 public key and seed
)

// encoder appends the primitive wire types.
type encoder struct{ b []byte }

func (w *encoder) byte(v byte)      { w.b = append(w.b, v) }
func (w *encoder) fixed(p []byte)   { w.b = append(w.b, p...) }
func (w *encoder) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *encoder) bytes(p []byte)   { w.uvarint(uint64(len(p))); w.fixed(p) }
func (w *encoder) string(s string)  { w.uvarint(uint64(len(s))); w.b = append(w.b, s...) }
func (w *encoder) int64(v int64)    { w.b = binary.BigEndian.AppendUint64(w.b, uint64(v)) }
func (w *encoder) id(p [32]byte)    { w.fixed(p[:]) }

// decoder reads the primitive wire types. The first error sticks; reads
// after it return zero values. Running out of input yields short, which is
// ErrTruncated for a log and ErrMalformed inside a length-delimited entry.
type decoder struct {
	b     []byte
	err   error
	short error
	what  string // what is being decoded, for messages
}

func (r *decoder) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *decoder) need(n int, field string) bool {
	if r.err != nil {
		return false
	}
	if n > len(r.b) {
		r.fail(fmt.Errorf("%s: %s: need %d bytes, have %d: %w", r.what, field, n, len(r.b), r.short))
		return false
	}
	return true
}

func (r *decoder) byte(field string) byte {
	if !r.need(1, field) {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *decoder) fixed(n int, field string) []byte {
	if !r.need(n, field) {
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *decoder) uvarint(field string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n == 0:
		r.fail(fmt.Errorf("%s: %s: varint cut short: %w", r.what, field, r.short))
		return 0
	case n < 0:
		r.fail(fmt.Errorf("%s: %s: varint overflows: %w", r.what, field, ErrMalformed))
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a uvarint that must not exceed max.
func (r *decoder) count(max int, field string) int {
	v := r.uvarint(field)
	if r.err == nil && v > uint64(max) {
		r.fail(fmt.Errorf("%s: %s: %d exceeds limit %d: %w", r.what, field, v, max, ErrMalformed))
		return 0
	}
	return int(v)
}

// bytes reads a length-prefixed byte string of at most max bytes. The result
// aliases the input.
func (r *decoder) bytes(max int, field string) []byte {
	n := r.count(max, field+" length")
	return r.fixed(n, field)
}

func (r *decoder) int64(field string) int64 {
	p := r.fixed(8, field)
	if p == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(p))
}

func (r *decoder) id(field string) (v [32]byte) {
	copy(v[:], r.fixed(32, field))
	return v
}

// end fails unless all input was consumed.
func (r *decoder) end() {
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Errorf("%s: %d trailing bytes: %w", r.what, len(r.b), ErrMalformed))
	}
}

// logMagic starts an encoded log; its last byte is the format version.
//
// Log format, version 1:
//
//	log   = "MWLOG" 0x01 count:uvarint count*( len:uvarint entry[len] )
//	entry = body sig:bytes
//	body  = kind:u8 mesh:[32] author:bytes nparents:uvarint parents:[32]*n
//	        time:int64be(unix ns) subject:bytes name:bytes role:u8
//	        redeemed:u8 [ grant:bytes challenge:bytes proof:bytes ]
//	bytes = len:uvarint data[len]
//
// Entries are written in the deterministic topological order; a decoder
// accepts any order. The signature is by the author over entryDomain+body.
// Version history: 1 (first).
const logMagic = "MWLOG\x01"

// Encode returns the versioned binary form of the log (see DecodeLog).
// Logs holding the same entries encode identically.
func (l *Log) Encode() []byte {
	n := len(logMagic) + 4
	for _, e := range l.order {
		n += len(e.raw) + 3
	}
	w := encoder{b: make([]byte, 0, n)}
	w.fixed([]byte(logMagic))
	w.uvarint(uint64(len(l.order)))
	for _, e := range l.order {
		w.bytes(e.raw)
	}
	return w.b
}

func decodeLog(data []byte) (*Log, error) {
	if len(data) < len(logMagic) {
		if bytes.HasPrefix([]byte(logMagic), data) {
			return nil, fmt.Errorf("decode log: %d bytes: %w", len(data), ErrTruncated)
		}
		return nil, fmt.Errorf("decode log: not a membership log: %w", ErrMalformed)
	}
	if !bytes.HasPrefix(data, []byte(logMagic[:len(logMagic)-1])) {
		return nil, fmt.Errorf("decode log: not a membership log: %w", ErrMalformed)
	}
	if v := data[len(logMagic)-1]; v != logMagic[len(logMagic)-1] {
		return nil, fmt.Errorf("decode log: unsupported version %d: %w", v, ErrMalformed)
	}
	r := decoder{b: data[len(logMagic):], short: ErrTruncated, what: "decode log"}
	n := r.count(maxLogEntries, "entry count")
	if r.err == nil && n == 0 {
		return nil, fmt.Errorf("decode log: no entries: %w", ErrTruncated)
	}
	var entries []*entry
	for i := 0; i < n && r.err == nil; i++ {
		raw := r.bytes(maxEntrySize, fmt.Sprintf("entry %d", i))
		if r.err != nil {
			break
		}
		e, err := parseEntry(raw)
		if err != nil {
			return nil, fmt.Errorf("decode log: entry %d: %w", i, err)
		}
		entries = append(entries, e)
	}
	r.end()
	if r.err != nil {
		return nil, r.err
	}
	l, err := build(entries, nil)
	if err != nil {
		return nil, fmt.Errorf("decode log: %w", err)
	}
	return l, nil
}
