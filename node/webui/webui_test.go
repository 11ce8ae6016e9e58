package webui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	res := rec.Result()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func TestHandlerServesThePage(t *testing.T) {
	h := Handler()
	for _, c := range []struct{ path, ctype, has string }{
		{"/", "text/html", `id="app"`},
		{"/assets/app.js", "javascript", "/api/v1"},
		{"/assets/app.css", "text/css", "#ring"},
		{"/assets/icon.svg", "image/svg+xml", "<svg"},
	} {
		res, body := get(t, h, c.path)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", c.path, res.Status)
			continue
		}
		if ct := res.Header.Get("Content-Type"); !strings.Contains(ct, c.ctype) {
			t.Errorf("GET %s: Content-Type %q, want %s", c.path, ct, c.ctype)
		}
		if !strings.Contains(body, c.has) {
			t.Errorf("GET %s: body lacks %q", c.path, c.has)
		}
	}
	if res, _ := get(t, h, "/assets/missing.js"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET a missing asset: %s, want 404", res.Status)
	}
}

// TestNoOtherOrigin: the page loads nothing from another origin (no CDN,
// no fonts, no analytics), and every asset the page names is embedded.
func TestNoOtherOrigin(t *testing.T) {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		t.Fatal(err)
	}
	foreign := regexp.MustCompile(`(?i)((src|href|action)\s*=\s*["']?|url\(\s*["']?|@import\s+["']|(fetch|EventSource|open)\(\s*["'])(https?:)?//`)
	files := 0
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		if m := foreign.Find(b); m != nil {
			t.Errorf("%s refers to another origin: %q", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 4 {
		t.Fatalf("only %d embedded files", files)
	}
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`(?:src|href)="/(assets/[^"]+)"`).FindAllSubmatch(index, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html names %d assets, want the script, the style sheet and the icon", len(refs))
	}
	for _, m := range refs {
		if _, err := fs.Stat(sub, string(m[1])); err != nil {
			t.Errorf("index.html names /%s, which is not embedded: %v", m[1], err)
		}
	}
}
