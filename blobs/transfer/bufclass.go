package transfer

import (
	"math/bits"
	"sync"
)

// Frame buffers come in size classes, so that a small chunk holds a small
// buffer: a 1 KiB chunk read into (or served from) a 4 MiB buffer made the
// receiver of 20,000 small files hold ~140 MiB of pooled buffers, and each
// chunk served reserved 4 MiB of the peer's memory. Class c holds a chunk
// of 2^(minBufShift+c) bytes with its frame and the page of slack
// chunkShift may use (bufSlack), so that a chunk of a power-of-two size — a
// 1 MiB file is one 1 MiB chunk — takes a buffer of about its size, not one
// of twice it. The last class is frameBufSize, a whole frame.
const (
	minBufShift = 14 // 16 KiB
	nBufClasses = 9  // 16 KiB … 4 MiB (frameBufSize), each plus bufSlack
	bufSlack    = frameHeader + chunkRespHead + pageSize
)

// bufClassSize is the size of buffers of class c.
func bufClassSize(c int) int {
	c = min(c, nBufClasses-1)
	return 1<<(minBufShift+c) + bufSlack
}

// bufClassOf is the smallest class whose buffers hold n bytes (the largest
// class for anything above its predecessors, even beyond frameBufSize:
// readFrame refuses frames that do not fit).
func bufClassOf(n int) int {
	if n <= 1<<minBufShift+bufSlack {
		return 0
	}
	c := bits.Len(uint(n-bufSlack-1)) - minBufShift
	return min(c, nBufClasses-1)
}

// bufPools pools buffers by class; a buffer's capacity is its class size.
type bufPools struct{ p [nBufClasses]sync.Pool }

// get returns a buffer of at least n bytes (its length is its class size).
func (b *bufPools) get(n int) *[]byte {
	c := bufClassOf(n)
	if v, ok := b.p[c].Get().(*[]byte); ok {
		return v
	}
	buf := make([]byte, bufClassSize(c))
	return &buf
}

// put returns a buffer from get to its pool.
func (b *bufPools) put(buf *[]byte) {
	c := bufClassOf(cap(*buf))
	if cap(*buf) != bufClassSize(c) {
		return // not one of ours: let it go
	}
	*buf = (*buf)[:cap(*buf)]
	b.p[c].Put(buf)
}
