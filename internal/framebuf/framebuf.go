// Package framebuf reads the payload of a length-prefixed frame into a
// buffer that grows as its bytes arrive, with the memory reserved in a
// libp2p resource manager scope.
//
// A frame header is a claim, not a fact: a peer that announces 8 MiB and
// sends one byte must cost one chunk, not 8 MiB. Read therefore starts with
// at most Step bytes and doubles the buffer as it fills, up to the
// declared length. Every growth is reserved first in the scope (the
// stream's, so that the resource manager's stream, protocol, peer and
// system limits all apply), at low priority: frames are the first thing
// refused when memory is short, before the muxers' windows. A refused
// reservation fails the read with ErrMemory; the caller resets the stream.
package framebuf

import (
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/network"
)

// Step is the first buffer size: a frame costs at most this much before
// its bytes arrive.
const Step = 64 << 10

// Priority is the resource manager priority of frame reservations: low,
// so that a scope holds at most 40 % of its memory limit in frames.
const Priority = network.ReservationPriorityLow

// ErrMemory reports that the resource manager refused the memory of a frame.
var ErrMemory = errors.New("frame memory refused by the resource manager")

// Scope is what Read needs of a resource scope (network.StreamScope has it).
type Scope interface {
	ReserveMemory(size int, prio uint8) error
	ReleaseMemory(size int)
}

// ScopeOf returns the stream scope of x when x is a stream
// (interface{ Scope() network.StreamScope }), else nil: no accounting.
func ScopeOf(x any) Scope {
	if s, ok := x.(interface{ Scope() network.StreamScope }); ok {
		if sc := s.Scope(); sc != nil {
			return sc
		}
	}
	return nil
}

// Buffer is the payload of a frame and the memory it holds in its scope.
type Buffer struct {
	B        []byte
	scope    Scope
	reserved int
}

// Release returns the buffer's memory to its scope. The payload must not
// be used afterwards (a later frame may take its place). It is safe to
// call twice and on a zero Buffer.
func (b *Buffer) Release() {
	if b.scope != nil && b.reserved > 0 {
		b.scope.ReleaseMemory(b.reserved)
	}
	b.B, b.reserved = nil, 0
}

// Read reads exactly n bytes from r into a new buffer that grows as the
// bytes arrive, reserving its capacity in scope (nil: no accounting). On
// error nothing stays reserved. A short read is io.ErrUnexpectedEOF.
func Read(r io.Reader, n int, scope Scope) (Buffer, error) {
	b := Buffer{scope: scope}
	if n < 0 {
		return b, fmt.Errorf("read frame payload: negative length %d", n)
	}
	grow := func(size int) error {
		if scope != nil {
			if err := scope.ReserveMemory(size-cap(b.B), Priority); err != nil {
				return fmt.Errorf("read frame payload of %d bytes: %d bytes held: %w: %w", n, cap(b.B), ErrMemory, err)
			}
			b.reserved += size - cap(b.B)
		}
		nb := make([]byte, len(b.B), size)
		copy(nb, b.B)
		b.B = nb
		return nil
	}
	if err := grow(min(n, Step)); err != nil {
		return Buffer{}, err
	}
	for len(b.B) < n {
		if len(b.B) == cap(b.B) {
			if err := grow(min(n, 2*cap(b.B))); err != nil {
				b.Release()
				return Buffer{}, err
			}
		}
		k, err := r.Read(b.B[len(b.B):cap(b.B)])
		b.B = b.B[:len(b.B)+k]
		if err != nil && len(b.B) < n {
			got := len(b.B)
			b.Release()
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Buffer{}, fmt.Errorf("read frame payload: %d of %d bytes: %w", got, n, err)
		}
	}
	return b, nil
}
