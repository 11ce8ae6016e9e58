package tlsbatch

import (
	"bufio"
	"context"
	"net"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
)

// ID is the protocol ID: that of libp2p's TLS, whose wire format this is.
const ID = libp2ptls.ID

const (
	// readBufSize is the buffer reads of the TCP connection fill: 16 TLS
	// records.
	readBufSize = 256 << 10
	// maxBatch bounds the records gathered before they are written anyway:
	// above a 1 MiB yamux frame and its records' overhead, so that a frame
	// is one write.
	maxBatch = 2 << 20
)

// Transport is the security transport; construct it with New.
type Transport struct{ inner *libp2ptls.Transport }

var _ sec.SecureTransport = (*Transport)(nil)

// New has the signature libp2p.Security expects of a constructor.
func New(id protocol.ID, key crypto.PrivKey, muxers []tptu.StreamMuxer) (*Transport, error) {
	t, err := libp2ptls.New(id, key, muxers)
	if err != nil {
		return nil, err
	}
	return &Transport{inner: t}, nil
}

// ID is the protocol ID the transport was constructed with.
func (t *Transport) ID() protocol.ID { return t.inner.ID() }

// SecureInbound runs the TLS handshake as a server.
func (t *Transport) SecureInbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	bc := newBatchConn(insecure)
	c, err := t.inner.SecureInbound(ctx, bc, p)
	if err != nil {
		return nil, err
	}
	return &conn{SecureConn: c, bc: bc}, nil
}

// SecureOutbound runs the TLS handshake as a client.
func (t *Transport) SecureOutbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	bc := newBatchConn(insecure)
	c, err := t.inner.SecureOutbound(ctx, bc, p)
	if err != nil {
		return nil, err
	}
	return &conn{SecureConn: c, bc: bc}, nil
}

// conn is the secured connection: libp2p's, with writes bracketed so that
// their records are gathered.
type conn struct {
	sec.SecureConn
	bc      *batchConn
	wmu     sync.Mutex  // one gathered write at a time
	writing atomic.Bool // a Write is in progress
}

func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.writing.Store(true)
	defer c.writing.Store(false)
	if len(p) <= oneRecord {
		// One record, one write of the TCP connection already: nothing to
		// gather (a receiver's requests and window updates), so no batch
		// buffer is taken.
		return c.SecureConn.Write(p)
	}
	c.bc.hold(len(p))
	n, err := c.SecureConn.Write(p)
	if ferr := c.bc.release(); ferr != nil && err == nil {
		// The records were not all sent: the connection is broken and
		// nothing of p can be counted as written.
		return 0, ferr
	}
	return n, err
}

// Close closes the TLS connection (with a close_notify alert) unless a
// Write is in progress. Then, as crypto/tls does for a write of its own in
// flight, the TCP connection is closed at once, which also ends the write:
// an alert queued behind gathered records that the peer is not reading
// would hold Close for crypto/tls's 5 s alert deadline.
func (c *conn) Close() error {
	if c.writing.Load() {
		return c.bc.Conn.Close()
	}
	return c.SecureConn.Close()
}

// Batch buffers come in classes, so that a write of a few records does not
// hold a buffer sized for a whole frame: each class holds its size in
// records and batchSlack more at least, so that gathering never grows (and
// so reallocates and copies) a buffer.
var batchClasses = [...]int{128 << 10, 512 << 10, maxBatch}

const (
	batchSlack = 64 << 10
	batchCap   = maxBatch + batchSlack // the largest class's capacity
	// oneRecord is the most plaintext a TLS record holds: a write of no
	// more is sealed as one record, written by itself.
	oneRecord = 16 << 10
	// recordOverhead bounds what TLS 1.3 adds to a record (header, content
	// type, tag).
	recordOverhead = 32
)

var batchBufs [len(batchClasses)]sync.Pool

// batchClass is the smallest class that holds the records of a write of n
// bytes.
func batchClass(n int) int {
	sealed := n + (n/oneRecord+1)*recordOverhead
	for c, size := range batchClasses {
		if sealed <= size {
			return c
		}
	}
	return len(batchClasses) - 1
}

func getBatchBuf(class int) *[]byte {
	if v, ok := batchBufs[class].Get().(*[]byte); ok {
		return v
	}
	b := make([]byte, 0, batchClasses[class]+batchSlack)
	return &b
}

func putBatchBuf(class int, b *[]byte) {
	*b = (*b)[:0]
	batchBufs[class].Put(b)
}

// batchConn is the TCP connection beneath TLS.
type batchConn struct {
	net.Conn
	r *bufio.Reader

	mu      sync.Mutex
	holding bool
	class   int     // batch class of the write held
	buf     *[]byte // gathered bytes, of class class; nil when none
}

func newBatchConn(c net.Conn) *batchConn {
	return &batchConn{Conn: c, r: bufio.NewReaderSize(c, readBufSize)}
}

// Read is only ever called by the TLS reader, one call at a time.
func (b *batchConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.holding { // nothing is gathered outside a hold: release flushed it
		return b.Conn.Write(p)
	}
	if b.buf != nil && len(*b.buf)+len(p) > cap(*b.buf) {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	if len(p) > batchClasses[b.class]+batchSlack { // more than a buffer of its class holds
		return b.Conn.Write(p)
	}
	if b.buf == nil {
		b.buf = getBatchBuf(b.class)
	}
	*b.buf = append(*b.buf, p...)
	if len(*b.buf) >= batchClasses[b.class] {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// hold starts gathering the records of a write of n bytes.
func (b *batchConn) hold(n int) {
	b.mu.Lock()
	b.holding = true
	b.class = batchClass(n)
	b.mu.Unlock()
}

// release stops gathering and writes what was gathered.
func (b *batchConn) release() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holding = false
	return b.flushLocked()
}

func (b *batchConn) flushLocked() error {
	if b.buf == nil {
		return nil
	}
	buf := b.buf
	b.buf = nil
	_, err := b.Conn.Write(*buf)
	putBatchBuf(b.class, buf)
	return err
}
