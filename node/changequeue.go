package node

import (
	"sync"

	"github.com/meshwork/meshwork/syncproto"
)

// objChange is a change of an object's items, queued for changeLoop.
type objChange struct {
	obj   syncproto.ObjectID
	items []syncproto.Item
}

// changeQueue is the part that owns the object changes waiting for
// changeLoop (live.go): its own lock and wake-up channel, nothing else.
// push never blocks, so the sync engine may call it under any lock.
type changeQueue struct {
	mu   sync.Mutex
	q    []objChange
	kick chan struct{} // one pending wake-up
}

func newChangeQueue() *changeQueue { return &changeQueue{kick: make(chan struct{}, 1)} }

// push appends a change and wakes the consumer.
func (c *changeQueue) push(ch objChange) {
	c.mu.Lock()
	c.q = append(c.q, ch)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// wake is readable when changes may be waiting.
func (c *changeQueue) wake() <-chan struct{} { return c.kick }

// take returns the waiting changes, in order, and empties the queue.
func (c *changeQueue) take() []objChange {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.q
	c.q = nil
	return q
}
