package syncproto

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"time"
	"unicode/utf8"

	"github.com/meshwork/meshwork/syncproto/hlc"
)

// Encoding. Every encoded value starts with a five-byte header: the magic
// "MWSP", the format version, and a one-byte kind. Decoders accept exactly
// the bytes the encoders write (the encoding is canonical: decoding and
// re-encoding gives the input back), reject trailing bytes, and validate
// what they decode.
const (
	magic = "MWSP"

	// FormatVersion is the version of the encoding written by this package.
	//
	// Version history:
	//   1: first version.
	//   2: every item (and every conflict) carries sig:str, its version
	//      signature (sign.go), after its history. Decoders still read
	//      version 1 (its items decode as unsigned); encoders write 2.
	FormatVersion = 2

	// minFormatVersion is the oldest version the decoders read.
	minFormatVersion = 1

	kindItem    = 'I'
	kindChanges = 'C'
	kindObject  = 'O'
)

// Layout of version 2 (version 1 is the same without the item's sig). uv is an unsigned LEB128 varint in its shortest
// form; zz a signed integer zigzag-encoded as a uv; str a uv length and
// that many bytes; u8 one byte; [16] sixteen bytes.
//
//	Item     'I': item
//	Changes  'C': object:str epoch:[16] head:uv n:uv (seq:uv item)*
//	              seqs strictly increasing and <= head
//	Object   'O': id:str type:str epoch:[16] head:uv
//	              nmembers:uv (device:str role:u8)*      devices strictly increasing, role 1..3
//	              nitems:uv (seq:uv item)*               item IDs strictly increasing, seqs distinct, 1..head
//	              ncursors:uv (device:str epoch:[16] seq:uv)*  devices strictly increasing
//
//	item      = id:str flags:u8 updates:uv nhist:uv history* sig:str nconf:uv item* content
//	            flags bit 0 deleted, bit 1 noconflicts; a conflict has nconf = 0;
//	            sig empty (unsigned) or 1..MaxSignatureLen bytes
//	history   = seq:uv hflags:u8 [wall:zz logical:uv] [by:str]
//	            hflags bit 0: when present (then not the zero time), bit 1: by present
//	content   = title:str body nenc:uv (ref:str size:uv mediatype:str)*
//	body      = kind:u8 ...   0 none | 1 bytes:str | 2 text:str |
//	            3 path:str mode:uv mtime-sec:zz mtime-nsec:uv size:uv blob:str symlink:str
//
// Unknown flag bits, kinds and roles are errors, not extensions: a new
// field means a new FormatVersion.

// EncodeItem returns the encoding of it. It does not validate it.
func EncodeItem(it Item) []byte { return encodeItemV(it, FormatVersion) }

func encodeItemV(it Item, v byte) []byte { return appendItemV(headerV(kindItem, v), it, v) }

// DecodeItem decodes an item written by EncodeItem and validates it.
func DecodeItem(data []byte) (Item, error) {
	d, err := newDecoder(data, kindItem)
	if err != nil {
		return Item{}, fmt.Errorf("decode item: %w", err)
	}
	it := d.item(true)
	if err := d.finish(); err != nil {
		return Item{}, fmt.Errorf("decode item: %w", err)
	}
	if err := it.Validate(); err != nil {
		return Item{}, fmt.Errorf("decode item: %w", err)
	}
	return it, nil
}

