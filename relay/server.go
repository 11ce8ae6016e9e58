package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
)

// UserAgent is the identify user agent of a relay.
const UserAgent = "meshwork-relay"

// authService names the auth protocol in libp2p's resource manager.
const authService = "meshwork.relay-auth"

// authTimeout bounds one membership proof exchange, both sides.
const authTimeout = 30 * time.Second

// authReadersPerDecoder sets how many auth requests may be read at once per
// decoding slot.
const authReadersPerDecoder = 8

// shutdownTimeout bounds the graceful stop of the metrics HTTP server.
const shutdownTimeout = 5 * time.Second

// ErrClosed is returned by Run on a Server that was closed.
var ErrClosed = errors.New("relay server closed")

// Server is a running relay: a libp2p host with the circuit relay v2
// service (behind the ACL), the membership proof protocol, identify,
// AutoNAT (v1 and v2) service and a Meshwork DHT server.
type Server struct {
	cfg    Config
	logger *slog.Logger
	host   host.Host
	relay  *relayv2.Relay
	dht    *dht.IpfsDHT
	// dhtPeers are the DHT servers the relay was configured with (other
	// relays): allowed on the DHT besides the ACL (dhtacl.go).
	dhtPeers map[peer.ID]struct{}
	access   *access
	metrics  *metrics
	reg      *prometheus.Registry
	notifee  network.Notifiee

	metricsLn net.Listener // nil when metrics are off

	authSem     chan struct{} // decoders at once: MaxConcurrentAuth
	authReaders chan struct{} // requests being read at once

	hmu      sync.Mutex
	stopping bool           // guarded by hmu; no new auth handlers once set
	handlers sync.WaitGroup // in-flight auth handlers

	mu      sync.Mutex
	running bool // guarded by mu
	closing chan struct{}
	runDone chan struct{}

	closeOnce    sync.Once
	shutdownOnce sync.Once
	shutdownErr  error
}

// New builds a relay from cfg and starts listening. The relay serves peers
// from then on; Run adds the metrics endpoint and waits for shutdown.
func New(cfg Config, logger *slog.Logger) (_ *Server, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:         cfg,
		logger:      logger,
		reg:         prometheus.NewRegistry(),
		authSem:     make(chan struct{}, cfg.Limits.MaxConcurrentAuth),
		authReaders: make(chan struct{}, authReadersPerDecoder*cfg.Limits.MaxConcurrentAuth),
		closing:     make(chan struct{}),
		runDone:     make(chan struct{}),
	}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = newMetrics(s.reg)
	s.access = newAccess(&cfg, logger, s.metrics)

	// Everything built from here on is released by shutdown on failure.
	defer func() {
		if err != nil {
			_ = s.shutdown()
		}
	}()

	if cfg.MetricsAddr != "" {
		s.metricsLn, err = net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return nil, fmt.Errorf("listen for metrics on %s: %w", cfg.MetricsAddr, err)
		}
	}
	if err = s.startHost(); err != nil {
		return nil, err
	}
	if err = s.startRelay(); err != nil {
		return nil, err
	}
	if err = s.startDHT(); err != nil {
		return nil, err
	}
	s.host.SetStreamHandler(AuthProtocolID, s.handleAuth)
	return s, nil
}

// startHost starts the libp2p host and has the ACL watch its connections.
//
// On failure it closes the resource and connection managers itself: no
// host owns them yet.
func (s *Server) startHost() error {
	cfg := &s.cfg
	rm, err := newResourceManager(cfg)
	if err != nil {
		return err
	}
	cm, err := connmgr.NewConnManager(2*cfg.Limits.MaxReservations, 3*cfg.Limits.MaxReservations,
		connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		_ = rm.Close()
		return fmt.Errorf("relay connection manager: %w", err)
	}
	h, err := libp2p.New(s.hostOptions(rm, cm)...)
	if err != nil {
		_ = cm.Close()
		_ = rm.Close()
		return fmt.Errorf("start relay host on %v: %w", cfg.ListenAddrs, err)
	}
	s.host = h
	s.access.net = h.Network()
	s.notifee = s.access.notifiee()
	h.Network().Notify(s.notifee)
	return nil
}

