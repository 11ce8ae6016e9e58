package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// DefaultLocalAddr is where Listen listens when no address is given: a port
// chosen by the system on the IPv4 loopback.
const DefaultLocalAddr = "127.0.0.1:0"

// Client keeps the local ends of tunnels: listeners whose connections are
// forwarded to a service on another device.
type Client struct {
	h   host.Host
	log *slog.Logger

	mu       sync.Mutex
	closed   bool
	forwards map[*Forward]struct{}
}

// NewClient returns a Client that opens streams from h.
func NewClient(h host.Host, logger *slog.Logger) *Client {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{h: h, log: logger, forwards: make(map[*Forward]struct{})}
}

// ListenOption configures Listen.
type ListenOption func(*listenConfig)

type listenConfig struct{ allowNonLoopback bool }

// AllowNonLoopback lets Listen listen on an address other than a loopback
// one. Anyone who can reach that address can then use the tunnel with this
// device's identity.
func AllowNonLoopback() ListenOption { return func(c *listenConfig) { c.allowNonLoopback = true } }

// Listen listens on localAddr (DefaultLocalAddr if empty; only loopback
// addresses unless AllowNonLoopback) and forwards each accepted connection
// as a new tunnel connection to service on device. The Forward runs until
// ctx ends or it is closed. A connection the device refuses is closed.
func (c *Client) Listen(ctx context.Context, device peer.ID, service, localAddr string, opts ...ListenOption) (*Forward, error) {
	var cfg listenConfig
	for _, o := range opts {
		o(&cfg)
	}
	if err := device.Validate(); err != nil {
		return nil, fmt.Errorf("tunnel listen: device %q: %w", device, err)
	}
	if err := checkName(service); err != nil {
		return nil, fmt.Errorf("tunnel listen: %w", err)
	}
	if localAddr == "" {
		localAddr = DefaultLocalAddr
	}
	if err := checkLocalAddr(localAddr, cfg.allowNonLoopback); err != nil {
		return nil, fmt.Errorf("tunnel listen %s: %w", localAddr, err)
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("tunnel listen %s: %w", localAddr, ErrClosed)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", localAddr)
	if err != nil {
		return nil, fmt.Errorf("tunnel listen %s: %w", localAddr, err)
	}
	fctx, cancel := context.WithCancel(ctx)
	f := &Forward{
		c:       c,
		device:  device,
		service: service,
		ln:      ln.(*net.TCPListener),
		ctx:     fctx,
		cancel:  cancel,
		links:   make(map[*link]struct{}),
		done:    make(chan struct{}),
		log:     c.log.With("device", device, "service", service, "local", ln.Addr().String()),
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cancel()
		_ = ln.Close()
		return nil, fmt.Errorf("tunnel listen %s: %w", localAddr, ErrClosed)
	}
	c.forwards[f] = struct{}{}
	c.mu.Unlock()

	f.wg.Add(2)
	go f.acceptLoop()
	go func() {
		defer f.wg.Done()
		<-fctx.Done()
		f.shutdown()
	}()
	go func() {
		f.wg.Wait()
		c.mu.Lock()
		delete(c.forwards, f)
		c.mu.Unlock()
		close(f.done)
	}()
	f.log.Info("tunnel listening")
	return f, nil
}

// Forwards lists the open forwards.
func (c *Client) Forwards() []*Forward {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Forward, 0, len(c.forwards))
	for f := range c.forwards {
		out = append(out, f)
	}
	return out
}

// Close closes every forward and waits for them. It is safe to call more
// than once.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	fs := make([]*Forward, 0, len(c.forwards))
	for f := range c.forwards {
		fs = append(fs, f)
	}
	c.mu.Unlock()
	for _, f := range fs {
		_ = f.Close()
	}
	return nil
}

// Forward is a local listener whose connections are tunnelled to a service
// on a device.
type Forward struct {
	c       *Client
	device  peer.ID
	service string
	ln      *net.TCPListener
	ctx     context.Context
	cancel  context.CancelFunc
	log     *slog.Logger
	wg      sync.WaitGroup
	done    chan struct{}

	mu    sync.Mutex
	links map[*link]struct{}

	conns, failed, bytesOut, bytesIn atomic.Int64
	direct, relayed                  atomic.Int64
}

