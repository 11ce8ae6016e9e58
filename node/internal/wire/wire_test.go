package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, 7, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	typ, p, err := ReadFrame(bufio.NewReader(&buf), 10)
	if err != nil || typ != 7 || string(p) != "hello" {
		t.Fatalf("got %d %q %v", typ, p, err)
	}
}

func TestFrameTooLarge(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, 1, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadFrame(bufio.NewReader(&buf), 99); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("want ErrTooLarge, got %v", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteFrame(&buf, 1, []byte("seed"))
	f.Add(buf.Bytes())
	f.Add([]byte{0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, p, err := ReadFrame(bufio.NewReader(bytes.NewReader(data)), 1<<16)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteFrame(&out, typ, p); err != nil {
			t.Fatal(err)
		}
		typ2, p2, err := ReadFrame(bufio.NewReader(&out), 1<<16)
		if err != nil || typ2 != typ || !bytes.Equal(p, p2) {
			t.Fatalf("round trip changed frame: %v", err)
		}
	})
}

// limitScope is a stream scope with a memory limit.
type limitScope struct {
	network.StreamScope
	limit, used, peak int
}

func (s *limitScope) ReserveMemory(n int, _ uint8) error {
	if s.used+n > s.limit {
		return errors.New("limit")
	}
	s.used += n
	s.peak = max(s.peak, s.used)
	return nil
}

func (s *limitScope) ReleaseMemory(n int) { s.used -= n }

// Stat and PeerScope answer as rcmgr's stream scopes do (a refusal's error
// shows them): this scope has no peer scope.
func (s *limitScope) Stat() network.ScopeStat      { return network.ScopeStat{Memory: int64(s.used)} }
func (s *limitScope) PeerScope() network.PeerScope { return nil }

// scopedStream is a reader with a resource scope, as a libp2p stream.
type scopedStream struct {
	io.Reader
	sc *limitScope
}

func (s scopedStream) Scope() network.StreamScope { return s.sc }

// A Reader on a stream reserves each frame in the stream's scope until the
// next frame, and refuses a frame the scope cannot hold.
func TestReaderReserves(t *testing.T) {
	var buf bytes.Buffer
	_ = WriteFrame(&buf, 1, make([]byte, 300<<10))
	_ = WriteFrame(&buf, 2, []byte("small"))
	_ = WriteFrame(&buf, 3, make([]byte, 2<<20))
	sc := &limitScope{limit: 1 << 20}
	r := NewReader(scopedStream{&buf, sc})
	if typ, p, err := r.ReadFrame(4 << 20); err != nil || typ != 1 || len(p) != 300<<10 || sc.used != 300<<10 {
		t.Fatalf("first frame: %d %d %v, %d reserved", typ, len(p), err, sc.used)
	}
	if typ, p, err := r.ReadFrame(4 << 20); err != nil || typ != 2 || string(p) != "small" || sc.used != 5 {
		t.Fatalf("second frame: %d %q %v, %d reserved", typ, p, err, sc.used)
	}
	if _, _, err := r.ReadFrame(4 << 20); !errors.Is(err, ErrMemory) || sc.used != 0 || !strings.Contains(err.Error(), "(stream: ") {
		t.Fatalf("frame over the scope's limit: %v, %d reserved", err, sc.used)
	}
	r.Release()
	if sc.used != 0 || sc.peak > 1<<20 {
		t.Fatalf("%d reserved after Release, peak %d", sc.used, sc.peak)
	}
}

// A frame that announces 8 MiB and sends 10 KiB costs one step of memory.
func TestReaderHalfFrame(t *testing.T) {
	in := binary.AppendUvarint(nil, 8<<20+1)
	in = append(in, 1)
	in = append(in, make([]byte, 10<<10)...)
	sc := &limitScope{limit: 1 << 30}
	if _, _, err := NewReader(scopedStream{bytes.NewReader(in), sc}).ReadFrame(8 << 20); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("want ErrUnexpectedEOF, got %v", err)
	}
	if sc.peak > 64<<10 || sc.used != 0 {
		t.Fatalf("peak %d, %d still reserved", sc.peak, sc.used)
	}
}
