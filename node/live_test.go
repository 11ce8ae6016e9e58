package node

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestPresenceLastSeen(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := newPresence(start)
	if got := p.startedAt(); !got.Equal(start) {
		t.Fatalf("startedAt() = %v, want %v", got, start)
	}
	a, b := peer.ID("a"), peer.ID("b")
	if _, ok := p.lastSeen(a); ok {
		t.Fatalf("lastSeen(%q) before any event: ok, want not seen", a)
	}
	t1, t2 := start.Add(time.Minute), start.Add(2*time.Minute)
	p.seen(a, t1)
	p.seen(b, t1)
	p.seen(a, t2) // a later event replaces the earlier
	for _, c := range []struct {
		id   peer.ID
		want time.Time
	}{{a, t2}, {b, t1}} {
		if got, ok := p.lastSeen(c.id); !ok || !got.Equal(c.want) {
			t.Errorf("lastSeen(%q) = %v, %v; want %v, true", c.id, got, ok, c.want)
		}
	}
}

func TestPresenceViewing(t *testing.T) {
	p := newPresence(time.Now())
	if v := p.viewing(); v == nil || len(v) != 0 {
		t.Fatalf("viewing() of a new presence = %#v, want an empty, non-nil list", v)
	}
	// Two streams view docs, one photos; concurrently, for -race.
	var wg sync.WaitGroup
	for _, f := range []string{"photos", "docs", "docs"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.view(f)
			p.seen(peer.ID(f), time.Now())
		}()
	}
	wg.Wait()
	if v, want := p.viewing(), []string{"docs", "photos"}; !slices.Equal(v, want) {
		t.Fatalf("viewing() = %q, want %q", v, want)
	}
	p.unview("docs")
	if v, want := p.viewing(), []string{"docs", "photos"}; !slices.Equal(v, want) {
		t.Fatalf("viewing() after one of two docs streams closed = %q, want %q", v, want)
	}
	p.unview("docs")
	p.unview("photos")
	if v := p.viewing(); len(v) != 0 {
		t.Fatalf("viewing() after every stream closed = %q, want none", v)
	}
}

func TestPresenceWakesMerge(t *testing.T) {
	p := newPresence(time.Now())
	select {
	case <-p.woken():
		t.Fatal("woken before any wake")
	default:
	}
	p.wake()
	p.wake() // must not block: merges with the first
	select {
	case <-p.woken():
	default:
		t.Fatal("not woken after wake")
	}
	select {
	case <-p.woken():
		t.Fatal("woken twice for two wakes before the first was taken, want them merged")
	default:
	}
}
