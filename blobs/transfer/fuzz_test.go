package transfer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/blobs"
)

// rawFrame is a frame header claiming length n, followed by body.
func rawFrame(typ byte, n uint32, body []byte) []byte {
	b := append([]byte{typ}, binary.BigEndian.AppendUint32(nil, n)...)
	return append(b, body...)
}

// row1Frame is issue 14 row 1: one request frame declaring 100,000 bytes,
// which panicked the server (its request buffer is 32,819 bytes).
func row1Frame(typ byte) []byte {
	return rawFrame(typ, 100_000, make([]byte, 100_000))
}

// minRequestFrame is the smallest valid request; every request earns at most
// one response of at most maxFrame bytes.
const minRequestFrame = frameHeader + maxManifestPayload

// serveRaw sends in as the whole input of one blob stream from cli to srv
// and returns everything the server wrote, at most limit+1 bytes. It fails
// t if the server's handler does not end.
func serveRaw(t testing.TB, cli host.Host, srv *node, in []byte, limit int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := cli.NewStream(ctx, srv.h.ID(), ProtocolID)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	_ = st.SetDeadline(time.Now().Add(30 * time.Second)) // a hung handler fails the test instead of hanging it
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if _, err := st.Write(in); err == nil {
			_ = st.CloseWrite()
		}
	}()
	out, err := io.ReadAll(io.LimitReader(st, int64(limit)+1))
	if err != nil && !isStreamEnd(err) {
		t.Fatalf("read answers: %v", err)
	}
	_ = st.Reset()
	<-wrote
	waitHandlersDone(t, srv.svc)
	return out
}

// isStreamEnd reports errors that end a stream the server reset or closed.
func isStreamEnd(err error) bool {
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		bytes.Contains([]byte(err.Error()), []byte("reset"))
}

// waitHandlersDone polls until s serves no stream.
func waitHandlersDone(t testing.TB, s *Service) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.streams)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d blob stream handlers still running", n)
		}
		runtime.Gosched()
	}
}

// checkAnswers parses out as the server's answers: whole, valid response
// frames only. It returns the last one.
func checkAnswers(t testing.TB, out []byte, buf []byte) (last message) {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(out))
	for {
		typ, p, err := readFrame(r, buf)
		if errors.Is(err, io.EOF) {
			return last
		}
		if err != nil {
			t.Fatalf("server wrote a bad frame: %v", err)
		}
		if typ&0x80 == 0 {
			t.Fatalf("server wrote a request (type %#x)", typ)
		}
		m, err := decode(typ, p)
		if err != nil {
			t.Fatalf("server wrote an undecodable frame: %v", err)
		}
		last = m
	}
}

type fuzzServer struct {
	srv *node
	cli host.Host
	man blobs.Manifest
	buf []byte
}

func newFuzzServer(t testing.TB) *fuzzServer {
	srv := newNode(t, nil, nil)
	man := srv.seed(t, "a", randBytes(7, 200<<10))
	cli := newHost(t)
	if err := cli.Connect(context.Background(), peer.AddrInfo{ID: srv.h.ID(), Addrs: srv.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return &fuzzServer{srv: srv, cli: cli, man: man, buf: make([]byte, frameBufSize)}
}

// validRequests is a valid request stream for the seeded blob.
func (fs *fuzzServer) validRequests() []byte {
	ref := fs.man.Ref()
	var ids []blobs.ChunkID
	for _, c := range fs.man.Chunks {
		ids = append(ids, c.ID)
	}
	b := haveReq{ReqID: 1, Blob: ref, IDs: ids}.append(nil)
	b = getReq{ReqID: 2, Blob: ref, ID: ids[0]}.append(b)
	return manifestReq{ReqID: 3, Blob: ref}.append(b)
}

func FuzzBlobsServer(f *testing.F) {
	fs := newFuzzServer(f)
	valid := fs.validRequests()
	f.Add(valid)
	f.Add(row1Frame(msgHave))
	f.Add(row1Frame(msgGet))
	f.Add(append(append([]byte{}, valid...), row1Frame(msgManifest)...))
	f.Add(rawFrame(msgChunk, maxChunkPayload, nil))     // a response type, 4 MiB
	f.Add(rawFrame(msgHave, 0xffffffff, nil))           // the largest length
	f.Add(rawFrame(0x42, 3, []byte{1, 2, 3}))           // unknown type
	f.Add(valid[:len(valid)-7])                         // truncated
	f.Add(rawFrame(msgHave, maxHavePayload, []byte{0})) // announced, never sent
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		limit := (len(in)/minRequestFrame + 1) * maxFrame
		out := serveRaw(t, fs.cli, fs.srv, in, limit)
		if len(out) > limit {
			t.Fatalf("server wrote more than %d bytes for %d bytes of input", limit, len(in))
		}
		checkAnswers(t, out, fs.buf)
	})
}

