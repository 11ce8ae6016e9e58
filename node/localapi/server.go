package localapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/meshwork/meshwork/node"
)

// Core is what the local API asks of the daemon's core: the union of the
// small interfaces each handler file declares. *node.Node satisfies it.
type Core interface {
	meshCore
	folderCore
	fileCore
	objectCore
	tunnelCore
	blobCore
	eventCore
	storageCore
}

var _ Core = (*node.Node)(nil)

// Config is where the API listens.
type Config struct {
	Home      string       // the device's home: the control socket (node.SocketPath) and the token (node.TokenPath)
	HTTPAddr  string       // the HTTP API's address; "" is node.DefaultHTTPAddr, "off" none
	HTTPHosts []string     // extra Host names the HTTP API answers to, besides localhost
	Log       *slog.Logger // nil: slog.Default()
}

// Server is the local API: the control socket and, unless turned off, the
// HTTP API with the web desktop. Listen opens both; Serve serves until its
// context is done; Close releases what was opened when Serve never ran.
type Server struct {
	cfg  Config
	log  *slog.Logger
	sock *http.Server
	ln   net.Listener // the control socket's (limited) listener
	web  *webServer   // nil when the HTTP API is off
	ep   endpoint
	once sync.Once
}

// endpoint is what handlers know of the HTTP API's listener.
type endpoint struct {
	httpAddr string // the HTTP API's address, "" when off
	token    string // the HTTP API's token, "" when off
}

// Listen opens the control socket (mode 0600; it fails when another meshd
// answers on it) and the HTTP API's listener, and builds the routes over
// core. Nothing is served before Serve.
func Listen(core Core, cfg Config) (*Server, error) {
	s := &Server{cfg: cfg, log: cfg.Log}
	if s.log == nil {
		s.log = slog.Default()
	}
	path := node.SocketPath(cfg.Home)
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %q: another meshd is already running with this home", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket %q: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %q: %w", path, err)
	}
	s.ln = ln
	web, err := s.listenHTTP()
	if err != nil {
		s.Close()
		return nil, err
	}
	s.web = web
	h := newHandlers(core, &s.ep, s.log)
	mux := http.NewServeMux()
	h.socketRoutes(mux)
	// No whole-request timeouts here: the local CLI's joins, pings, waits
	// and profiles may take long. Its own connection budget (connlimit.go).
	s.sock = &http.Server{Handler: mux, ReadHeaderTimeout: headerTimeout, IdleTimeout: socketIdle}
	_, budget := connBudgets(fdLimit())
	ll := newLimitListener(ln, budget)
	ll.serve(s.sock)
	s.ln = ll
	if web != nil {
		web.routes(h)
	}
	return s, nil
}

// HTTPAddr is the HTTP API's address, "" when it is off.
func (s *Server) HTTPAddr() string { return s.ep.httpAddr }

// Serve serves both listeners until ctx is done, then shuts them down
// (the control socket within 5 s, the HTTP API within 2 s), removes the
// socket and returns. It is the task cmd/meshd hands to node.Node.Run.
func (s *Server) Serve(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.sock.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("control API stopped", "err", err)
		}
	}()
	if s.web != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.web.serve(ctx, s.log)
		}()
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.sock.Shutdown(sctx)
	wg.Wait()
	_ = os.Remove(node.SocketPath(s.cfg.Home))
}

// Close closes the listeners and removes the socket: for a server whose
// Serve never ran (the node failed to start). Safe to call twice, and
// after Serve.
func (s *Server) Close() error {
	s.once.Do(func() {
		if s.ln != nil {
			s.ln.Close()
		}
		if s.web != nil {
			s.web.ln.Close()
		}
		_ = os.Remove(node.SocketPath(s.cfg.Home))
	})
	return nil
}
