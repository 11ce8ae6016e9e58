package transfer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/meshwork/meshwork/blobs"
)

// Message types. Requests have the high bit clear, responses set.
const (
	msgHave         byte = 0x01
	msgGet          byte = 0x02
	msgManifest     byte = 0x03
	msgHaveResp     byte = 0x81
	msgChunk        byte = 0x82
	msgManifestResp byte = 0x83
	msgError        byte = 0x8f
)

// Error codes carried by msgError.
const (
	codeRefused    byte = 1 // not a member, or may not read this blob
	codeNotFound   byte = 2 // chunk or manifest not available here
	codeBadRequest byte = 3 // malformed request; the stream is closed after it
	codeInternal   byte = 4
)

const (
	frameHeader    = 5    // type u8, length u32
	maxHaveIDs     = 1024 // chunk IDs per msgHave
	maxErrorText   = 256
	chunkRespHead  = 4 + 32
	blobRefLen     = 32 + 8
	maxPayload     = chunkRespHead + blobs.MaxChunkSize
	maxFrame       = frameHeader + maxPayload
	maxManifestLen = maxPayload - 4
)

var errFrame = errors.New("bad frame")

// blobRef is the wire form of a BlobRef: hash[32] size u64.
func appendBlobRef(b []byte, r blobs.BlobRef) []byte {
	b = append(b, r.Hash[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(r.Size))
}

func readBlobRef(p []byte) (blobs.BlobRef, error) {
	var r blobs.BlobRef
	copy(r.Hash[:], p)
	size := binary.BigEndian.Uint64(p[32:])
	if size > 1<<62 {
		return r, fmt.Errorf("blob size %d: %w", size, errFrame)
	}
	r.Size = int64(size)
	return r, nil
}

// message is any decoded protocol message.
type message interface {
	// append appends the whole frame (header included).
	append(b []byte) []byte
}

type haveReq struct {
	ReqID uint32
	Blob  blobs.BlobRef
	IDs   []blobs.ChunkID
}

type getReq struct {
	ReqID uint32
	Blob  blobs.BlobRef
	ID    blobs.ChunkID
}

type manifestReq struct {
	ReqID uint32
	Blob  blobs.BlobRef
}

type haveResp struct {
	ReqID  uint32
	Count  uint16
	Bitmap []byte // bit i (LSB first) set: the peer has IDs[i]
}

type chunkResp struct {
	ReqID uint32
	ID    blobs.ChunkID
	Data  []byte // aliases the read buffer
}

type manifestResp struct {
	ReqID    uint32
	Manifest []byte // binary form; verified by the caller against the ref asked for
}

type errorResp struct {
	ReqID uint32
	Code  byte
	Text  string
}

func frame(b []byte, typ byte, n int) []byte {
	b = append(b, typ)
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

func (m haveReq) append(b []byte) []byte {
	b = frame(b, msgHave, 4+blobRefLen+2+32*len(m.IDs))
	b = binary.BigEndian.AppendUint32(b, m.ReqID)
	b = appendBlobRef(b, m.Blob)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.IDs)))
	for _, id := range m.IDs {
		b = append(b, id[:]...)
	}
	return b
}

func (m getReq) append(b []byte) []byte {
	b = frame(b, msgGet, 4+blobRefLen+32)
	b = binary.BigEndian.AppendUint32(b, m.ReqID)
	b = appendBlobRef(b, m.Blob)
	return append(b, m.ID[:]...)
}

func (m manifestReq) append(b []byte) []byte {
	b = frame(b, msgManifest, 4+blobRefLen)
	b = binary.BigEndian.AppendUint32(b, m.ReqID)
	return appendBlobRef(b, m.Blob)
}

func (m haveResp) append(b []byte) []byte {
	b = frame(b, msgHaveResp, 4+2+len(m.Bitmap))
	b = binary.BigEndian.AppendUint32(b, m.ReqID)
	b = binary.BigEndian.AppendUint16(b, m.Count)
	return append(b, m.Bitmap...)
}

// appendHeader appends the frame header and fixed fields of a chunk
// response; the data follows separately so it is never copied.
func (m chunkResp) appendHeader(b []byte) []byte {
	b = frame(b, msgChunk, chunkRespHead+len(m.Data))
	b = binary.BigEndian.AppendUint32(b, m.ReqID)
	return append(b, m.ID[:]...)
}

func (m chunkResp) append(b []byte) []byte { return append(m.appendHeader(b), m.Data...) }

func (m manifestResp) append(b []byte) []byte {
	b = frame(b, msgManifestResp, 4+len(m.Manifest))
	b = binary.BigEndian.AppendUint32(b, m.ReqID)
	return append(b, m.Manifest...)
}

func (m errorResp) append(b []byte) []byte {
	t := m.Text
	if len(t) > maxErrorText {
		t = t[:maxErrorText]
	}
	b = frame(b, msgError, 4+1+len(t))
	b = binary.BigEndian.AppendUint32(b, m.ReqID)
	b = append(b, m.Code)
	return append(b, t...)
}

