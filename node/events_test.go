package node

import (
	"fmt"
	"testing"
)

// TestEventHubResume: a client resuming with the ID of an event still in
// the ring gets exactly the events after it; an ID of another run, from
// the future, malformed, or fallen out of the ring is not complete (the
// stream starts with a reset).
func TestEventHubResume(t *testing.T) {
	h := newEventHub()
	for i := range 10 {
		h.publish("change", "o", i)
	}
	after, ok := h.resume(h.id(7))
	if !ok || after != 7 {
		t.Fatalf("resume at 7: %d %v", after, ok)
	}
	evs, _ := h.since(after)
	if len(evs) != 3 || evs[0].Seq != 8 || string(evs[2].Data) != "9" {
		t.Fatalf("since 7: %+v", evs)
	}
	if after, ok := h.resume(""); !ok || after != 10 {
		t.Errorf("fresh stream starts at %d %v, want 10 true", after, ok)
	}
	for _, id := range []string{"otherrun-3", h.id(11), "garbage", h.run + "-x"} {
		if _, ok := h.resume(id); ok {
			t.Errorf("resume %q: complete, want a reset", id)
		}
	}
	// Overflow the ring: old IDs are no longer complete, new ones are.
	for i := range eventRing + 10 {
		h.publish("change", "o", i)
	}
	if _, ok := h.resume(h.id(5)); ok {
		t.Error("resume from an event dropped from the ring: complete")
	}
	last := h.seq
	if after, ok := h.resume(h.id(last - 3)); !ok || after != last-3 {
		t.Errorf("resume near the head: %d %v", after, ok)
	}
	evs, wake := h.since(last - 3)
	if len(evs) != 3 {
		t.Errorf("since head-3: %d events", len(evs))
	}
	select {
	case <-wake:
		t.Fatal("wake closed before a publish")
	default:
	}
	h.publish("news", "news", "x")
	select {
	case <-wake:
	default:
		t.Fatal("publish did not wake waiters")
	}
	if got := h.format(Event{Seq: 4, Type: "news", Data: []byte(`{}`)}); got != fmt.Sprintf("id: %s-4\nevent: news\ndata: {}\n\n", h.run) {
		t.Errorf("format: %q", got)
	}
}
