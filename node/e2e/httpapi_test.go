package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/syncproto/feeds/feedstest"
)

// apiClient speaks to a daemon's HTTP API as an outside program would.
type apiClient struct {
	t     testing.TB
	base  string // http://127.0.0.1:PORT
	token string
}

func (d *daemon) api() *apiClient {
	d.t.Helper()
	st := d.status()
	if st.HTTP == nil {
		d.t.Fatalf("%s: HTTP API is off", d.name)
	}
	tok, err := os.ReadFile(filepath.Join(d.home, "api-token"))
	if err != nil {
		d.t.Fatal(err)
	}
	return &apiClient{t: d.t, base: "http://" + *st.HTTP, token: strings.TrimSpace(string(tok))}
}

// req sends a request with the token (unless hdr sets Authorization to "").
func (c *apiClient) req(method, path string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	c.t.Helper()
	r, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+c.token)
	for k, v := range hdr {
		if k == "Host" {
			r.Host = v
			continue
		}
		if v == "" {
			r.Header.Del(k)
			continue
		}
		r.Header.Set(k, v)
	}
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(r)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// json sends a JSON request and decodes a 2xx answer into out.
func (c *apiClient) json(method, path string, in, out any) {
	c.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	resp, b := c.req(method, path, body, map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode/100 != 2 {
		c.t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

func (c *apiClient) get(path string) []byte {
	c.t.Helper()
	resp, b := c.req("GET", path, nil, nil)
	if resp.StatusCode != 200 {
		c.t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
	}
	return b
}

// TestHTTPAPIRefusals: requests without the token, with a foreign Origin
// or with a wrong Host are refused, and change nothing; the login URL
// sets a strict HttpOnly cookie that then works; paths that would leave a
// folder are refused and nothing is written outside it.
func TestHTTPAPIRefusals(t *testing.T) {
	a := startDaemon(t, "a")
	a.mesh("init", "--name", "alpha")
	dir := filepath.Join(t.TempDir(), "docs")
	write(t, filepath.Join(dir, "f.txt"), "content\n")
	a.mesh("folder", "add", dir, "--name", "docs")
	c := a.api()
	create := `{"name":"secret-list","type":"list"}`
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   string
		hdr    map[string]string
		want   int
	}{
		{"no token", "GET", "/api/v1/status", "", map[string]string{"Authorization": ""}, 401},
		{"wrong token", "GET", "/api/v1/status", "", map[string]string{"Authorization": "Bearer " + strings.Repeat("0", 64)}, 401},
		{"no token, write", "POST", "/api/v1/objects", create, map[string]string{"Authorization": ""}, 401},
		{"wrong host", "GET", "/api/v1/status", "", map[string]string{"Host": "evil.example:8385"}, 421},
		{"rebinding host with right port", "GET", "/api/v1/status", "", map[string]string{"Host": "attacker.test"}, 421},
		{"foreign origin", "GET", "/api/v1/status", "", map[string]string{"Origin": "http://evil.example"}, 403},
		{"foreign origin, write", "POST", "/api/v1/objects", create, map[string]string{"Origin": "https://evil.example"}, 403},
		{"null origin, write", "POST", "/api/v1/objects", create, map[string]string{"Origin": "null"}, 403},
		{"feed without token", "GET", "/api/v1/objects/docs/feed", "", map[string]string{"Authorization": ""}, 401},
		{"file without token", "GET", "/api/v1/folders/docs/files/f.txt", "", map[string]string{"Authorization": ""}, 401},
		{"events without token", "GET", "/api/v1/events", "", map[string]string{"Authorization": ""}, 401},
		{"upload escaping the folder", "PUT", "/api/v1/folders/docs/files/..%2Fescaped.txt", "x", nil, 400},
		{"upload into .meshwork", "PUT", "/api/v1/folders/docs/files/.meshwork%2Fx", "x", nil, 400},
		{"read escaping the folder", "GET", "/api/v1/folders/docs/files/..%2F..%2Fetc%2Fpasswd", "", nil, 400},
		{"login with a wrong token", "GET", "/login?token=nope", "", map[string]string{"Authorization": ""}, 401},
		{"the page itself needs no token", "GET", "/", "", map[string]string{"Authorization": ""}, 200},
		{"right token", "GET", "/api/v1/status", "", nil, 200},
		{"same origin", "GET", "/api/v1/status", "", map[string]string{"Origin": c.base}, 200},
	} {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		resp, b := c.req(tc.method, tc.path, body, tc.hdr)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %s %s: %s (want %d): %s", tc.name, tc.method, tc.path, resp.Status, tc.want, b)
		}
		if tc.want >= 400 && !strings.Contains(string(b), `"error"`) {
			t.Errorf("%s: refusal without a JSON error: %s", tc.name, b)
		}
	}
	var objs []node.ObjectInfo
	c.json("GET", "/api/v1/objects", nil, &objs)
	for _, o := range objs {
		if o.Name == "secret-list" {
			t.Errorf("a refused request created %q", o.Name)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escaped.txt")); err == nil {
		t.Error("an upload escaped the folder")
	}

	// The login URL sets the cookie; the cookie authenticates; with a
	// foreign Origin it does not.
	resp, _ := c.req("GET", "/login?token="+c.token, nil, map[string]string{"Authorization": ""})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %s", resp.Status)
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if strings.HasPrefix(ck.Name, "meshwork_session_") {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login cookie %+v: want HttpOnly, SameSite=Strict", cookie)
	}
	hdr := map[string]string{"Authorization": "", "Cookie": cookie.Name + "=" + cookie.Value}
	if resp, b := c.req("GET", "/api/v1/devices", nil, hdr); resp.StatusCode != 200 {
		t.Errorf("cookie session: %s: %s", resp.Status, b)
	}
	hdr["Origin"] = "http://evil.example"
	if resp, _ := c.req("POST", "/api/v1/objects", strings.NewReader(create), hdr); resp.StatusCode != 403 {
		t.Errorf("cross-site POST with the cookie: %s, want 403", resp.Status)
	}
	// The Unix socket needs no token and serves the same routes.
	if out := a.mesh("feed", "docs", "--format", "atom"); !strings.Contains(out, `<sx:sync id="f.txt"`) {
		t.Errorf("mesh feed: %s", out)
	}
	if out := a.mesh("web"); !strings.HasPrefix(strings.TrimSpace(out), c.base+"/login?token="+c.token) {
		t.Errorf("mesh web printed %q", out)
	}
}

// meshAB makes a two-device mesh with folder "docs" (files from A) and a
// list "groceries" (items from A), synced to B.
func meshAB(t *testing.T) (a, b *daemon, dirA, dirB string) {
	t.Helper()
	a, b = startDaemon(t, "a"), startDaemon(t, "b")
	a.mesh("init", "--name", "alpha")
	b.mesh("join", a.invite(), "--name", "bravo")
	dirA, dirB = filepath.Join(t.TempDir(), "docs-a"), filepath.Join(t.TempDir(), "docs-b")
	write(t, filepath.Join(dirA, "notes.txt"), "first line\n")
	write(t, filepath.Join(dirA, "photos/beach.jpg"), strings.Repeat("sand", 50000))
	a.mesh("folder", "add", dirA, "--name", "docs")
	idA := a.status().DeviceID
	waitFor(t, 20*time.Second, "b sees the folder", func() bool {
		return b.online(idA) && strings.Contains(b.mesh("folder", "list"), "docs")
	})
	b.mesh("folder", "join", "docs", dirB)
	ca := a.api()
	ca.json("POST", "/api/v1/objects", map[string]string{"name": "groceries", "type": "list"}, nil)
	ca.json("PUT", "/api/v1/objects/groceries/items/milk", map[string]string{"title": "Milk", "text": "1 litre"}, nil)
	ca.json("PUT", "/api/v1/objects/groceries/items/bread", map[string]string{"title": "Bread", "text": "rye"}, nil)
	b.mesh("wait", "docs", "--timeout", "60s")
	cb := b.api()
	waitFor(t, 20*time.Second, "b has the list", func() bool {
		resp, body := cb.req("GET", "/api/v1/objects/groceries/items", nil, nil)
		return resp.StatusCode == 200 && strings.Count(string(body), `"updates":1`) == 2
	})
	return a, b, dirA, dirB
}

// TestFeedsReadByRealClients: python3-feedparser and gofeed read the
// Atom, RSS and JSON renderings of a folder and a list, served by B's
// HTTP API, with their sx: elements and enclosures; an enclosure
// downloads with a range request.
func TestFeedsReadByRealClients(t *testing.T) {
	_, b, _, _ := meshAB(t)
	cb := b.api()
	type want struct {
		titles     []string
		enclosures int
	}
	wants := map[string]want{
		"docs":      {titles: []string{"beach.jpg", "notes.txt", "photos"}, enclosures: 2},
		"groceries": {titles: []string{"Bread", "Milk"}, enclosures: 0},
	}
	py := feedstest.Python(t)
	for obj, w := range wants {
		for _, format := range []string{"atom", "rss", "json"} {
			body := cb.get("/api/v1/objects/" + obj + "/feed?format=" + format)
			// gofeed, the library, reads all three.
			f, err := gofeed.NewParser().Parse(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("gofeed %s/%s: %v\n%s", obj, format, err, body)
			}
			var titles []string
			var encs []string
			for _, it := range f.Items {
				titles = append(titles, it.Title)
				for _, e := range it.Enclosures {
					encs = append(encs, e.URL)
				}
				if format != "json" {
					sx := it.Extensions["sx"]["sync"]
					if len(sx) != 1 || sx[0].Attrs["id"] == "" || sx[0].Attrs["updates"] != "1" || len(sx[0].Children["history"]) != 1 {
						t.Errorf("gofeed %s/%s %q: sx:sync %+v", obj, format, it.Title, sx)
					}
				}
			}
			sort.Strings(titles)
			if strings.Join(titles, "|") != strings.Join(w.titles, "|") || len(encs) != w.enclosures {
				t.Errorf("gofeed %s/%s: titles %q enclosures %q", obj, format, titles, encs)
			}
			if format == "json" { // gofeed exposes no JSON Feed extensions: check _sx directly
				var jf struct {
					Items []struct {
						SX struct {
							ID      string `json:"id"`
							Updates int    `json:"updates"`
							History []struct {
								By string `json:"by"`
							} `json:"history"`
						} `json:"_sx"`
						Attachments []struct {
							URL string `json:"url"`
						} `json:"attachments"`
					} `json:"items"`
				}
				if err := json.Unmarshal(body, &jf); err != nil || len(jf.Items) != len(w.titles) {
					t.Fatalf("JSON feed %s: %v", obj, err)
				}
				for _, it := range jf.Items {
					if it.SX.ID == "" || it.SX.Updates != 1 || len(it.SX.History) != 1 || !strings.HasPrefix(it.SX.History[0].By, "12D3KooW") {
						t.Errorf("JSON feed %s: _sx %+v", obj, it.SX)
					}
				}
			}
			for _, u := range encs {
				if !strings.HasPrefix(u, cb.base+"/api/v1/blobs/mwblob1-") {
					t.Errorf("enclosure URL %q", u)
				}
			}
			// python3-feedparser reads Atom and RSS (feedparser 6 has no JSON Feed).
			if format == "json" {
				continue
			}
			got := feedstest.Feedparser(t, py, body)
			if got.Bozo || got.Version != map[string]string{"atom": "atom10", "rss": "rss20"}[format] || got.Title != obj {
				t.Errorf("feedparser %s/%s: version %q bozo %v title %q", obj, format, got.Version, got.Bozo, got.Title)
			}
			var ptitles []string
			nenc := 0
			for _, e := range got.Entries {
				ptitles = append(ptitles, e.Title)
				nenc += len(e.Enclosures)
				if e.SxSync["id"] == "" || e.SxSync["updates"] != "1" || e.SxHistory["sequence"] != "1" || !strings.HasPrefix(e.SxHistory["by"], "12D3KooW") {
					t.Errorf("feedparser %s/%s %q: sx:sync %v sx:history %v", obj, format, e.Title, e.SxSync, e.SxHistory)
				}
			}
			sort.Strings(ptitles)
			if strings.Join(ptitles, "|") != strings.Join(w.titles, "|") || nenc != w.enclosures {
				t.Errorf("feedparser %s/%s: titles %q, %d enclosures", obj, format, ptitles, nenc)
			}
		}
	}
	// The beach photo's enclosure downloads from B, with ranges.
	f, _ := gofeed.NewParser().Parse(bytes.NewReader(cb.get("/api/v1/objects/docs/feed?format=atom")))
	var url string
	for _, it := range f.Items {
		if it.Title == "beach.jpg" && len(it.Enclosures) == 1 {
			url = strings.TrimPrefix(it.Enclosures[0].URL, cb.base)
		}
	}
	resp, body := cb.req("GET", url, nil, map[string]string{"Range": "bytes=4-11"})
	if resp.StatusCode != http.StatusPartialContent || string(body) != "sandsand" || resp.Header.Get("Content-Range") != "bytes 4-11/200000" {
		t.Errorf("range of enclosure %s: %s %q %q", url, resp.Status, body, resp.Header.Get("Content-Range"))
	}
	resp, body = cb.req("GET", url, nil, nil)
	if resp.StatusCode != 200 || len(body) != 200000 {
		t.Errorf("enclosure %s: %s, %d bytes", url, resp.Status, len(body))
	}
	// The views are feeds too.
	for _, v := range []string{"devices", "presence", "membership", "news"} {
		body := cb.get("/api/v1/objects/" + v + "/feed?format=atom")
		if _, err := gofeed.NewParser().Parse(bytes.NewReader(body)); err != nil || !bytes.Contains(body, []byte("<sx:sync")) {
			t.Errorf("%s feed: %v\n%s", v, err, body)
		}
	}
	if body := cb.get("/api/v1/objects/devices/feed?format=json"); !bytes.Contains(body, []byte("alpha")) || !bytes.Contains(body, []byte("bravo")) {
		t.Errorf("devices feed lacks a device: %s", body)
	}
}

// TestFeedSyncRoundTripThroughAPI: a list's Atom feed is exported from A,
// edited by an outside program as a FeedSync endpoint (A's ID + "/outside")
// — it changes "milk" while B changes "milk" concurrently through B's API
// — and POSTed back to A. Every device converges on the same item: the
// FeedSync winner (same updates: the later `when`) with the other version
// kept, exactly, as its conflict. Versions by a foreign `by` are refused.
func TestFeedSyncRoundTripThroughAPI(t *testing.T) {
	a, b, _, _ := meshAB(t)
	c := startDaemon(t, "c")
	c.mesh("join", a.invite(), "--name", "charlie")
	ca, cb := a.api(), b.api()
	idA := a.status().DeviceID
	exported := string(ca.get("/api/v1/objects/groceries/feed?format=atom"))

	// B edits milk now (update 2 by B) ...
	cb.json("PUT", "/api/v1/objects/groceries/items/milk", map[string]string{"title": "Milk", "text": "2 litres (B)"}, nil)
	// ... the outside program, not having seen it, edits milk and bread
	// later (update 2 by A/outside, when = now + 2 s: it wins milk).
	when := time.Now().Add(2 * time.Second).UTC().Format("2006-01-02T15:04:05.000Z")
	edited := feedstest.OutsideEdit(t, exported, "milk", "Oat milk", "3 litres (outside)", idA+"/outside", when)
	edited = feedstest.OutsideEdit(t, edited, "bread", "Bread", "sourdough", idA+"/outside", when)

	// A version by someone else is refused, and nothing of that feed applied.
	forged := feedstest.OutsideEdit(t, exported, "bread", "Bread", "forged", b.status().DeviceID, when)
	resp, body := ca.req("POST", "/api/v1/objects/groceries/feed", strings.NewReader(forged), map[string]string{"Content-Type": "application/atom+xml"})
	if resp.StatusCode != 403 {
		t.Fatalf("forged by: %s %s", resp.Status, body)
	}
	resp, body = ca.req("POST", "/api/v1/objects/groceries/feed", strings.NewReader(edited), map[string]string{"Content-Type": "application/atom+xml"})
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"changed":2`) {
		t.Fatalf("post edited feed: %s %s", resp.Status, body)
	}
	c.api() // C's API is up
	type sxItem struct {
		ID, Title, Text string
		Updates         int
		Top             string
		Conflicts       []string
	}
	// state reads a device's milk and bread from its JSON feed.
	state := func(d *daemon) map[string]sxItem {
		body := d.api().get("/api/v1/objects/groceries/feed?format=json")
		var jf struct {
			Items []struct {
				Title string `json:"title"`
				Text  string `json:"content_text"`
				SX    struct {
					ID        string                `json:"id"`
					Updates   int                   `json:"updates"`
					History   []struct{ By string } `json:"history"`
					Conflicts []struct {
						ContentText string `json:"content_text"`
						SX          struct {
							History []struct{ By string } `json:"history"`
						} `json:"_sx"`
					} `json:"conflicts"`
				} `json:"_sx"`
			} `json:"items"`
		}
		if err := json.Unmarshal(body, &jf); err != nil {
			t.Fatalf("%s: %v\n%s", d.name, err, body)
		}
		out := map[string]sxItem{}
		for _, it := range jf.Items {
			s := sxItem{ID: it.SX.ID, Title: it.Title, Text: it.Text, Updates: it.SX.Updates}
			if len(it.SX.History) > 0 {
				s.Top = it.SX.History[0].By
			}
			for _, c := range it.SX.Conflicts {
				s.Conflicts = append(s.Conflicts, fmt.Sprintf("%s by %s", c.ContentText, c.SX.History[0].By))
			}
			out[s.ID] = s
		}
		return out
	}
	idB := b.status().DeviceID
	wantMilk := sxItem{ID: "milk", Title: "Oat milk", Text: "3 litres (outside)", Updates: 2, Top: idA + "/outside",
		Conflicts: []string{"2 litres (B) by " + idB}}
	wantBread := sxItem{ID: "bread", Title: "Bread", Text: "sourdough", Updates: 2, Top: idA + "/outside"}
	for _, d := range []*daemon{a, b, c} {
		var got map[string]sxItem
		ok := false
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			got = state(d)
			if fmt.Sprint(got["milk"]) == fmt.Sprint(wantMilk) && fmt.Sprint(got["bread"]) == fmt.Sprint(wantBread) {
				ok = true
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !ok {
			t.Errorf("%s: milk %+v\nbread %+v\nwant %+v\n%+v", d.name, got["milk"], got["bread"], wantMilk, wantBread)
		}
	}
	// The Atom renderings agree byte for byte on the sx: data.
	sx := regexp.MustCompile(`(?s)<sx:sync.*?</sx:sync>`)
	ref := sx.FindAllString(string(ca.get("/api/v1/objects/groceries/feed?format=atom")), -1)
	for _, d := range []*daemon{b, c} {
		if got := sx.FindAllString(string(d.api().get("/api/v1/objects/groceries/feed?format=atom")), -1); strings.Join(got, "") != strings.Join(ref, "") {
			t.Errorf("%s's sx:sync differs from a's:\n%s\n%s", d.name, got, ref)
		}
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ ID, Type, Data string }

// readSSE reads events from an open stream into a channel until it ends.
func readSSE(r io.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 1024)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.Type != "" {
					ch <- e
				}
				e = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				e.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				e.Type = line[7:]
			case strings.HasPrefix(line, "data: "):
				e.Data = line[6:]
			}
		}
	}()
	return ch
}

func (c *apiClient) events(query, lastID string) (<-chan sseEvent, func()) {
	c.t.Helper()
	r, _ := http.NewRequest("GET", c.base+"/api/v1/events"+query, nil)
	r.Header.Set("Authorization", "Bearer "+c.token)
	if lastID != "" {
		r.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		c.t.Fatalf("events: %v %v", err, resp)
	}
	return readSSE(resp.Body), func() { resp.Body.Close() }
}

// waitEvent waits for an event matching cond.
func waitEvent(t *testing.T, ch <-chan sseEvent, within time.Duration, what string, cond func(sseEvent) bool) sseEvent {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("event stream ended waiting for %s", what)
			}
			if cond(e) {
				return e
			}
		case <-deadline:
			t.Fatalf("no event for %s within %s", what, within)
		}
	}
}

// TestLiveEvents: B's event stream pushes A's list change and file upload
// as they happen; presence shows who views which folder and expires when
// the stream closes; a stream resumed with Last-Event-ID gets exactly the
// events it missed, and an unknown ID gets a reset first.
func TestLiveEvents(t *testing.T) {
	a, b, _, dirB := meshAB(t)
	ca, cb := a.api(), b.api()
	evB, closeB := cb.events("?objects=groceries,docs", "")
	defer closeB()
	ca.json("PUT", "/api/v1/objects/groceries/items/eggs", map[string]string{"title": "Eggs", "text": "6"}, nil)
	waitEvent(t, evB, 20*time.Second, "eggs on B", func(e sseEvent) bool {
		return e.Type == "change" && strings.Contains(e.Data, `"eggs"`) && strings.Contains(e.Data, `"groceries"`)
	})
	resp, body := ca.req("PUT", "/api/v1/folders/docs/files/up/loaded.txt", strings.NewReader("uploaded through A's API\n"), nil)
	if resp.StatusCode != 201 {
		t.Fatalf("upload: %s %s", resp.Status, body)
	}
	last := waitEvent(t, evB, 20*time.Second, "upload on B", func(e sseEvent) bool {
		return e.Type == "change" && strings.Contains(e.Data, `"up/loaded.txt"`)
	})
	waitFor(t, 20*time.Second, "uploaded file on B's disk", func() bool {
		got, err := os.ReadFile(filepath.Join(dirB, "up", "loaded.txt"))
		return err == nil && string(got) == "uploaded through A's API\n"
	})

	// Presence: a client of A viewing docs is seen on B, and expires.
	_, closeA := ca.events("?viewing=docs", "")
	isViewing := func(e sseEvent) bool {
		return e.Type == "presence" && strings.Contains(e.Data, `"name":"alpha","online":true,"viewing":["docs"]`)
	}
	waitEvent(t, evB, 20*time.Second, "B sees alpha viewing docs", isViewing)
	closeA()
	waitEvent(t, evB, 20*time.Second, "alpha's viewing expires on B", func(e sseEvent) bool {
		return e.Type == "presence" && strings.Contains(e.Data, `"name":"alpha","online":true,"viewing":[]`)
	})

	// Resume: close, change twice, reopen with the last ID seen.
	closeB()
	ca.json("PUT", "/api/v1/objects/groceries/items/tea", map[string]string{"title": "Tea"}, nil)
	ca.json("DELETE", "/api/v1/objects/groceries/items/bread", nil, nil)
	waitFor(t, 20*time.Second, "B has the changes", func() bool {
		body := cb.get("/api/v1/objects/groceries/items")
		return strings.Contains(string(body), `"id":"tea"`) && regexp.MustCompile(`"id":"bread"[^}]*"deleted":true`).Match(body)
	})
	ev2, close2 := cb.events("?objects=groceries", last.ID)
	defer close2()
	var gotTea, gotBread bool
	for !gotTea || !gotBread {
		e := waitEvent(t, ev2, 10*time.Second, "missed changes replayed", func(e sseEvent) bool { return e.Type == "change" || e.Type == "reset" })
		if e.Type == "reset" {
			t.Fatal("resume within the ring gave a reset")
		}
		gotTea = gotTea || strings.Contains(e.Data, `"tea"`)
		gotBread = gotBread || strings.Contains(e.Data, `"bread"`)
	}
	ev3, close3 := cb.events("", "someotherrun-5")
	defer close3()
	if e := <-ev3; e.Type != "reset" {
		t.Errorf("unknown Last-Event-ID: first event %+v, want reset", e)
	}
}