// Addr returns the local address connections are accepted on.
func (f *Forward) Addr() net.Addr { return f.ln.Addr() }

// Device returns the serving device.
func (f *Forward) Device() peer.ID { return f.device }

// Service returns the service name.
func (f *Forward) Service() string { return f.service }

// Done is closed when the forward has stopped and all its connections are closed.
func (f *Forward) Done() <-chan struct{} { return f.done }

// ForwardStats are a Forward's counters.
type ForwardStats struct {
	Conns    int64 // local connections accepted
	Active   int   // connections open now
	Failed   int64 // connections the tunnel could not be opened for
	Direct   int64 // tunnel connections opened over a direct connection
	Relayed  int64 // tunnel connections opened through a relay
	BytesOut int64 // bytes sent to the service
	BytesIn  int64 // bytes received from the service
}

// Stats returns the forward's counters.
func (f *Forward) Stats() ForwardStats {
	f.mu.Lock()
	active := len(f.links)
	f.mu.Unlock()
	return ForwardStats{
		Conns: f.conns.Load(), Active: active, Failed: f.failed.Load(),
		Direct: f.direct.Load(), Relayed: f.relayed.Load(),
		BytesOut: f.bytesOut.Load(), BytesIn: f.bytesIn.Load(),
	}
}

// Close stops listening, closes the open connections and waits for them.
// It is safe to call more than once.
func (f *Forward) Close() error {
	f.cancel()
	<-f.done
	return nil
}

// shutdown runs once, when f.ctx ends.
func (f *Forward) shutdown() {
	_ = f.ln.Close()
	f.mu.Lock()
	ls := make([]*link, 0, len(f.links))
	for l := range f.links {
		ls = append(ls, l)
	}
	f.links = nil // no more links; serve aborts its own
	f.mu.Unlock()
	for _, l := range ls {
		l.abort()
	}
	f.log.Info("tunnel closed")
}

func (f *Forward) acceptLoop() {
	defer f.wg.Done()
	for {
		nc, err := f.ln.AcceptTCP()
		if err != nil {
			if f.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				f.log.Warn("tunnel accept", "err", err)
				f.cancel()
			}
			return
		}
		f.conns.Add(1)
		f.wg.Add(1)
		go f.serve(nc)
	}
}

func (f *Forward) serve(tcp *net.TCPConn) {
	defer f.wg.Done()
	defer func() {
		if v := recover(); v != nil {
			f.log.Error("panic in tunnel connection; closed", "peer", f.device, "proto", ProtocolID,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			_ = tcp.Close()
		}
	}()
	conn, err := Dial(f.ctx, f.c.h, f.device, f.service)
	if err != nil {
		f.failed.Add(1)
		f.log.Warn("tunnel connection failed", "client", tcp.RemoteAddr().String(), "err", err)
		_ = tcp.Close()
		return
	}
	if conn.Relayed() {
		f.relayed.Add(1)
	} else {
		f.direct.Add(1)
	}
	l := newLink(tcp, conn.Stream)
	f.mu.Lock()
	if f.links == nil {
		f.mu.Unlock()
		l.abort()
		return
	}
	f.links[l] = struct{}{}
	f.mu.Unlock()

	err = l.run(&f.wg, &f.bytesOut, &f.bytesIn)

	f.mu.Lock()
	if f.links != nil {
		delete(f.links, l)
	}
	f.mu.Unlock()
	if err != nil && !isClosedErr(err) {
		f.log.Info("tunnel connection aborted", "client", tcp.RemoteAddr().String(), "err", err)
	}
}

// checkLocalAddr accepts host:port where host is a loopback IP or
// "localhost", or with allowAny, any IP or empty host.
func checkLocalAddr(addr string, allowAny bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidAddr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%w: port %q", ErrInvalidAddr, port)
	}
	if host == "localhost" {
		return nil
	}
	if host == "" {
		if allowAny {
			return nil
		}
		return fmt.Errorf("%w: empty host listens on every interface; give a loopback address", ErrInvalidAddr)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: host %q is not an IP address", ErrInvalidAddr, host)
	}
	if !ip.IsLoopback() && !allowAny {
		return fmt.Errorf("%w: %s is not a loopback address", ErrInvalidAddr, host)
	}
	return nil
}
