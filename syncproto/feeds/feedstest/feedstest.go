package feedstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// TB is the part of testing.TB these helpers use (declared here so that
// the package does not import testing, which syncproto's fence forbids in
// shipped code).
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
}

var (
	entryRE   = regexp.MustCompile(`(?s)<entry>.*?</entry>`)
	titleRE   = regexp.MustCompile(`<title type="text">[^<]*</title>`)
	contentRE = regexp.MustCompile(`<content type="text">[^<]*</content>`)
	syncRE    = regexp.MustCompile(`<sx:sync id="[^"]*" updates="(\d+)"[^>]*>`)
)

// OutsideEdit edits the entry of item id in an Atom feed as a FeedSync
// endpoint `by` would: new title and content, updates+1, and a new topmost
// sx:history record at when (RFC 3339). The old version's meshwork:sig
// is dropped: it does not sign the new version (the device whose API
// takes the feed signs it).
func OutsideEdit(t TB, feed, id, title, content, by, when string) string {
	t.Helper()
	found := false
	out := entryRE.ReplaceAllStringFunc(feed, func(e string) string {
		if !strings.Contains(e, `<sx:sync id="`+id+`"`) {
			return e
		}
		found = true
		e = titleRE.ReplaceAllString(e, `<title type="text">`+title+`</title>`)
		e = contentRE.ReplaceAllString(e, `<content type="text">`+content+`</content>`)
		m := syncRE.FindStringSubmatch(e)
		if m == nil {
			t.Fatalf("no sx:sync in %s", e)
		}
		var n int
		fmt.Sscan(m[1], &n)
		return strings.Replace(e, m[0], fmt.Sprintf(`<sx:sync id="%s" updates="%d"><sx:history sequence="%d" when="%s" by="%s"></sx:history>`, id, n+1, n+1, when, by), 1)
	})
	if !found {
		t.Fatalf("no entry %q in %s", id, feed)
	}
	return out
}

// Python returns a python3 that can import feedparser (Debian's
// /usr/bin/python3 first). Without one the test is skipped, or fails when
// $CI is set (.ci/run installs python3-feedparser).
func Python(t TB) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import feedparser").Run() == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("python3-feedparser is missing in CI (.ci/run installs it)")
	}
	t.Skip("python3 with feedparser not found (Debian: apt-get install -y python3-feedparser)")
	return ""
}

// Feed is what feedparser read.
type Feed struct {
	Version string
	Bozo    bool
	Title   string
	Entries []struct {
		Title      string
		Enclosures []string
		SxSync     map[string]string `json:"sx_sync"`
		SxHistory  map[string]string `json:"sx_history"`
	}
}

const script = `
import json, sys, feedparser
d = feedparser.parse(sys.stdin.buffer.read())
out = {"version": d.version, "bozo": bool(d.bozo), "title": d.feed.get("title"), "entries": []}
for e in d.entries:
    out["entries"].append({
        "title": e.get("title"),
        "enclosures": [l.get("href") for l in e.get("enclosures", [])],
        "sx_sync": e.get("sx_sync"),
        "sx_history": e.get("sx_history"),
    })
print(json.dumps(out))
`

// Feedparser parses feed with python3-feedparser (py from Python).
func Feedparser(t TB, py string, feed []byte) Feed {
	t.Helper()
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(feed)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("feedparser: %v: %s", err, stderr.String())
	}
	var out Feed
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
