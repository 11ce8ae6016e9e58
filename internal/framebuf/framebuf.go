// Package framebuf reads the payload of a length-prefixed frame as its
// bytes arrive, with the memory reserved in a libp2p resource manager scope.
//
// A frame header is a claim, not a fact: a peer that announces 8 MiB and
// sends one byte must cost one chunk, not 8 MiB. Read therefore reads a
// long payload into chunks of Step bytes, reserving each in the scope
// before it is filled (the stream's scope, so that the resource manager's
// stream, protocol, peer and system limits all apply), at low priority:
// frames are the first thing refused when memory is short, before the
// muxers' windows. A refused reservation fails the read with ErrMemory;
// the caller resets the stream. Once the last byte is in, the chunks are
// copied into one buffer of the payload's size (for a moment the frame
// takes twice its size; the reservation counts it once) and go back to a
// pool, so that the chunks of frames that never complete (a hostile peer's
// half-sent frames) are reused rather than left as garbage: the memory a
// peer can make this process allocate is about what the limits reserve.
package framebuf

import (
	"errors"
	"fmt"
	"io"
	"sync"

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

// chunks holds the chunks of a long payload.
var chunks = sync.Pool{New: func() any { b := make([]byte, Step); return &b }}

// Read reads exactly n bytes from r as they arrive, reserving them in
// scope (nil: no accounting). On error nothing stays reserved. A short
// read is io.ErrUnexpectedEOF.
func Read(r io.Reader, n int, scope Scope) (Buffer, error) {
	b := Buffer{scope: scope}
	if n < 0 {
		return b, fmt.Errorf("read frame payload: negative length %d", n)
	}
	reserve := func(k int) error {
		if scope != nil {
			if err := scope.ReserveMemory(k, Priority); err != nil {
				return fmt.Errorf("read frame payload of %d bytes: %d bytes held%s: %w: %w", n, b.reserved, usage(scope), ErrMemory, err)
			}
			b.reserved += k
		}
		return nil
	}
	fail := func(got int, err error) (Buffer, error) {
		b.Release()
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if errors.Is(err, ErrMemory) {
			return Buffer{}, err
		}
		return Buffer{}, fmt.Errorf("read frame payload: %d of %d bytes: %w", got, n, err)
	}
	if n <= Step {
		if err := reserve(n); err != nil {
			return fail(0, err)
		}
		b.B = make([]byte, n)
		if k, err := io.ReadFull(r, b.B); err != nil {
			return fail(k, err)
		}
		return b, nil
	}
	var parts []*[]byte
	defer func() {
		for _, c := range parts {
			chunks.Put(c)
		}
	}()
	for got := 0; got < n; {
		k := min(Step, n-got)
		if err := reserve(k); err != nil {
			return fail(got, err)
		}
		c := chunks.Get().(*[]byte)
		parts = append(parts, c)
		m, err := io.ReadFull(r, (*c)[:k])
		got += m
		if err != nil {
			return fail(got, err)
		}
	}
	b.B = make([]byte, 0, n)
	for i, c := range parts {
		b.B = append(b.B, (*c)[:min(Step, n-i*Step)]...)
	}
	return b, nil
}

// usage describes what the scope and its peer's scope hold, when the scope
// says (rcmgr's stream scopes do), so that a refusal shows which limit was
// reached and by what: a peer's memory held by its other streams, say.
func usage(scope Scope) string {
	st, ok := scope.(interface{ Stat() network.ScopeStat })
	if !ok {
		return ""
	}
	s := st.Stat()
	out := fmt.Sprintf(" (stream: %d B", s.Memory)
	if ps, ok := scope.(interface{ PeerScope() network.PeerScope }); ok && ps.PeerScope() != nil {
		p := ps.PeerScope().Stat()
		out += fmt.Sprintf("; peer: %d B, %d+%d streams, %d+%d conns (in+out)", p.Memory, p.NumStreamsInbound, p.NumStreamsOutbound, p.NumConnsInbound, p.NumConnsOutbound)
	}
	return out + ")"
}