// Largest payload of each message type (see doc.go). A request frame can
// never be longer than the largest valid request of its type; a response
// frame is at most maxPayload.
const (
	maxHavePayload      = 4 + blobRefLen + 2 + 32*maxHaveIDs
	maxGetPayload       = 4 + blobRefLen + 32
	maxManifestPayload  = 4 + blobRefLen
	maxHaveRespPayload  = 4 + 2 + maxHaveIDs/8
	maxChunkPayload     = chunkRespHead + blobs.MaxChunkSize
	maxManifestRespLoad = 4 + maxManifestLen
	maxErrorPayload     = 4 + 1 + maxErrorText

	// maxRequestFrame is the largest request frame (a full HAVE): the
	// buffer the serving side reads requests into.
	maxRequestFrame = frameHeader + maxHavePayload
)

// maxPayloadOf returns the largest valid payload of a message of type typ,
// or -1 for an unknown type.
func maxPayloadOf(typ byte) int {
	switch typ {
	case msgHave:
		return maxHavePayload
	case msgGet:
		return maxGetPayload
	case msgManifest:
		return maxManifestPayload
	case msgHaveResp:
		return maxHaveRespPayload
	case msgChunk:
		return maxChunkPayload
	case msgManifestResp:
		return maxManifestRespLoad
	case msgError:
		return maxErrorPayload
	}
	return -1
}

// readFrame reads one frame into buf. The length is checked against the
// largest valid payload of the frame's type and against len(buf) before
// anything is read; an unknown type or a longer frame is an errFrame, and
// nothing of its payload is read. Nothing is allocated.
func readFrame(r *bufio.Reader, buf []byte) (typ byte, payload []byte, err error) {
	hdr, err := r.Peek(frameHeader)
	if err != nil {
		if errors.Is(err, io.EOF) && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	typ = hdr[0]
	n := binary.BigEndian.Uint32(hdr[1:])
	limit := maxPayloadOf(typ)
	if limit < 0 {
		return typ, nil, fmt.Errorf("frame of unknown type %#x (%d bytes): %w", typ, n, errFrame)
	}
	limit = min(limit, len(buf))
	if uint64(n) > uint64(limit) {
		return typ, nil, fmt.Errorf("frame type %#x of %d bytes (max %d here): %w", typ, n, limit, errFrame)
	}
	if _, err := r.Discard(frameHeader); err != nil {
		return 0, nil, err
	}
	payload = buf[:n]
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return typ, payload, nil
}

// decode decodes one payload of type typ. Byte slices in the result alias p.
func decode(typ byte, p []byte) (message, error) {
	bad := func(what string) error {
		return fmt.Errorf("decode message %#x (%d bytes): %s: %w", typ, len(p), what, errFrame)
	}
	if len(p) < 4 {
		return nil, bad("short")
	}
	id := binary.BigEndian.Uint32(p)
	p2 := p[4:]
	switch typ {
	case msgHave:
		if len(p2) < blobRefLen+2 {
			return nil, bad("short")
		}
		ref, err := readBlobRef(p2)
		if err != nil {
			return nil, err
		}
		n := int(binary.BigEndian.Uint16(p2[blobRefLen:]))
		rest := p2[blobRefLen+2:]
		if n > maxHaveIDs || len(rest) != 32*n {
			return nil, bad("count")
		}
		ids := make([]blobs.ChunkID, n)
		for i := range ids {
			copy(ids[i][:], rest[32*i:])
		}
		return haveReq{ReqID: id, Blob: ref, IDs: ids}, nil
	case msgGet:
		if len(p2) != blobRefLen+32 {
			return nil, bad("length")
		}
		ref, err := readBlobRef(p2)
		if err != nil {
			return nil, err
		}
		var c blobs.ChunkID
		copy(c[:], p2[blobRefLen:])
		return getReq{ReqID: id, Blob: ref, ID: c}, nil
	case msgManifest:
		if len(p2) != blobRefLen {
			return nil, bad("length")
		}
		ref, err := readBlobRef(p2)
		if err != nil {
			return nil, err
		}
		return manifestReq{ReqID: id, Blob: ref}, nil
	case msgHaveResp:
		if len(p2) < 2 {
			return nil, bad("short")
		}
		n := binary.BigEndian.Uint16(p2)
		bm := p2[2:]
		if int(n) > maxHaveIDs || len(bm) != (int(n)+7)/8 {
			return nil, bad("bitmap")
		}
		if n%8 != 0 && bm[len(bm)-1]>>(n%8) != 0 {
			return nil, bad("padding bits")
		}
		return haveResp{ReqID: id, Count: n, Bitmap: bm}, nil
	case msgChunk:
		if len(p2) < 32+1 || len(p2) > 32+blobs.MaxChunkSize {
			return nil, bad("length")
		}
		var c blobs.ChunkID
		copy(c[:], p2)
		return chunkResp{ReqID: id, ID: c, Data: p2[32:]}, nil
	case msgManifestResp:
		if len(p2) > maxManifestLen {
			return nil, bad("length")
		}
		return manifestResp{ReqID: id, Manifest: p2}, nil
	case msgError:
		if len(p2) < 1 || len(p2) > 1+maxErrorText {
			return nil, bad("length")
		}
		return errorResp{ReqID: id, Code: p2[0], Text: string(p2[1:])}, nil
	}
	return nil, bad("unknown type")
}