// hostOptions are the relay host's libp2p options, with managers rm and cm.
func (s *Server) hostOptions(rm network.ResourceManager, cm *connmgr.BasicConnMgr) []libp2p.Option {
	cfg := &s.cfg
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Key),
		libp2p.ListenAddrs(cfg.ListenAddrs...),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.UserAgent(UserAgent),
		libp2p.PrometheusRegisterer(s.reg),
		// A relay is publicly reachable by definition; it answers AutoNAT
		// (v1 and v2) so that nodes learn whether their addresses are.
		libp2p.ForceReachabilityPublic(),
		libp2p.EnableNATService(),
		libp2p.EnableAutoNATv2(),
		// It never dials through another relay.
		libp2p.DisableRelay(),
	}
	if len(cfg.AnnounceAddrs) > 0 {
		announce := slices.Clone(cfg.AnnounceAddrs)
		opts = append(opts, libp2p.AddrsFactory(func(addrs []ma.Multiaddr) []ma.Multiaddr {
			out := slices.Clone(addrs)
			for _, a := range announce {
				if !slices.ContainsFunc(out, a.Equal) {
					out = append(out, a)
				}
			}
			return out
		}))
	}
	return opts
}

// startRelay starts the circuit relay v2 service on the host, behind the ACL.
func (s *Server) startRelay() error {
	l := s.cfg.Limits
	var err error
	s.relay, err = relayv2.New(s.host,
		relayv2.WithACL(s.access),
		relayv2.WithMetricsTracer(s.metrics),
		relayv2.WithResources(relayv2.Resources{
			Limit:                 &relayv2.RelayLimit{Duration: l.Duration, Data: l.Data},
			ReservationTTL:        l.ReservationTTL,
			MaxReservations:       l.MaxReservations,
			MaxCircuits:           l.MaxCircuits,
			BufferSize:            l.BufferSize,
			MaxReservationsPerIP:  l.MaxReservationsPerIP,
			MaxReservationsPerASN: l.MaxReservationsPerASN,
		}),
	)
	if err != nil {
		return fmt.Errorf("start circuit relay service: %w", err)
	}
	return nil
}

// startDHT starts the DHT server, serving only the DHT peers and the ACL's.
func (s *Server) startDHT() error {
	cfg := &s.cfg
	s.dhtPeers = make(map[peer.ID]struct{}, len(cfg.DHTBootstrapPeers))
	for _, ai := range cfg.DHTBootstrapPeers {
		s.dhtPeers[ai.ID] = struct{}{}
	}
	var err error
	s.dht, err = dht.New(aclHost{Host: s.host, allow: s.dhtAllowed, logger: s.logger},
		dht.Mode(dht.ModeServer),
		dht.RoutingTableFilter(func(_ any, p peer.ID) bool { return s.dhtAllowed(p) }),
		dht.QueryFilter(func(_ any, ai peer.AddrInfo) bool { return s.dhtAllowed(ai.ID) }),
		dht.ProtocolPrefix(cfg.DHTProtocolPrefix),
		dht.BootstrapPeers(cfg.DHTBootstrapPeers...),
	)
	if err != nil {
		return fmt.Errorf("start dht server with prefix %s: %w", cfg.DHTProtocolPrefix, err)
	}
	return nil
}

// newResourceManager returns libp2p's resource manager with explicit,
// finite limits: the libp2p defaults for its services, scaled to
// cfg.ResourceMemory and cfg.ResourceFDs (or to the machine), with the relay
// service's share raised to carry MaxCircuits circuits per peer.
func newResourceManager(cfg *Config) (network.ResourceManager, error) {
	limits := rcmgr.DefaultLimits // a copy; its maps are nil, so the global is not shared
	libp2p.SetDefaultServiceLimits(&limits)
	l := cfg.Limits
	circuitMem := int64(2 * l.BufferSize)
	limits.AddServiceLimit(relayv2.ServiceName,
		rcmgr.BaseLimit{StreamsInbound: 1024, StreamsOutbound: 1024, Streams: 2048, Memory: 256 * circuitMem},
		rcmgr.BaseLimitIncrease{StreamsInbound: 512, StreamsOutbound: 512, Streams: 1024, Memory: 256 * circuitMem},
	)
	perPeer := 2*l.MaxCircuits + 8
	limits.AddServicePeerLimit(relayv2.ServiceName,
		rcmgr.BaseLimit{StreamsInbound: perPeer, StreamsOutbound: perPeer, Streams: 2 * perPeer, Memory: 4 << 20},
		rcmgr.BaseLimitIncrease{},
	)
	var concrete rcmgr.ConcreteLimitConfig
	if cfg.ResourceMemory > 0 || cfg.ResourceFDs > 0 {
		concrete = limits.Scale(cfg.ResourceMemory, cfg.ResourceFDs)
	} else {
		concrete = limits.AutoScale()
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(concrete))
	if err != nil {
		return nil, fmt.Errorf("relay resource manager: %w", err)
	}
	return rm, nil
}