// TestBadRequestFrames is issue 14 row 1 at the package level: each
// malformed frame gets ERROR(bad request) and the end of the stream, and the
// server still serves a fetch afterwards.
func TestBadRequestFrames(t *testing.T) {
	fs := newFuzzServer(t)
	ref := fs.man.Ref()
	get := getReq{ReqID: 9, Blob: ref, ID: fs.man.Chunks[0].ID}.append(nil)
	cases := map[string][]byte{
		"row 1: HAVE of 100,000 bytes":         row1Frame(msgHave),
		"GET of 100,000 bytes":                 row1Frame(msgGet),
		"GET one byte longer than a GET":       rawFrame(msgGet, maxGetPayload+1, make([]byte, maxGetPayload+1)),
		"MANIFEST after a valid GET, too long": append(append([]byte{}, get...), rawFrame(msgManifest, maxManifestPayload+1, make([]byte, maxManifestPayload+1))...),
		"response type CHUNK of 4 MiB":         rawFrame(msgChunk, maxChunkPayload, nil),
		"unknown type":                         rawFrame(0x42, 3, []byte{1, 2, 3}),
		"length 2^32-1":                        rawFrame(msgHave, 0xffffffff, nil),
	}
	// A HAVE of one ID whose count says two.
	cases["valid length, bad count"] = rawFrame(msgHave, 4+blobRefLen+2+32, append(append(make([]byte, 4+blobRefLen), 0, 2), make([]byte, 32)...))
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			out := serveRaw(t, fs.cli, fs.srv, in, 2*maxFrame)
			last, ok := checkAnswers(t, out, fs.buf).(errorResp)
			if !ok || last.Code != codeBadRequest {
				t.Fatalf("last answer %#v, want ERROR(bad request)", last)
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		// A frame cut short is an ended stream, not a bad request: nothing
		// but an end.
		out := serveRaw(t, fs.cli, fs.srv, get[:len(get)-3], 2*maxFrame)
		if len(out) != 0 {
			t.Fatalf("server answered a truncated frame with %d bytes", len(out))
		}
	})
	// The server still serves.
	other := newNode(t, nil, nil)
	connect(t, other, fs.srv)
	if err := other.svc.Fetch(context.Background(), fs.man, ids(fs.srv), nil); err != nil {
		t.Fatalf("fetch after bad frames: %v", err)
	}
	other.checkMaterialize(t, fs.man, randBytes(7, 200<<10))
}

// TestHostileServerFrames: the fetching side against a server that answers
// every stream with one malformed frame: Fetch, FetchManifest and
// FetchManifests return an error (no panic, nothing read past the bound).
func TestHostileServerFrames(t *testing.T) {
	ref := blobs.BlobRef{Size: 10}
	man := blobs.Manifest{Chunks: []blobs.ChunkRef{{Size: 10}}}
	frames := map[string][]byte{
		"CHUNK over the bound":         rawFrame(msgChunk, maxChunkPayload+1, make([]byte, 64)),
		"MANIFEST_RESP over the bound": rawFrame(msgManifestResp, maxManifestRespLoad+1, nil),
		"HAVE_RESP of 100,000 bytes":   row1Frame(msgHaveResp),
		"ERROR of 100,000 bytes":       row1Frame(msgError),
		"a request type":               row1Frame(msgHave),
		"unknown type":                 rawFrame(0x7f, 3, []byte{1, 2, 3}),
		"length 2^32-1":                rawFrame(msgChunk, 0xffffffff, nil),
	}
	for name, frame := range frames {
		t.Run(name, func(t *testing.T) {
			evil := newHost(t)
			evil.SetStreamHandler(ProtocolID, func(st network.Stream) {
				_, _ = st.Write(frame)
				_ = st.Close()
			})
			c := newNode(t, nil, nil)
			if err := c.h.Connect(context.Background(), peer.AddrInfo{ID: evil.ID(), Addrs: evil.Addrs()}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.svc.Fetch(ctx, man, []peer.ID{evil.ID()}, nil); err == nil {
				t.Error("Fetch succeeded")
			}
			if _, err := c.svc.FetchManifest(ctx, ref, []peer.ID{evil.ID()}); err == nil {
				t.Error("FetchManifest succeeded")
			}
			got, _ := c.svc.FetchManifests(ctx, []blobs.BlobRef{ref}, []peer.ID{evil.ID()})
			if len(got) != 0 {
				t.Errorf("FetchManifests returned %d manifests", len(got))
			}
			if ctx.Err() != nil {
				t.Fatal("a fetch hung until the deadline")
			}
		})
	}
}
