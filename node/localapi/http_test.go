package localapi

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshwork/meshwork/node"
)

// TestWebGuardAndToken checks the TCP listener's wrapping of the /api/
// routes: a foreign Host (421) or Origin (403) is refused before the
// token is looked at, a missing or wrong token is 401, the token works as
// a Bearer header and as the session cookie login sets, and the token
// file is made 0600 once and then reused.
func TestWebGuardAndToken(t *testing.T) {
	home := t.TempDir()
	tok, err := loadOrCreateToken(home)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(node.TokenPath(home)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v; want 0600", err, fi.Mode())
	}
	if again, err := loadOrCreateToken(home); err != nil || again != tok || len(tok) != 64 {
		t.Fatalf("token reloaded as %q (%v), made %q", again, err, tok)
	}
	if err := os.WriteFile(filepath.Join(home, "api-token"), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateToken(home); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Fatalf("short token: %v, want a too-short error", err)
	}

	ws := &webServer{token: tok, cookie: "meshwork_session_1", hosts: map[string]bool{"localhost": true, "127.0.0.1": true}}
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, map[string]bool{"ok": true}) })
	mux := http.NewServeMux()
	mux.Handle("/api/", ws.authed(api))
	mux.HandleFunc("GET /login", ws.login)
	h := ws.guard(mux)
	do := func(method, path string, hdr map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "http://127.0.0.1:1"+path, nil)
		for k, v := range hdr {
			if k == "Host" {
				r.Host = v
			} else {
				r.Header.Set(k, v)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	bearer := "Bearer " + tok
	for _, tc := range []struct {
		what string
		path string
		hdr  map[string]string
		want int
	}{
		{"no token", "/api/v1/status", nil, 401},
		{"wrong token", "/api/v1/status", map[string]string{"Authorization": "Bearer " + strings.Repeat("0", 64)}, 401},
		{"foreign host", "/api/v1/status", map[string]string{"Host": "evil.example:1", "Authorization": bearer}, 421},
		{"foreign origin", "/api/v1/status", map[string]string{"Origin": "http://evil.example", "Authorization": bearer}, 403},
		{"right token", "/api/v1/status", map[string]string{"Authorization": bearer}, 200},
		{"same origin", "/api/v1/status", map[string]string{"Origin": "http://127.0.0.1:1", "Authorization": bearer}, 200},
		{"login, wrong token", "/login?token=nope", nil, 401},
	} {
		rec := do("GET", tc.path, tc.hdr)
		if rec.Code != tc.want {
			t.Fatalf("%s: status %d, want %d (%s)", tc.what, rec.Code, tc.want, rec.Body)
		}
	}
	rec := do("GET", "/login?token="+tok, nil)
	cookie := rec.Header().Get("Set-Cookie")
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(cookie, "meshwork_session_1="+tok) || !strings.Contains(cookie, "HttpOnly") {
		t.Fatalf("login: %d, Set-Cookie %q", rec.Code, cookie)
	}
	if rec := do("GET", "/api/v1/status", map[string]string{"Cookie": "meshwork_session_1=" + tok}); rec.Code != 200 {
		t.Fatalf("session cookie: status %d (%s)", rec.Code, rec.Body)
	}
}