func headerV(kind, v byte) []byte {
	b := make([]byte, 0, 256)
	b = append(b, magic...)
	return append(b, v, kind)
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendZigzag(b []byte, v int64) []byte {
	return appendUvarint(b, uint64(v<<1)^uint64(v>>63))
}

func appendString(b []byte, s string) []byte {
	b = appendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendItem(b []byte, it Item) []byte { return appendItemV(b, it, FormatVersion) }

// appendItemV appends it in the layout of format version v.
func appendItemV(b []byte, it Item, v byte) []byte {
	s := it.Sync
	b = appendString(b, string(s.ID))
	b = append(b, syncFlags(s))
	b = appendUvarint(b, uint64(s.Updates))
	b = appendHistories(b, s.History)
	if v >= 2 {
		b = appendString(b, string(s.Signature))
	}
	b = appendUvarint(b, uint64(len(s.Conflicts)))
	for _, c := range s.Conflicts {
		b = appendItemV(b, c, v)
	}
	return appendContent(b, it.Content)
}

func syncFlags(s Sync) byte {
	var flags byte
	if s.Deleted {
		flags |= 1
	}
	if s.NoConflicts {
		flags |= 2
	}
	return flags
}

// appendHistories appends nhist:uv history*.
func appendHistories(b []byte, hs []History) []byte {
	b = appendUvarint(b, uint64(len(hs)))
	for _, h := range hs {
		b = appendHistory(b, h)
	}
	return b
}

func appendHistory(b []byte, h History) []byte {
	b = appendUvarint(b, uint64(h.Sequence))
	var hf byte
	if !h.When.IsZero() {
		hf |= 1
	}
	if h.By != "" {
		hf |= 2
	}
	b = append(b, hf)
	if !h.When.IsZero() {
		b = appendZigzag(b, h.When.Wall)
		b = appendUvarint(b, uint64(h.When.Logical))
	}
	if h.By != "" {
		b = appendString(b, string(h.By))
	}
	return b
}

// appendContent appends the content layout: title, body, enclosures.
func appendContent(b []byte, c Content) []byte {
	b = appendString(b, c.Title)
	switch body := c.Body.(type) {
	case nil:
		b = append(b, byte(kindNone))
	case Bytes:
		b = append(b, byte(kindBytes))
		b = appendString(b, string(body))
	case Text:
		b = append(b, byte(kindText))
		b = appendString(b, string(body))
	case *FileEntry:
		if body == nil {
			b = append(b, byte(kindNone))
			break
		}
		b = append(b, byte(kindFile))
		b = appendString(b, body.Path)
		b = appendUvarint(b, uint64(body.Mode))
		b = appendZigzag(b, body.ModTime.Unix())
		b = appendUvarint(b, uint64(body.ModTime.Nanosecond()))
		b = appendUvarint(b, uint64(body.Size))
		b = appendString(b, body.Blob.String())
		b = appendString(b, body.Symlink)
	}
	b = appendUvarint(b, uint64(len(c.Enclosures)))
	for _, e := range c.Enclosures {
		b = appendString(b, e.Ref.String())
		b = appendUvarint(b, uint64(e.Size))
		b = appendString(b, e.MediaType)
	}
	return b
}

// decoder reads the encoding; the first error sticks and later reads
// return zero values.
type decoder struct {
	b       []byte
	off     int
	err     error
	version byte // format version of the data
}

var errShort = errors.New("unexpected end of data")

func newDecoder(data []byte, kind byte) (*decoder, error) {
	if len(data) < len(magic)+2 || string(data[:len(magic)]) != magic {
		return nil, fmt.Errorf("bad header %q: %w", prefix(data), ErrMalformed)
	}
	v := data[len(magic)]
	if v < minFormatVersion || v > FormatVersion {
		return nil, fmt.Errorf("version %d: %w", v, ErrUnsupportedVersion)
	}
	if k := data[len(magic)+1]; k != kind {
		return nil, fmt.Errorf("kind %q, want %q: %w", k, kind, ErrMalformed)
	}
	return &decoder{b: data, off: len(magic) + 2, version: v}, nil
}

func prefix(b []byte) []byte {
	if len(b) > 8 {
		return b[:8]
	}
	return b
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("at offset %d: %s: %w", d.off, fmt.Sprintf(format, args...), ErrMalformed)
	}
}

func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d trailing bytes", len(d.b)-d.off)
	}
	return d.err
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail("%v", errShort)
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) uvarint() uint64 {
	var v uint64
	for i := 0; ; i++ {
		if d.err != nil {
			return 0
		}
		c := d.byte()
		if i == 9 && c > 1 {
			d.fail("varint overflows 64 bits")
			return 0
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if c == 0 && i > 0 {
				d.fail("varint not in shortest form")
				return 0
			}
			return v
		}
	}
}

func (d *decoder) zigzag() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

// uint reads a uv no larger than max.
func (d *decoder) uint(max uint64, what string) uint64 {
	v := d.uvarint()
	if v > max {
		d.fail("%s %d exceeds %d", what, v, max)
		return 0
	}
	return v
}

