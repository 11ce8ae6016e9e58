package transfer

import (
	"bufio"
	"io"
	"sync"
)

// Pooled stream buffers. A stream's bufio reader and writer are 64–256 KiB
// each; allocated per stream, they were zeroed anew for every small file
// fetched or served (some 6 GB of allocation on each side for 10,000 small
// files). A buffer goes back to its pool only once its stream's goroutines
// are done with it.

type rwPool struct {
	size    int
	readers sync.Pool
	writers sync.Pool
}

var (
	pool64K = &rwPool{size: 64 << 10}
	poolIO  = &rwPool{size: ioBufSize}
)

func (p *rwPool) reader(r io.Reader) *bufio.Reader {
	if br, ok := p.readers.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, p.size)
}

func (p *rwPool) putReader(br *bufio.Reader) {
	br.Reset(nil)
	p.readers.Put(br)
}

func (p *rwPool) writer(w io.Writer) *bufio.Writer {
	if bw, ok := p.writers.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, p.size)
}

func (p *rwPool) putWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	p.writers.Put(bw)
}
