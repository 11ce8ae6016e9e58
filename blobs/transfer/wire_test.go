package transfer

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"github.com/meshwork/meshwork/blobs"
)

func sampleMessages() []message {
	id := blobs.SumChunk([]byte("x"))
	ref := blobs.Manifest{Chunks: []blobs.ChunkRef{{ID: id, Size: 1}}}.Ref()
	man, _ := blobs.Manifest{Chunks: []blobs.ChunkRef{{ID: id, Size: 1}}}.MarshalBinary()
	return []message{
		haveReq{ReqID: 1, Blob: ref, IDs: []blobs.ChunkID{id, {}}},
		haveReq{ReqID: 2, Blob: ref, IDs: []blobs.ChunkID{}},
		getReq{ReqID: 3, Blob: ref, ID: id},
		manifestReq{ReqID: 4, Blob: ref},
		haveResp{ReqID: 1, Count: 10, Bitmap: []byte{0xff, 0x03}},
		chunkResp{ReqID: 3, ID: id, Data: []byte("x")},
		manifestResp{ReqID: 4, Manifest: man},
		errorResp{ReqID: 0, Code: codeRefused, Text: "not a member"},
	}
}

func TestWireRoundTrip(t *testing.T) {
	buf := make([]byte, maxFrame)
	for _, m := range sampleMessages() {
		enc := m.append(nil)
		typ, p, err := readFrame(bufio.NewReader(bytes.NewReader(enc)), buf)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		got, err := decode(typ, p)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !bytes.Equal(got.append(nil), enc) {
			t.Fatalf("%T: round trip differs", m)
		}
		for i := 0; i < len(enc); i++ {
			if typ, p, err := readFrame(bufio.NewReader(bytes.NewReader(enc[:i])), buf); err == nil {
				if _, err := decode(typ, p); err == nil && i != len(enc) {
					t.Fatalf("%T truncated at %d decoded", m, i)
				}
			}
		}
	}
	// A length beyond the bound is refused before reading or allocating.
	huge := []byte{msgChunk, 0xff, 0xff, 0xff, 0xff}
	if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(huge)), buf); !errors.Is(err, errFrame) {
		t.Fatalf("oversized frame: %v", err)
	}
}

// FuzzDecode feeds arbitrary bytes to the frame reader and decoders; what
// decodes must re-encode to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(m.append(nil))
	}
	f.Add([]byte{msgHave, 0, 0, 0, 4, 0, 0, 0, 1})
	f.Add([]byte{msgHaveResp, 0, 0, 0, 7, 0, 0, 0, 1, 0, 3, 0xff})
	f.Add([]byte{0x42, 0, 0, 0, 0})
	buf := make([]byte, maxFrame)
	f.Fuzz(func(t *testing.T, in []byte) {
		typ, p, err := readFrame(bufio.NewReader(bytes.NewReader(in)), buf)
		if err != nil {
			return
		}
		m, err := decode(typ, p)
		if err != nil {
			return
		}
		enc := m.append(nil)
		if !bytes.Equal(enc, in[:frameHeader+len(p)]) {
			t.Fatalf("round trip of %T: %x != %x", m, enc, in[:frameHeader+len(p)])
		}
	})
}
