package localapi

// The HTTP API and web desktop (node/API.md is the reference): the
// /api/v1/ routes (routes.go), served on 127.0.0.1 behind a per-device
// token, a Host check (DNS rebinding) and an Origin check (CSRF). The same
// /api/v1/ routes are mounted on the Unix control socket, which needs no
// token.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/node/webui"
)

const sessionCookie = "meshwork_session"

// loadOrCreateToken returns the device's API token, making it (0600) on
// first use.
func loadOrCreateToken(home string) (string, error) {
	path := node.TokenPath(home)
	b, err := os.ReadFile(path)
	if err == nil {
		if t := strings.TrimSpace(string(b)); len(t) >= 32 {
			return t, nil
		}
		return "", fmt.Errorf("API token %q is too short: delete it and restart meshd to make a new one", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read API token %q: %w", path, err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	t := hex.EncodeToString(raw[:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write API token %q: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write API token %q: %w", path, err)
	}
	return t, nil
}

// webServer is the HTTP API's listener.
type webServer struct {
	ln     net.Listener
	srv    *http.Server
	hosts  map[string]bool
	cookie string // the session cookie's name: one per port, as cookies ignore ports
	token  string
}

// listenHTTP opens the HTTP API's listener (nil when turned off) and
// sets s.ep.
func (s *Server) listenHTTP() (*webServer, error) {
	addr := s.cfg.HTTPAddr
	if addr == "" {
		addr = node.DefaultHTTPAddr
	}
	if addr == "off" {
		return nil, nil
	}
	token, err := loadOrCreateToken(s.cfg.Home)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		host, _, serr := net.SplitHostPort(addr)
		if serr != nil {
			return nil, fmt.Errorf("--http %q: %w", addr, serr)
		}
		if ln, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
			return nil, fmt.Errorf("HTTP API on %q: %w (choose another with --http, or --http off)", addr, err)
		}
		s.log.Warn("HTTP API port taken, using another", "wanted", addr, "addr", ln.Addr().String())
	}
	h := &webServer{ln: ln, token: token, hosts: map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	h.cookie = sessionCookie + "_" + port
	for _, name := range s.cfg.HTTPHosts {
		h.hosts[strings.ToLower(name)] = true
	}
	s.ep.httpAddr, s.ep.token = ln.Addr().String(), token
	return h, nil
}

// routes builds the HTTP API's server: the /api/v1/ routes behind the
// token, the login and the web desktop, all behind guard.
func (h *webServer) routes(hs *handlers) {
	api := http.NewServeMux()
	hs.apiV1Routes(api)
	mux := http.NewServeMux()
	mux.Handle("/api/", h.authed(api))
	mux.HandleFunc("GET /login", h.login)
	mux.HandleFunc("POST /login", h.login)
	mux.HandleFunc("POST /logout", h.logout)
	mux.Handle("/", webui.Handler())
	h.srv = &http.Server{Handler: h.guard(mux), ReadHeaderTimeout: headerTimeout, IdleTimeout: httpIdle,
		ReadTimeout: httpRequest, WriteTimeout: httpRequest} // streaming routes lift the last two (connlimit.go)
	budget, _ := connBudgets(fdLimit())
	ll := newLimitListener(h.ln, budget)
	ll.serve(h.srv)
	h.ln = ll
	hs.log.Debug("HTTP API connection limit", "conns", budget, "nofile", fdLimit())
}

// serve runs until ctx is done.
func (h *webServer) serve(ctx context.Context, log *slog.Logger) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := h.srv.Serve(h.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP API stopped", "err", err)
		}
	}()
	log.Info("HTTP API and web desktop", "url", "http://"+h.ln.Addr().String()+"/")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = h.srv.Shutdown(sctx) // SSE streams end with ctx (they watch the request's context)
	_ = h.srv.Close()
	wg.Wait()
}

// guard applies the Host and Origin checks to every request.
func (h *webServer) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			host = hh
		}
		host = strings.ToLower(strings.Trim(host, "[]"))
		if !h.hosts[host] {
			writeErr(w, http.StatusMisdirectedRequest, fmt.Errorf("host %q is not this device's API (only localhost; add names with meshd --http-host)", r.Host))
			return
		}
		if o := r.Header.Get("Origin"); o != "" {
			u, err := url.Parse(o)
			if err != nil || u.Scheme != "http" || !strings.EqualFold(u.Host, r.Host) {
				writeErr(w, http.StatusForbidden, fmt.Errorf("origin %q may not use this API (cross-site request refused)", o))
				return
			}
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// tokenOK reports whether the request carries the device's token.
func (h *webServer) tokenOK(r *http.Request) bool {
	var got string
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		got = strings.TrimPrefix(a, "Bearer ")
	} else if c, err := r.Cookie(h.cookie); err == nil {
		got = c.Value
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(h.token)) == 1
}

func (h *webServer) authed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.tokenOK(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="meshwork"`)
			writeErr(w, http.StatusUnauthorized, errors.New("missing or wrong API token: log in with the URL `mesh web` prints, or send Authorization: Bearer TOKEN"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// login checks a token (query or form) and sets the session cookie.
func (h *webServer) login(w http.ResponseWriter, r *http.Request) {
	var t string
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		t = r.PostFormValue("token")
	} else {
		t = r.URL.Query().Get("token")
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(t)), []byte(h.token)) != 1 {
		writeErr(w, http.StatusUnauthorized, errors.New("wrong token: use the URL `mesh web` prints"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: h.cookie, Value: h.token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (h *webServer) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: h.cookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
