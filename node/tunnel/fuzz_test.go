package tunnel

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
)

// FuzzTunnelServer drives the serving side of /meshwork/tunnel/1.0.0 with
// arbitrary bytes from a member: the server must answer with one valid
// reply (and, for the exposed echo service, pass the rest through), end
// the stream, never write more than the reply plus the echo, and return.
func FuzzTunnelServer(f *testing.F) {
	a, b := newHost(f), newHost(f)
	srv := NewServer(b, newMembers(a.ID(), b.ID()), testLogger(f))
	f.Cleanup(func() { _ = srv.Close() })
	svc := newService(f, echo)
	if err := srv.Expose("echo", svc.addr(), nil); err != nil {
		f.Fatal(err)
	}
	connect(f, a, b)
	f.Add(append(appendRequest(nil, "echo"), "hello"...))
	f.Add(appendRequest(nil, "nothere"))
	f.Add([]byte{requestVersion, 255})
	f.Add(append([]byte{requestVersion, 200}, make([]byte, 100_000)...)) // the row-1 shape: a length beyond the bound
	f.Add(append([]byte{7}, make([]byte, 100_000)...))
	f.Add([]byte{requestVersion, 10, 'e'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		out := fbTunnelServe(t, a, b, srv, in, 2+maxReasonLen+len(in))
		if len(out) < 2 {
			if len(in) == 0 {
				return // nothing sent, nothing to answer
			}
			t.Fatalf("input %q: answer %q is not a reply", in, out)
		}
		st, n := Status(out[0]), int(out[1])
		if n > maxReasonLen || len(out) < 2+n {
			t.Fatalf("input %q: reply %q has a bad reason length", in, out)
		}
		req := appendRequest(nil, "echo")
		if bytes.HasPrefix(in, req) {
			if st != StatusOK || !bytes.Equal(out[2+n:], in[len(req):]) {
				t.Fatalf("input %q: status %v, passed through %q", in, st, out[2+n:])
			}
			return
		}
		if st == StatusOK || len(out) != 2+n {
			t.Fatalf("input %q: answer %q, want a refusal and nothing more", in, out)
		}
	})
}

// fbTunnelServe sends in as the whole input of one tunnel stream from a to
// b and returns what the server wrote (at most limit+1 bytes); it fails t
// if the server does not end the stream and its connection.
func fbTunnelServe(t *testing.T, a, b host.Host, srv *Server, in []byte, limit int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	st, err := a.NewStream(ctx, b.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Reset()
	_ = st.SetDeadline(time.Now().Add(testDeadline))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if _, err := st.Write(in); err == nil {
			_ = st.CloseWrite()
		}
	}()
	out, err := io.ReadAll(io.LimitReader(st, int64(limit)+1))
	if err != nil && !strings.Contains(err.Error(), "reset") && !errors.Is(err, io.EOF) {
		t.Fatalf("input %q: read: %v", in, err)
	}
	if len(out) > limit {
		t.Fatalf("input %q: server wrote more than %d bytes", in, limit)
	}
	_ = st.Reset()
	<-wrote
	deadline := time.Now().Add(testDeadline)
	for srv.Stats().Active != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("input %q: tunnel connection still open", in)
		}
		runtime.Gosched()
	}
	return out
}
