package node

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Live events for GET /api/v1/events (Server-Sent Events, node/API.md).
//
// The hub keeps the last eventRing events of this daemon run in memory,
// each with an ID "RUN-SEQ": RUN is random per run, SEQ counts up. A
// client that reconnects with Last-Event-ID gets every event after it; if
// RUN is another run's or SEQ fell out of the ring, it gets a "reset"
// event first (reload everything), so nothing is ever silently missed.
// Publishers never block: they append to the ring and wake the waiters.

const eventRing = 4096

// Event is one live event.
type Event struct {
	Seq    uint64
	Type   string          // change, devices, folder, news, presence, reset
	Object string          // the object's name, for change events
	Data   json.RawMessage // JSON
}

type eventHub struct {
	run  string
	subs atomic.Int64 // open event streams
	mu   sync.Mutex
	seq  uint64
	ring []Event // ring[i] has Seq == first+i
	wake chan struct{}
}

func newEventHub() *eventHub {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &eventHub{run: hex.EncodeToString(b[:]), wake: make(chan struct{})}
}

// publish appends an event; data is marshalled to JSON.
func (h *eventHub) publish(typ, object string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		b = []byte("null")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	h.ring = append(h.ring, Event{Seq: h.seq, Type: typ, Object: object, Data: b})
	if len(h.ring) > eventRing {
		h.ring = append(h.ring[:0:0], h.ring[len(h.ring)-eventRing/2:]...)
	}
	close(h.wake)
	h.wake = make(chan struct{})
}

// id is an event's SSE ID.
func (h *eventHub) id(seq uint64) string { return h.run + "-" + strconv.FormatUint(seq, 10) }

// resume parses a Last-Event-ID: the sequence number to continue after,
// and whether the client missed nothing (same run, still in the ring).
func (h *eventHub) resume(lastID string) (after uint64, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if lastID == "" {
		return h.seq, true
	}
	run, seqS, found := strings.Cut(lastID, "-")
	seq, err := strconv.ParseUint(seqS, 10, 64)
	if !found || err != nil || run != h.run || seq > h.seq {
		return h.seq, false
	}
	if len(h.ring) > 0 && seq+1 < h.ring[0].Seq {
		return h.seq, false
	}
	return seq, true
}

// since returns the events after seq and a channel closed at the next
// publish.
func (h *eventHub) since(seq uint64) ([]Event, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Event
	if len(h.ring) > 0 {
		first := h.ring[0].Seq
		i := 0
		if seq+1 > first {
			i = int(seq + 1 - first)
		}
		if i < len(h.ring) {
			out = append(out, h.ring[i:]...)
		}
	}
	return out, h.wake
}

// format writes e as an SSE frame.
func (h *eventHub) format(e Event) string {
	return fmt.Sprintf("id: %s\nevent: %s\ndata: %s\n\n", h.id(e.Seq), e.Type, e.Data)
}
