package tunnel

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Authorizer says who belongs to the mesh. The daemon implements it with
// the membership log; a revoked device is not a member.
type Authorizer interface {
	IsMember(peer.ID) bool
}

// Service is an exposed local TCP service.
type Service struct {
	Name  string    // the name devices ask for
	Addr  string    // host:port the serving device connects to
	Allow []peer.ID // devices allowed to connect; empty means every member
}

// Event describes one tunnel connection that was opened, or refused, on the
// serving device.
type Event struct {
	Time    time.Time
	Peer    peer.ID      // the device that asked
	Remote  ma.Multiaddr // where its connection comes from
	Relayed bool         // whether that connection runs through a relay
	Service string       // the name asked for (may be empty for a malformed request)
	Status  Status       // StatusOK for an opened connection
	Reason  string       // why it was refused; empty when opened
}

// ServerOption configures a Server.
type ServerOption func(*Server)

// WithOnOpen sets a function called for every tunnel connection opened:
// after the service was dialled, before the device is told so. It runs on
// the stream's goroutine and should not block.
func WithOnOpen(fn func(Event)) ServerOption { return func(s *Server) { s.onOpen = fn } }

// WithOnRefuse sets a function called for every tunnel stream refused or
// failed before the connection was established, before the refusal is
// sent. It runs on the stream's goroutine and should not block.
func WithOnRefuse(fn func(Event)) ServerOption { return func(s *Server) { s.onRefuse = fn } }

// WithClock sets the clock used for event times.
func WithClock(now func() time.Time) ServerOption { return func(s *Server) { s.now = now } }

// WithDialTimeout bounds the connection to an exposed service's address
// (default 10 s).
func WithDialTimeout(d time.Duration) ServerOption { return func(s *Server) { s.dialTimeout = d } }

// Server serves exposed services to mesh members over ProtocolID.
type Server struct {
	h           host.Host
	auth        Authorizer
	log         *slog.Logger
	onOpen      func(Event)
	onRefuse    func(Event)
	now         func() time.Time
	dialTimeout time.Duration

	ctx    context.Context // cancelled by Close; bounds dials and handshakes
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	services map[string]Service
	links    map[*link]serverLink

	conns    atomic.Int64
	refused  atomic.Int64
	bytesIn  atomic.Int64 // from devices to services
	bytesOut atomic.Int64 // from services to devices
}

type serverLink struct {
	peer    peer.ID
	service string
}

// NewServer registers the tunnel protocol on h. Nothing is reachable until
// Expose is called.
func NewServer(h host.Host, auth Authorizer, logger *slog.Logger, opts ...ServerOption) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		h:           h,
		auth:        auth,
		log:         logger,
		now:         time.Now,
		dialTimeout: 10 * time.Second,
		ctx:         ctx,
		cancel:      cancel,
		services:    make(map[string]Service),
		links:       make(map[*link]serverLink),
	}
	for _, o := range opts {
		o(s)
	}
	h.SetStreamHandler(ProtocolID, s.handle)
	return s
}

// Expose publishes the TCP service at addr under name, to the devices in
// allow or, if allow is empty, to every member. It replaces a service of the
// same name (connections already open stay). Nothing is persisted.
func (s *Server) Expose(name, addr string, allow []peer.ID) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("expose: %w", err)
	}
	if err := checkServiceAddr(addr); err != nil {
		return fmt.Errorf("expose %s: %w", name, err)
	}
	for _, p := range allow {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("expose %s: allow %q: %w", name, p, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("expose %s: %w", name, ErrClosed)
	}
	s.services[name] = Service{Name: name, Addr: addr, Allow: slices.Clone(allow)}
	s.log.Info("tunnel service exposed", "service", name, "addr", addr, "allow", len(allow))
	return nil
}

// Unexpose withdraws the service name and closes its open connections.
func (s *Server) Unexpose(name string) error {
	s.mu.Lock()
	if _, ok := s.services[name]; !ok {
		s.mu.Unlock()
		return fmt.Errorf("unexpose %q: %w", name, ErrNotExposed)
	}
	delete(s.services, name)
	var drop []*link
	for l, sl := range s.links {
		if sl.service == name {
			drop = append(drop, l)
		}
	}
	s.mu.Unlock()
	for _, l := range drop {
		l.abort()
	}
	s.log.Info("tunnel service unexposed", "service", name, "closed", len(drop))
	return nil
}

