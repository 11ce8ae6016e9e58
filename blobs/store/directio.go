package store

import (
	"os"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Direct writes. A received chunk written through the page cache costs the
// receiver about as much CPU as decrypting and hashing it together (the
// kernel allocates, zeroes-or-fills and later writes back every page; a
// 1 GiB transfer's receiver profile was three-quarters pwrite). So a
// Partial writes the block-aligned middle of each chunk with O_DIRECT where
// the filesystem allows it: the device copies straight from our buffer.
// The unaligned head and tail of a chunk (less than a block each, shared
// with the neighbouring chunk) go through the page cache as before; the
// kernel keeps the two views coherent, and Commit's fsync makes both
// durable before the rename. Where O_DIRECT is refused (tmpfs, some
// network filesystems, other systems) every write is buffered.

// directAlign is the alignment of direct writes: buffer address, file
// offset and length. A page (at least 4 KiB) is a multiple of every common
// logical block size, and keeps a buffered edge and a direct middle out of
// the same page.
var directAlign = max(4096, os.Getpagesize())

// minDirect is the smallest chunk written directly; below it the page
// cache is cheaper than a second descriptor and a synchronous device write
// (a small file's one chunk is written buffered, then fsynced).
const minDirect = 128 << 10

// inPlaceWrites counts direct writes made from the caller's buffer, without
// a copy (read by tests).
var inPlaceWrites atomic.Int64

// alignedBufs holds block-aligned copy buffers for direct writes.
var alignedBufs sync.Pool

// alignedBuf returns a directAlign-aligned buffer of at least n bytes
// (from the pool when one is big enough) and the pool handle to return.
func alignedBuf(n int) (buf []byte, handle *[]byte) {
	if h, ok := alignedBufs.Get().(*[]byte); ok && len(*h) >= n {
		return (*h)[:n], h
	}
	size := max(n, 4<<20+directAlign)
	b := make([]byte, size+directAlign)
	off := int(uintptr(unsafe.Pointer(&b[0])) & uintptr(directAlign-1))
	if off != 0 {
		off = directAlign - off
	}
	b = b[off : off+size]
	return b[:n], &b
}

// aligned reports whether b starts on a directAlign boundary.
func aligned(b []byte) bool {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))&uintptr(directAlign-1) == 0
}

// writeChunkAt writes data at off in the partial file: through f, or,
// with direct set (the caller passes it for chunks of at least minDirect
// bytes), the aligned middle through direct and the rest through f. The
// middle is written from data itself when data sits at off's offset within
// a page (the address of data[i] ≡ off+i mod directAlign), else from an
// aligned copy. A direct write the device refuses (EINVAL: an alignment it
// does not accept) falls back to f for the whole chunk and reports
// refused, so the caller stops writing directly.
func writeChunkAt(f, direct *os.File, data []byte, off int64) (refused bool, err error) {
	if direct == nil {
		_, err := f.WriteAt(data, off)
		return false, err
	}
	a := int64(directAlign)
	start := (off + a - 1) &^ (a - 1)
	end := (off + int64(len(data))) &^ (a - 1)
	var derr error
	if mid := data[start-off : end-off]; aligned(mid) {
		// The caller placed data at its file offset within a page (the
		// transfer's receiver does): no copy.
		_, derr = direct.WriteAt(mid, start)
		inPlaceWrites.Add(1)
	} else {
		buf, h := alignedBuf(len(mid))
		copy(buf, mid)
		_, derr = direct.WriteAt(buf, start)
		alignedBufs.Put(h)
	}
	if derr != nil {
		_, err := f.WriteAt(data, off)
		return true, err
	}
	if start > off {
		if _, err := f.WriteAt(data[:start-off], off); err != nil {
			return false, err
		}
	}
	if end < off+int64(len(data)) {
		if _, err := f.WriteAt(data[end-off:], end); err != nil {
			return false, err
		}
	}
	return false, nil
}

// openDirect opens path for direct writes, or returns nil where the
// system or filesystem does not offer them (or disabled is set).
func openDirect(path string, disabled bool) *os.File {
	if disabled || oDirect == 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|oDirect, 0)
	if err != nil {
		return nil
	}
	return f
}
