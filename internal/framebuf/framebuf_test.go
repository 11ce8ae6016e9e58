package framebuf

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// testScope is a scope with a memory limit that records its peak use.
type testScope struct {
	limit, used, peak int
}

func (s *testScope) ReserveMemory(n int, prio uint8) error {
	if prio != Priority {
		return errors.New("wrong priority")
	}
	if s.used+n > s.limit {
		return errors.New("limit")
	}
	s.used += n
	s.peak = max(s.peak, s.used)
	return nil
}

func (s *testScope) ReleaseMemory(n int) {
	s.used -= n
	if s.used < 0 {
		panic("released more than reserved")
	}
}

func TestReadWhole(t *testing.T) {
	for _, n := range []int{0, 1, Step - 1, Step, Step + 1, 5*Step + 3} {
		in := bytes.Repeat([]byte{7}, n)
		sc := &testScope{limit: 1 << 30}
		b, err := Read(io.MultiReader(bytes.NewReader(in), bytes.NewReader([]byte("next"))), n, sc)
		if err != nil || !bytes.Equal(b.B, in) {
			t.Fatalf("n=%d: %v", n, err)
		}
		if sc.used != cap(b.B) || cap(b.B) != n {
			t.Fatalf("n=%d: reserved %d for a buffer of %d", n, sc.used, cap(b.B))
		}
		b.Release()
		b.Release()
		if sc.used != 0 {
			t.Fatalf("n=%d: %d bytes still reserved", n, sc.used)
		}
	}
}

// A frame that declares much and sends little costs what was sent (at
// most twice, and at least one step), and releases it all on failure.
func TestReadHalfFrame(t *testing.T) {
	const declared, sent = 8 << 20, 100 << 10
	sc := &testScope{limit: 1 << 30}
	_, err := Read(bytes.NewReader(make([]byte, sent)), declared, sc)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("want ErrUnexpectedEOF, got %v", err)
	}
	if sc.peak > 2*sent || sc.used != 0 {
		t.Fatalf("peak %d bytes for %d sent, %d still reserved", sc.peak, sent, sc.used)
	}
}

func TestReadRefused(t *testing.T) {
	sc := &testScope{limit: 1 << 20}
	_, err := Read(bytes.NewReader(make([]byte, 4<<20)), 4<<20, sc)
	if !errors.Is(err, ErrMemory) {
		t.Fatalf("want ErrMemory, got %v", err)
	}
	if sc.used != 0 {
		t.Fatalf("%d bytes still reserved", sc.used)
	}
	if _, err := Read(bytes.NewReader(nil), 10, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("no scope, short input: %v", err)
	}
}

func TestScopeOf(t *testing.T) {
	if ScopeOf(bytes.NewReader(nil)) != nil {
		t.Fatal("a plain reader has a scope")
	}
}

// A refusal by a real resource manager says what the stream's peer holds,
// so that a log line shows which limit was reached: 300 KiB held by one
// stream, one 64 KiB step by the refused one.
func TestRefusalShowsPeerUsage(t *testing.T) {
	limits := rcmgr.PartialLimitConfig{
		PeerDefault: rcmgr.ResourceLimits{Memory: 1 << 20},
	}.Build(rcmgr.DefaultLimits.AutoScale())
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits))
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	p := peer.ID("some peer")
	held, err := rm.OpenStream(p, network.DirInbound)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Done()
	if err := held.ReserveMemory(300<<10, network.ReservationPriorityAlways); err != nil {
		t.Fatal(err)
	}
	s, err := rm.OpenStream(p, network.DirInbound)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Done()
	_, err = Read(bytes.NewReader(make([]byte, 1<<20)), 1<<20, s)
	if !errors.Is(err, ErrMemory) {
		t.Fatalf("want ErrMemory, got %v", err)
	}
	if want := "peer: 372736 B, 2+0 streams"; !strings.Contains(err.Error(), want) {
		t.Fatalf("the refusal does not say what the peer holds (%q): %v", want, err)
	}
}
