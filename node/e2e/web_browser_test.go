package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium (apt-get install chromium).
const chromiumPath = "/usr/bin/chromium"

// browser is one headless Chromium with a fresh profile.
type browser struct {
	t     *testing.T
	alloc context.Context
	first context.Context // the browser's own context (the first tab)
	shots string          // where screenshots go (testout/web in the repository)
}

// newBrowser starts headless Chromium, or skips the test when it is not
// installed (fails instead with MESH_TEST_REQUIRE_BROWSER=1, as CI runs).
func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("MESH_TEST_REQUIRE_BROWSER") == "1" {
			t.Fatalf("web desktop browser test: %s: %v (apt-get install chromium; MESH_TEST_REQUIRE_BROWSER=1 is set, so this is a failure, not a skip)", chromiumPath, err)
		}
		t.Skipf("web desktop browser test skipped: %s not found (apt-get install chromium; set MESH_TEST_REQUIRE_BROWSER=1 to make this a failure)", chromiumPath)
	}
	// A fresh profile. Not t.TempDir: Chromium's helper processes may
	// still write to it for a moment after the browser exits, which
	// fails t.TempDir's removal.
	profile, err := os.MkdirTemp("", "meshwork-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // after the browser's cleanup below
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := os.RemoveAll(profile)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Logf("remove Chromium profile: %v", err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		// Without these Chromium reaches out to the internet (component
		// updates, sync, QUIC probes) and hangs or logs errors offline.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.WindowSize(1280, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	first, cancelFirst := chromedp.NewContext(alloc, chromedp.WithErrorf(quietErrorf(t)))
	// Start the browser now, so that a broken Chromium fails here. (Not
	// with a timeout context: the first Run ties the browser to its
	// context; the test's own timeout bounds this.)
	if err := chromedp.Run(first); err != nil {
		cancelFirst()
		cancelAlloc()
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	t.Cleanup(func() {
		cancelFirst()
		cancelAlloc() // waits for the browser process to exit
	})
	return &browser{t: t, alloc: alloc, first: first, shots: screenshotDir(t)}
}

// quietErrorf logs chromedp's errors except the harmless ones about CDP
// events newer than its protocol tables.
func quietErrorf(t *testing.T) func(string, ...any) {
	return func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if strings.Contains(msg, "unmarshal event") || strings.Contains(msg, "unknown") {
			return
		}
		t.Logf("chromedp: %s", msg)
	}
}

// screenshotDir is testout/web in the repository (found from the test's
// working directory by looking for go.mod), made if missing.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's working directory: cannot find the repository's testout/")
		}
		dir = parent
	}
	out := filepath.Join(dir, "testout", "web")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// tab is one page in its own browser context: its own cookie jar, so two
// tabs can be logged in to two daemons on the same host.
type tab struct {
	t      *testing.T
	b      *browser
	name   string
	ctx    context.Context
	mu     sync.Mutex
	errors []string // uncaught exceptions and console errors of the page
}

// tab opens a page in a fresh browser context.
func (b *browser) tab(name string) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.first, chromedp.WithNewBrowserContext())
	tb := &tab{t: b.t, b: b, name: name, ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			tb.mu.Lock()
			tb.errors = append(tb.errors, "exception: "+ev.ExceptionDetails.Error())
			tb.mu.Unlock()
		case *runtime.EventConsoleAPICalled:
			if ev.Type != runtime.APITypeError {
				return
			}
			var parts []string
			for _, a := range ev.Args {
				if a.Description != "" {
					parts = append(parts, a.Description)
				} else {
					parts = append(parts, string(a.Value))
				}
			}
			tb.mu.Lock()
			tb.errors = append(tb.errors, "console.error: "+strings.Join(parts, " "))
			tb.mu.Unlock()
		}
	})
	// Report the page's Content-Security-Policy violations as errors.
	watchCSP := chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(`document.addEventListener("securitypolicyviolation", (e) => console.error("CSP violation: " + e.violatedDirective + " " + e.blockedURI))`).Do(ctx)
		return err
	})
	if err := chromedp.Run(ctx, watchCSP); err != nil { // opens the tab, tied to ctx
		cancel()
		b.t.Fatalf("open tab %s: %v", name, err)
	}
	b.t.Cleanup(func() {
		// On failure, show where the page was (runs before the tab closes).
		if b.t.Failed() {
			tb.screenshot("failed-" + name)
		}
		cancel()
	})
	return tb
}