// Services lists the exposed services, sorted by name.
func (s *Server) Services() []Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Service, 0, len(s.services))
	for _, svc := range s.services {
		svc.Allow = slices.Clone(svc.Allow)
		out = append(out, svc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// DisconnectPeer closes every open tunnel connection of device p, for
// example when it is revoked (its new streams are refused by IsMember). It
// returns how many were closed.
func (s *Server) DisconnectPeer(p peer.ID) int {
	s.mu.Lock()
	var drop []*link
	for l, sl := range s.links {
		if sl.peer == p {
			drop = append(drop, l)
		}
	}
	s.mu.Unlock()
	for _, l := range drop {
		l.abort()
	}
	return len(drop)
}

// ServerStats are a Server's counters since it started.
type ServerStats struct {
	Conns    int64 // connections opened
	Active   int   // connections open now
	Refused  int64 // streams refused or failed before the service was reached
	BytesIn  int64 // bytes from devices to services
	BytesOut int64 // bytes from services to devices
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	active := len(s.links)
	s.mu.Unlock()
	return ServerStats{
		Conns: s.conns.Load(), Active: active, Refused: s.refused.Load(),
		BytesIn: s.bytesIn.Load(), BytesOut: s.bytesOut.Load(),
	}
}

// Close unregisters the protocol, closes every open tunnel connection and
// waits for them. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	s.h.RemoveStreamHandler(ProtocolID)
	s.cancel()
	drop := make([]*link, 0, len(s.links))
	for l := range s.links {
		drop = append(drop, l)
	}
	s.mu.Unlock()
	for _, l := range drop {
		l.abort()
	}
	s.wg.Wait()
	return nil
}

// handle serves one stream. Order matters: membership is checked before a
// byte is read, the allow list before the service is dialled.
func (s *Server) handle(st network.Stream) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = st.Reset()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	// Close ends a handshake or dial in progress.
	stop := context.AfterFunc(s.ctx, func() { _ = st.Reset() })
	defer stop()

	c := st.Conn()
	ev := Event{Time: s.now(), Peer: c.RemotePeer(), Remote: c.RemoteMultiaddr(), Relayed: isRelayed(c)}
	log := s.log.With("peer", ev.Peer, "remote", ev.Remote, "relayed", ev.Relayed)
	defer recoverStream(log, st, "serve")

	if !s.auth.IsMember(ev.Peer) {
		s.refuse(st, ev, log, StatusRefused, "not a member")
		return
	}
	_ = st.SetDeadline(time.Now().Add(handshakeTimeout))
	version, name, err := readRequest(st)
	if err != nil {
		if version != 0 && version != requestVersion {
			s.refuse(st, ev, log, StatusBadRequest, fmt.Sprintf("unsupported request version %d", version))
		} else {
			s.refuse(st, ev, log, StatusBadRequest, "malformed request")
		}
		log.Debug("tunnel request", "err", err)
		return
	}
	ev.Service = name
	log = log.With("service", name)

	s.mu.Lock()
	svc, ok := s.services[name]
	s.mu.Unlock()
	if !ok {
		s.refuse(st, ev, log, StatusNotFound, "no service "+strconv.Quote(name))
		return
	}
	if len(svc.Allow) > 0 && !slices.Contains(svc.Allow, ev.Peer) {
		s.refuse(st, ev, log, StatusRefused, "not allowed")
		return
	}
	// Membership may have been revoked while the request was read.
	if !s.auth.IsMember(ev.Peer) {
		s.refuse(st, ev, log, StatusRefused, "not a member")
		return
	}

	dctx, cancel := context.WithTimeout(s.ctx, s.dialTimeout)
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", svc.Addr)
	cancel()
	if err != nil {
		log.Warn("tunnel service unreachable", "addr", svc.Addr, "err", err)
		s.refuse(st, ev, log, StatusUnavailable, "cannot connect to the service")
		return
	}
	tcp := nc.(*net.TCPConn)
	s.conns.Add(1)
	ev.Status = StatusOK
	log.Info("tunnel connection opened", "addr", svc.Addr)
	if s.onOpen != nil {
		s.onOpen(ev) // before the reply: the event is out before the client can act
	}
	if _, err := st.Write(appendReply(nil, StatusOK, "")); err != nil {
		log.Debug("tunnel reply", "err", err)
		_ = st.Reset()
		_ = tcp.Close()
		return
	}
	_ = st.SetDeadline(time.Time{})

	l := newLink(tcp, st)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.abort()
		return
	}
	s.links[l] = serverLink{peer: ev.Peer, service: name}
	s.mu.Unlock()

	err = l.run(&s.wg, &s.bytesOut, &s.bytesIn)

	s.mu.Lock()
	delete(s.links, l)
	s.mu.Unlock()
	if err != nil && !isClosedErr(err) {
		log.Info("tunnel connection aborted", "err", err)
	} else {
		log.Debug("tunnel connection closed", "err", err)
	}
}

// refuse answers a stream that will not reach the service: the reply, then
// a close (a reset could overtake the reply on the wire).
func (s *Server) refuse(st network.Stream, ev Event, log *slog.Logger, status Status, reason string) {
	s.refused.Add(1)
	ev.Status, ev.Reason = status, reason
	log.Info("tunnel stream refused", "status", status, "reason", reason)
	if s.onRefuse != nil {
		s.onRefuse(ev)
	}
	_ = st.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := st.Write(appendReply(nil, status, reason)); err != nil {
		_ = st.Reset()
	} else {
		_ = st.Close()
	}
}

// checkServiceAddr accepts host:port with a non-empty host (an IP address
// or a name) and a numeric port 1..65535.
func checkServiceAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w: %w", addr, ErrInvalidAddr, err)
	}
	if host == "" {
		return fmt.Errorf("address %q: %w: empty host", addr, ErrInvalidAddr)
	}
	if _, err := netip.ParseAddr(host); err != nil && !validHostname(host) {
		return fmt.Errorf("address %q: %w: bad host", addr, ErrInvalidAddr)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return fmt.Errorf("address %q: %w: port must be 1 to 65535", addr, ErrInvalidAddr)
	}
	return nil
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
