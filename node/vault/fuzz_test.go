package vault

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/meshwork/meshwork/node/internal/wire"
)

func frame(typ byte, p []byte) []byte {
	var b bytes.Buffer
	_ = wire.WriteFrame(&b, typ, p)
	return b.Bytes()
}

// FuzzVaultServer drives the server's per-stream handler (HandleRW, what
// Handle runs on a libp2p stream) with arbitrary bytes from a member:
// it must not panic, must return, must answer with at most one frame
// whose status is known and whose size is within the largest answer, must
// never exceed its quota, and must never let a device that did not upload
// a manifest (and is not an admin) delete it.
func FuzzVaultServer(f *testing.F) {
	const quota = 1 << 20
	s, _ := newServer(f, quota)
	s.SetAdmin(func(d string) bool { return d == "admin" })
	ctx := context.Background()
	owned := "man/" + strings.Repeat("ee", 32)
	sm := sealedManifest(f, s, [][]byte{[]byte("the owner's chunk")}, true)
	if st, msg := s.serve(ctx, "owner", OpPutRecord, append(wire.AppendBytes(nil, []byte(owned)), sm...)); st != StatusOK {
		f.Fatalf("put: %#x %s", st, msg)
	}
	for _, seed := range [][]byte{
		frame(OpPutRecord, append(wire.AppendBytes(nil, []byte("obj/x/fuzzer")), 1, 2)),
		frame(OpPutRecord, append(wire.AppendBytes(nil, []byte(owned)), sm...)),
		frame(OpGetRecord, []byte(owned)),
		frame(OpList, []byte("man/")),
		frame(OpHave, make([]byte, 64)),
		frame(OpPutChunk, putChunkReq([]byte("hello"))),
		frame(OpGetChunk, make([]byte, 32)),
		frame(OpUsage, nil),
		frame(OpDelete, []byte(owned)),
		frame(OpDelete, []byte("man/"+strings.Repeat("00", 32))),
		{0xff, 0xff, 0xff, 0xff, 0x0f, OpPutRecord}, // a huge frame announced, nothing sent
		{0x80, 0x80, 0x80, 0x01, OpPutChunk, 1, 2, 3},
		{},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(data), &out}
		if err := s.HandleRW(rw, "fuzzer"); err != nil {
			if out.Len() != 0 {
				t.Fatalf("error %v after writing %d bytes", err, out.Len())
			}
			return
		}
		typ, p, err := wire.ReadFrame(bufio.NewReader(&out), maxFrame)
		if err != nil {
			t.Fatalf("answer: %v", err)
		}
		if typ < StatusOK || typ > StatusInternal {
			t.Fatalf("status %#x", typ)
		}
		if typ != StatusOK && len(p) > maxReason {
			t.Fatalf("reason of %d bytes", len(p))
		}
		if out.Len() != 0 {
			t.Fatalf("%d bytes after the answer", out.Len())
		}
		if u := s.Usage(); u.Used > quota {
			t.Fatalf("over quota: %+v", u)
		}
		if st, _ := s.serve(ctx, "x", OpGetRecord, []byte(owned)); st != StatusOK {
			t.Fatalf("the owner's manifest is gone: %#x", st)
		}
	})
}