// do runs browser actions within a deadline and fails the test, naming
// what it was doing, when they fail or time out.
func (tb *tab) do(within time.Duration, what string, actions ...chromedp.Action) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, within)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s", within)
		}
		tb.t.Fatalf("tab %s: %s: %v%s", tb.name, what, err, tb.pageErrors())
	}
}

// click clicks the element sel selects. The page redraws a row when its
// data changes; a click that lost its element to such a redraw between
// finding and clicking it is tried again, as a person would, until the
// deadline.
func (tb *tab) click(within time.Duration, what, sel string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, within)
	defer cancel()
	for {
		err := chromedp.Run(ctx, chromedp.Click(sel, chromedp.ByQuery))
		if err == nil {
			return
		}
		gone := strings.Contains(err.Error(), "Could not find node") || strings.Contains(err.Error(), "detached")
		if !gone || ctx.Err() != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("timed out after %s", within)
			}
			tb.t.Fatalf("tab %s: %s: click %s: %v%s", tb.name, what, sel, err, tb.pageErrors())
		}
		tb.t.Logf("tab %s: %s: %s was redrawn before the click; again", tb.name, what, sel)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) into res.
func (tb *tab) eval(what, expr string, res any) {
	tb.t.Helper()
	tb.do(15*time.Second, what, chromedp.Evaluate(expr, res, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
		return p.WithAwaitPromise(true)
	}))
}

// waitJS waits until the JavaScript expression expr equals want, checking
// whenever the page's DOM changes, and fails with expr's last value when
// the deadline passes first.
func (tb *tab) waitJS(within time.Duration, what, expr string, want any) {
	tb.t.Helper()
	wantJSON, err := json.Marshal(want)
	if err != nil {
		tb.t.Fatal(err)
	}
	cond := fmt.Sprintf("(() => { try { return JSON.stringify(%s) === %q; } catch (e) { return false; } })()", expr, string(wantJSON))
	ctx, cancel := context.WithTimeout(tb.ctx, within)
	defer cancel()
	var ok bool
	err = chromedp.Run(ctx, chromedp.Poll(cond, &ok, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(within)))
	if err == nil && ok {
		return
	}
	var last any
	lctx, lcancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer lcancel()
	_ = chromedp.Run(lctx, chromedp.Evaluate(fmt.Sprintf("(() => { try { return %s; } catch (e) { return 'error: ' + e; } })()", expr), &last))
	tb.t.Fatalf("tab %s: timed out after %s waiting for %s: %s is %#v, want %s (%v)%s", tb.name, within, what, expr, last, wantJSON, err, tb.pageErrors())
}

// screenshot saves a full-page PNG as testout/web/NAME.png.
func (tb *tab) screenshot(name string) {
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	var png []byte
	// Quality 100 makes chromedp ask for PNG (below it, JPEG).
	if err := chromedp.Run(ctx,
		chromedp.Evaluate(`window.scrollTo(0, 0)`, nil), // the sticky header at the top
		chromedp.FullScreenshot(&png, 100)); err != nil {
		tb.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(tb.b.shots, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		tb.t.Logf("screenshot %s: %v", name, err)
		return
	}
	tb.t.Logf("screenshot %s", p)
}

// pageErrors lists what the page reported as errors so far, for messages.
func (tb *tab) pageErrors() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.errors) == 0 {
		return ""
	}
	return "\npage errors:\n  " + strings.Join(tb.errors, "\n  ")
}

// noPageErrors fails the test if the page threw or logged an error.
func (tb *tab) noPageErrors() {
	tb.t.Helper()
	if e := tb.pageErrors(); e != "" {
		tb.t.Errorf("tab %s:%s", tb.name, e)
	}
}

// webLogin returns the daemon's web desktop address (from `mesh status`)
// and its API token (the home's api-token file).
func webLogin(t *testing.T, d *daemon) (base, token string) {
	t.Helper()
	var addr string
	waitFor(t, 15*time.Second, d.name+"'s status to show its HTTP address", func() bool {
		var st struct {
			HTTP string `json:"http"`
		}
		if err := json.Unmarshal([]byte(d.mesh("status", "--json")), &st); err != nil {
			t.Fatalf("status of %s: %v", d.name, err)
		}
		addr = st.HTTP
		return addr != ""
	})
	tok, err := os.ReadFile(filepath.Join(d.home, "api-token"))
	if err != nil {
		t.Fatalf("%s's API token: %v", d.name, err)
	}
	token = strings.TrimSpace(string(tok))
	if token == "" {
		t.Fatalf("%s's api-token file is empty", d.name)
	}
	return "http://" + addr, token
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