// Host returns the relay's libp2p host.
func (s *Server) Host() host.Host { return s.host }

// ID returns the relay's peer ID.
func (s *Server) ID() peer.ID { return s.host.ID() }

// Addrs returns the relay's listen (and announced) addresses, without the
// /p2p/ID suffix.
func (s *Server) Addrs() []ma.Multiaddr { return s.host.Addrs() }

// AddrInfo returns the relay's peer ID and addresses.
func (s *Server) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: s.ID(), Addrs: s.Addrs()} }

// MetricsAddr returns the address of the metrics endpoint, or nil if it is off.
func (s *Server) MetricsAddr() net.Addr {
	if s.metricsLn == nil {
		return nil
	}
	return s.metricsLn.Addr()
}

// Registry returns the Prometheus registry holding the relay's metrics.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Run serves the metrics endpoint (if configured) and waits until ctx is
// done or Close is called; then it shuts the relay down gracefully and
// returns. It returns nil after a requested shutdown, or the error that
// stopped it.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	select {
	case <-s.closing:
		s.mu.Unlock()
		return ErrClosed
	default:
	}
	if s.running {
		s.mu.Unlock()
		return errors.New("relay server: Run called twice")
	}
	s.running = true
	s.mu.Unlock()
	defer close(s.runDone)

	s.logger.Info("relay started",
		"peer_id", s.ID(),
		"addrs", s.Addrs(),
		"open", s.cfg.Open,
		"allowed_meshes", len(s.cfg.AllowMeshes),
		"allowed_devices", len(s.cfg.AllowDevices),
		"limit_data", ByteSize(s.cfg.Limits.Data).String(),
		"limit_duration", s.cfg.Limits.Duration.String(),
		"metrics", metricsURL(s.MetricsAddr()),
	)

	g, gctx := errgroup.WithContext(ctx)
	if s.metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		ln := s.metricsLn
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve metrics on %s: %w", ln.Addr(), err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), shutdownTimeout)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	g.Go(func() error {
		select {
		case <-gctx.Done():
		case <-s.closing:
		}
		return errStop
	})
	err := g.Wait()
	if errors.Is(err, errStop) {
		err = nil
	}
	s.logger.Info("relay stopping")
	if serr := s.shutdown(); serr != nil {
		err = errors.Join(err, serr)
	}
	s.logger.Info("relay stopped")
	return err
}

func metricsURL(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return "http://" + a.String() + "/metrics"
}

// errStop cancels Run's group when it is asked to stop.
var errStop = errors.New("stop")

// Close stops the relay and waits until it has stopped. It is safe to call
// more than once and from several goroutines.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	if running {
		<-s.runDone
	}
	return s.shutdown()
}

// shutdown releases everything New built, once.
func (s *Server) shutdown() error {
	s.shutdownOnce.Do(func() {
		var errs []error
		s.hmu.Lock()
		s.stopping = true
		s.hmu.Unlock()
		if s.metricsLn != nil {
			// Already closed by http.Server.Shutdown if Run served it.
			if err := s.metricsLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, fmt.Errorf("close metrics listener: %w", err))
			}
		}
		if s.host != nil {
			s.host.RemoveStreamHandler(AuthProtocolID)
		}
		if s.relay != nil {
			if err := s.relay.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close relay service: %w", err))
			}
		}
		if s.dht != nil {
			if err := s.dht.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close dht: %w", err))
			}
		}
		if s.host != nil {
			if s.notifee != nil {
				s.host.Network().StopNotify(s.notifee)
			}
			if err := s.host.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close relay host: %w", err))
			}
		}
		s.handlers.Wait()
		s.shutdownErr = errors.Join(errs...)
	})
	return s.shutdownErr
}
