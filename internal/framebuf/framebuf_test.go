package framebuf

import (
	"bytes"
	"errors"
	"io"
	"testing"
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