// count reads a count of elements of at least min bytes each.
func (d *decoder) count(min int, what string) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(d.remaining()/min) {
		d.fail("%s count %d exceeds data", what, n)
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(d.remaining()) {
		d.fail("string length %d: %v", n, errShort)
		return nil
	}
	b := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

func (d *decoder) text(what string) string {
	b := d.bytes()
	if !utf8.Valid(b) {
		d.fail("%s is not UTF-8", what)
	}
	return string(b)
}

func (d *decoder) epoch() Epoch {
	var e Epoch
	if d.err != nil {
		return e
	}
	if d.remaining() < len(e) {
		d.fail("epoch: %v", errShort)
		return e
	}
	copy(e[:], d.b[d.off:])
	d.off += len(e)
	return e
}

func (d *decoder) item(top bool) Item {
	var it Item
	s := &it.Sync
	s.ID = ItemID(d.text("item id"))
	flags := d.byte()
	if flags&^3 != 0 {
		d.fail("item %q: unknown flags %#x", s.ID, flags)
	}
	s.Deleted = flags&1 != 0
	s.NoConflicts = flags&2 != 0
	s.Updates = uint32(d.uint(math.MaxUint32, "updates"))
	n := d.count(2, "history")
	if n > 0 {
		s.History = make([]History, n)
	}
	for i := range s.History {
		h := &s.History[i]
		h.Sequence = uint32(d.uint(math.MaxUint32, "sequence"))
		hf := d.byte()
		if hf&^3 != 0 {
			d.fail("history flags %#x", hf)
		}
		if hf&1 != 0 {
			h.When = hlc.Timestamp{Wall: d.zigzag(), Logical: uint32(d.uint(math.MaxUint32, "logical time"))}
			if h.When.IsZero() {
				d.fail("present when is zero")
			}
		}
		if hf&2 != 0 {
			h.By = DeviceID(d.bytes())
			if h.By == "" {
				d.fail("present by is empty")
			}
		}
	}
	if d.version >= 2 {
		if sig := d.bytes(); len(sig) > 0 {
			if len(sig) > MaxSignatureLen {
				d.fail("item %q: signature of %d bytes exceeds %d", s.ID, len(sig), MaxSignatureLen)
			}
			s.Signature = append([]byte(nil), sig...)
		}
	}
	nc := d.count(8, "conflict")
	if nc > 0 && !top {
		d.fail("conflict %q has conflicts", s.ID)
	}
	for i := 0; i < nc && d.err == nil; i++ {
		s.Conflicts = append(s.Conflicts, d.item(false))
	}
	it.Title = d.text("title")
	switch k := bodyKind(d.byte()); k {
	case kindNone:
	case kindBytes:
		it.Body = Bytes(d.bytes())
	case kindText:
		it.Body = Text(d.text("text"))
	case kindFile:
		f := &FileEntry{}
		f.Path = d.text("path")
		f.Mode = fs.FileMode(d.uint(math.MaxUint32, "mode"))
		sec := d.zigzag()
		nsec := d.uint(999_999_999, "nanoseconds")
		f.ModTime = time.Unix(sec, int64(nsec)).UTC()
		if d.err == nil && (f.ModTime.Unix() != sec || f.ModTime.Nanosecond() != int(nsec)) {
			d.fail("mtime out of range")
		}
		f.Size = int64(d.uint(math.MaxInt64, "size"))
		f.Blob = d.blobRef(true)
		f.Symlink = d.text("symlink")
		it.Body = f
	default:
		d.fail("unknown body kind %d", k)
	}
	ne := d.count(3, "enclosure")
	for i := 0; i < ne && d.err == nil; i++ {
		var e Enclosure
		e.Ref = d.blobRef(false)
		e.Size = int64(d.uint(math.MaxInt64, "size"))
		e.MediaType = d.text("media type")
		it.Enclosures = append(it.Enclosures, e)
	}
	return it
}

func (d *decoder) blobRef(zeroOK bool) BlobRef {
	s := string(d.bytes())
	if d.err != nil || (s == "" && zeroOK) {
		return BlobRef{}
	}
	r, err := ParseBlobRef(s)
	if err != nil {
		d.fail("%v", err)
	}
	return r
}
