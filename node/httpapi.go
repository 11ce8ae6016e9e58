package node

// The HTTP API and web desktop (node/API.md is the reference): the
// /api/v1/ routes, served on 127.0.0.1 behind a per-device token, a Host
// check (DNS rebinding) and an Origin check (CSRF). The same /api/v1/
// routes are mounted on the Unix control socket, which needs no token.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/meshwork/meshwork/node/webui"
)

const sessionCookie = "meshwork_session"

// loadOrCreateToken returns the device's API token, making it (0600) on
// first use.
func loadOrCreateToken(home string) (string, error) {
	path := TokenPath(home)
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

// registerAPIv1 mounts the /api/v1/ routes on mux.
func (a *apiServer) registerAPIv1(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/status", a.status)
	mux.HandleFunc("GET /api/v1/devices", a.devices)
	mux.HandleFunc("POST /api/v1/invite", a.invite(true))
	mux.HandleFunc("GET /api/v1/news", a.listNews)
	mux.HandleFunc("GET /api/v1/objects", a.objectList)
	mux.HandleFunc("POST /api/v1/objects", a.objectCreate)
	mux.HandleFunc("GET /api/v1/objects/{name}/feed", a.feedGet)
	mux.HandleFunc("POST /api/v1/objects/{name}/feed", a.feedPost)
	mux.HandleFunc("GET /api/v1/objects/{name}/items", a.itemList)
	mux.HandleFunc("POST /api/v1/objects/{name}/items", a.itemCreate)
	mux.HandleFunc("PUT /api/v1/objects/{name}/items/{id}", a.itemPut)
	mux.HandleFunc("DELETE /api/v1/objects/{name}/items/{id}", a.itemDelete)
	mux.HandleFunc("POST /api/v1/objects/{name}/items/{id}/resolve", a.itemResolve)
	mux.HandleFunc("GET /api/v1/folders", a.folderList)
	mux.HandleFunc("GET /api/v1/folders/{name}/files", a.fileList)
	mux.HandleFunc("GET /api/v1/folders/{name}/files/{path...}", a.fileGet)
	mux.HandleFunc("PUT /api/v1/folders/{name}/files/{path...}", a.filePut)
	mux.HandleFunc("DELETE /api/v1/folders/{name}/files/{path...}", a.fileDelete)
	mux.HandleFunc("GET /api/v1/folders/{name}/history", a.fileHistory)
	mux.HandleFunc("POST /api/v1/folders/{name}/restore", a.fileRestore)
	mux.HandleFunc("POST /api/v1/folders/{name}/resolve", a.fileResolve)
	mux.HandleFunc("GET /api/v1/blobs/{ref}", a.blobServe)
	mux.HandleFunc("GET /api/v1/services", a.services)
	mux.HandleFunc("POST /api/v1/services", a.serviceExpose)
	mux.HandleFunc("DELETE /api/v1/services/{name}", a.unexposeName)
	mux.HandleFunc("GET /api/v1/events", a.events)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, fmt.Errorf("%s %s: no such API route (see node/API.md)", r.Method, r.URL.Path))
	})
}

// httpServer is the HTTP API's listener.
type httpServer struct {
	a      *apiServer
	ln     net.Listener
	srv    *http.Server
	hosts  map[string]bool
	cookie string // the session cookie's name: one per port, as cookies ignore ports
}

// listenHTTP opens the HTTP API's listener (nil when turned off).
func (a *apiServer) listenHTTP() (*httpServer, error) {
	n := a.n
	addr := n.cfg.HTTPAddr
	if addr == "" {
		addr = DefaultHTTPAddr
	}
	if addr == "off" {
		return nil, nil
	}
	token, err := loadOrCreateToken(n.cfg.Home)
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
		n.log.Warn("HTTP API port taken, using another", "wanted", addr, "addr", ln.Addr().String())
	}
	h := &httpServer{a: a, ln: ln, hosts: map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	h.cookie = sessionCookie + "_" + port
	for _, s := range n.cfg.HTTPHosts {
		h.hosts[strings.ToLower(s)] = true
	}
	api := http.NewServeMux()
	a.registerAPIv1(api)
	mux := http.NewServeMux()
	mux.Handle("/api/", h.authed(api))
	mux.HandleFunc("GET /login", h.login)
	mux.HandleFunc("POST /login", h.login)
	mux.HandleFunc("POST /logout", h.logout)
	mux.Handle("/", webui.Handler())
	h.srv = &http.Server{Handler: h.guard(mux), ReadHeaderTimeout: headerTimeout, IdleTimeout: httpIdle,
		ReadTimeout: httpRequest, WriteTimeout: httpRequest} // streaming routes lift the last two (connlimit.go)
	budget, _ := connBudgets(fdLimit())
	ll := newLimitListener(ln, budget)
	ll.serve(h.srv)
	h.ln = ll
	n.log.Debug("HTTP API connection limit", "conns", budget, "nofile", fdLimit())
	a.httpAddr, a.token = ln.Addr().String(), token
	return h, nil
}

// serve runs until ctx is done.
func (h *httpServer) serve(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := h.srv.Serve(h.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.a.n.log.Error("HTTP API stopped", "err", err)
		}
	}()
	h.a.n.log.Info("HTTP API and web desktop", "url", "http://"+h.ln.Addr().String()+"/")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = h.srv.Shutdown(sctx) // SSE streams end with ctx (they watch the request's context)
	_ = h.srv.Close()
	wg.Wait()
}

// guard applies the Host and Origin checks to every request.
func (h *httpServer) guard(next http.Handler) http.Handler {
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
func (h *httpServer) tokenOK(r *http.Request) bool {
	var got string
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		got = strings.TrimPrefix(a, "Bearer ")
	} else if c, err := r.Cookie(h.cookie); err == nil {
		got = c.Value
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(h.a.token)) == 1
}

func (h *httpServer) authed(next http.Handler) http.Handler {
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
func (h *httpServer) login(w http.ResponseWriter, r *http.Request) {
	var t string
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		t = r.PostFormValue("token")
	} else {
		t = r.URL.Query().Get("token")
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(t)), []byte(h.a.token)) != 1 {
		writeErr(w, http.StatusUnauthorized, errors.New("wrong token: use the URL `mesh web` prints"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: h.cookie, Value: h.a.token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (h *httpServer) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: h.cookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
