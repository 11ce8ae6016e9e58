package e2e

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// webPair is two daemons, A (alpha) and B (bravo), in one mesh with the
// folder docs (notes.txt holding v1) synced between dirA and dirB, and a
// browser with a tab for each; B's HTTP address survives a restart.
type webPair struct {
	br           *browser
	a, b         *daemon
	httpB        string
	dirA, dirB   string
	tabA, tabB   *tab
	baseA, baseB string
	tokA, tokB   string
}

const v1, v2 = "notes, first version\n", "notes, second version: longer than the first\n"

func startWebPair(t *testing.T) *webPair {
	t.Helper()
	p := &webPair{br: newBrowser(t)}
	p.a = startDaemon(t, "a", "--http", "127.0.0.1:0")
	p.httpB = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p.b = startDaemon(t, "b", "--http", p.httpB)
	p.a.mesh("init", "--name", "alpha")
	p.b.mesh("join", p.a.invite(), "--name", "bravo")
	p.dirA = filepath.Join(t.TempDir(), "docs-a")
	p.dirB = filepath.Join(t.TempDir(), "docs-b")
	write(t, filepath.Join(p.dirA, "notes.txt"), v1)
	p.a.mesh("folder", "add", p.dirA, "--name", "docs")
	idA := p.a.status().DeviceID
	waitFor(t, 30*time.Second, "b sees a online and the folder docs", func() bool {
		return p.b.online(idA) && strings.Contains(p.b.mesh("folder", "list"), "docs")
	})
	p.b.mesh("folder", "join", "docs", p.dirB)
	p.a.mesh("wait", "docs", "--timeout", "60s")
	p.b.mesh("wait", "docs", "--timeout", "60s")
	waitFile(t, filepath.Join(p.dirB, "notes.txt"), v1)
	p.baseA, p.tokA = webLogin(t, p.a)
	p.baseB, p.tokB = webLogin(t, p.b)
	p.tabA, p.tabB = p.br.tab("a"), p.br.tab("b")
	return p
}

// loginURL logs tb in with the URL `mesh web` prints.
func loginURL(tb *tab, base, token string) {
	tb.t.Helper()
	tb.do(30*time.Second, "log in with the login URL",
		chromedp.Navigate(base+"/login?"+url.Values{"token": {token}}.Encode()),
		chromedp.WaitVisible(`#app`, chromedp.ByQuery))
}

// bothOnline waits until tb shows both devices online over a direct path,
// with the live event stream open.
func bothOnline(tb *tab) {
	tb.t.Helper()
	tb.waitJS(30*time.Second, "both devices online",
		`[...document.querySelectorAll("#device-list [data-testid=device]")].map(e => e.dataset.name + ":" + e.dataset.online).sort().join(" ")`,
		"alpha:true bravo:true")
	tb.waitJS(30*time.Second, "the other device's path",
		`document.querySelector("#device-list [data-testid=device][data-self=false]").dataset.connection`, "direct")
	tb.waitJS(10*time.Second, "the live event stream", `document.getElementById("live").dataset.state`, "open")
}

// openDocs opens the folder docs in tb's file browser.
func openDocs(tb *tab) {
	tb.t.Helper()
	tb.click(20*time.Second, "open the folder docs", `[data-testid=folder][data-folder="docs"] [data-testid=folder-open]`)
	tb.do(20*time.Second, "see the folder open", chromedp.WaitVisible(`#browser`, chromedp.ByQuery))
	tb.waitJS(20*time.Second, "notes.txt listed and here", rowAttr("notes.txt", "local"), "true")
	tb.waitJS(10*time.Second, "the event stream reopened for the open folder", `document.getElementById("live").dataset.state`, "open")
}

// TestWebDesktop drives the web desktop (node/webui) of two real daemons in
// headless Chromium, as issue #8's acceptance asks: log in, see both
// devices online, upload a file into a folder on A and watch it appear in
// B's file browser without a reload, and restore an older version of a
// file from the history view; then invites and services. Screenshots go
// to testout/web/.
func TestWebDesktop(t *testing.T) {
	p := startWebPair(t)
	a, dirA, dirB, tabA, tabB := p.a, p.dirA, p.dirB, p.tabA, p.tabB
	baseA, tokenA := p.baseA, p.tokA

	// A without a session cookie: the page asks for the token. Log in
	// with the form (POST /login) on A and with the login URL on B.
	tabA.do(30*time.Second, "open A's web desktop without a session",
		chromedp.Navigate(baseA+"/"),
		chromedp.WaitVisible(`#login-token`, chromedp.ByQuery))
	tabA.waitJS(5*time.Second, "the app to stay hidden before login", `document.getElementById("app").hidden`, true)
	tabA.do(30*time.Second, "log in to A with a wrong token",
		chromedp.SendKeys(`#login-token`, "not-the-token", chromedp.ByQuery),
		chromedp.Click(`#login-submit`, chromedp.ByQuery),
		chromedp.WaitVisible(`#login-error`, chromedp.ByQuery))
	tabA.waitJS(5*time.Second, "the wrong token refused", `document.getElementById("login-error").textContent + " " + document.getElementById("app").hidden`, "Wrong token. true")
	tabA.screenshot("01-a-login")
	tabA.do(30*time.Second, "log in to A with the login form",
		chromedp.Evaluate(`document.getElementById("login-token").value = ""`, nil),
		chromedp.SendKeys(`#login-token`, tokenA, chromedp.ByQuery),
		chromedp.Click(`#login-submit`, chromedp.ByQuery),
		chromedp.WaitVisible(`#app`, chromedp.ByQuery))
	loginURL(tabB, p.baseB, p.tokB)

	for _, tb := range []*tab{tabA, tabB} {
		bothOnline(tb)
	}
	tabA.waitJS(5*time.Second, "A's own name in the header", `document.getElementById("self-name").textContent`, "alpha")
	tabB.waitJS(5*time.Second, "B's own name in the header", `document.getElementById("self-name").textContent`, "bravo")
	for _, tb := range []*tab{tabA, tabB} {
		openDocs(tb)
	}
	tabA.screenshot("02-a-devices-and-folder")
	tabB.screenshot("02-b-devices-and-folder")

	// Upload through A's file input; B's browser shows it without a reload
	// (a mark on B's window survives only if the page is not reloaded).
	const upName, upContent = "hello-web.txt", "uploaded from A's web desktop\n"
	upDir := t.TempDir()
	write(t, filepath.Join(upDir, upName), upContent)
	var mark string
	tabB.eval("mark B's page", `window.__meshworkTestMark = "not reloaded"`, &mark)
	tabB.waitJS(5*time.Second, "the upload not on B before it happens", rowAttr(upName, "local"), "absent")
	tabA.do(20*time.Second, "choose the file in A's upload input",
		chromedp.SetUploadFiles(`#upload-input`, []string{filepath.Join(upDir, upName)}, chromedp.ByQuery))
	tabA.waitJS(30*time.Second, "A's upload to finish", `document.getElementById("upload-status").dataset.state`, "done")
	waitFile(t, filepath.Join(dirA, upName), upContent)
	tabA.waitJS(20*time.Second, "the upload listed on A", rowAttr(upName, "local"), "true")
	tabB.waitJS(60*time.Second, "the upload to appear in B's file browser, content here", rowAttr(upName, "local"), "true")
	tabB.waitJS(5*time.Second, "B's page not reloaded", `window.__meshworkTestMark`, "not reloaded")
	waitFile(t, filepath.Join(dirB, upName), upContent)
	tabB.waitJS(30*time.Second, "the upload in B's news, live",
		`[...document.querySelectorAll("#news-list [data-testid=news]")].some(e => e.textContent.includes("changed hello-web.txt"))`, true)
	var got string
	tabB.eval("download the upload through B's download link",
		`fetch(document.querySelector(`+jsString(rowSel(upName))+` + " [data-testid=download]").getAttribute("href")).then(r => r.ok ? r.text() : "HTTP " + r.status)`, &got)
	if got != upContent {
		t.Errorf("B's download link gave %q, want %q", got, upContent)
	}
	tabB.screenshot("03-b-upload-arrived")

	// A second version of notes.txt uploaded through A's page replaces
	// B's copy, which B keeps in its history (a replaced version is kept
	// by the device whose copy is replaced); B's desktop brings it back.
	upDir2 := t.TempDir()
	write(t, filepath.Join(upDir2, "notes.txt"), v2)
	tabA.do(20*time.Second, "upload a new notes.txt on A",
		chromedp.SetUploadFiles(`#upload-input`, []string{filepath.Join(upDir2, "notes.txt")}, chromedp.ByQuery))
	waitFile(t, filepath.Join(dirA, "notes.txt"), v2)
	waitFile(t, filepath.Join(dirB, "notes.txt"), v2)
	tabB.waitJS(30*time.Second, "B's browser to show the new notes.txt", rowAttr("notes.txt", "size"), fmt.Sprint(len(v2)))
	tabB.click(20*time.Second, "open the history of notes.txt on B", rowSel("notes.txt")+` [data-testid=history]`)
	tabB.do(20*time.Second, "see the history", chromedp.WaitVisible(`#history`, chromedp.ByQuery))
	tabB.waitJS(30*time.Second, "the first version kept in notes.txt's history",
		`(document.querySelector("[data-testid=version][data-n='1']") || {dataset: {}}).dataset.size`, fmt.Sprint(len(v1)))
	tabB.screenshot("04-b-history")
	tabB.click(20*time.Second, "restore version 1 of notes.txt", `[data-testid=version][data-n='1'] [data-testid=restore]`)
	tabB.waitJS(30*time.Second, "the restore to be done", `document.getElementById("history-status").dataset.state`, "done")
	waitFile(t, filepath.Join(dirB, "notes.txt"), v1)
	waitFile(t, filepath.Join(dirA, "notes.txt"), v1)
	tabB.waitJS(30*time.Second, "B's browser to show the restored notes.txt", rowAttr("notes.txt", "size"), fmt.Sprint(len(v1)))
	tabA.waitJS(30*time.Second, "A's browser to show the restored notes.txt", rowAttr("notes.txt", "size"), fmt.Sprint(len(v1)))
	tabB.waitJS(30*time.Second, "B's history to show the restored version as current",
		`document.querySelector("[data-testid=current-version]").dataset.size`, fmt.Sprint(len(v1)))
	tabB.waitJS(30*time.Second, "B's history to keep the replaced second version",
		`(document.querySelector("[data-testid=version][data-n='1']") || {dataset: {}}).dataset.size`, fmt.Sprint(len(v2)))
	tabB.screenshot("05-b-restored")

	// A file deleted on A's disk leaves B's list live; "show deleted"
	// lists it, and its history brings it back on both devices.
	if err := os.Remove(filepath.Join(dirA, upName)); err != nil {
		t.Fatal(err)
	}
	tabB.waitJS(30*time.Second, "the deleted file gone from B's list", rowAttr(upName, "deleted"), "absent")
	waitFor(t, 30*time.Second, "the file deleted on B's disk", func() bool {
		_, err := os.Stat(filepath.Join(dirB, upName))
		return os.IsNotExist(err)
	})
	tabB.click(20*time.Second, "show deleted files", `#show-deleted`)
	tabB.waitJS(20*time.Second, "the deleted file listed as deleted", rowAttr(upName, "deleted"), "true")
	tabB.click(20*time.Second, "open the deleted file's history", rowSel(upName)+` [data-testid=history]`)
	tabB.waitJS(30*time.Second, "its last content kept",
		`(document.querySelector("[data-testid=version][data-n='1']") || {dataset: {}}).dataset.size`, fmt.Sprint(len(upContent)))
	tabB.click(20*time.Second, "restore the deleted file", `[data-testid=version][data-n='1'] [data-testid=restore]`)
	waitFile(t, filepath.Join(dirB, upName), upContent)
	waitFile(t, filepath.Join(dirA, upName), upContent)
	tabA.waitJS(30*time.Second, "the restored file back in A's list", rowAttr(upName, "deleted"), "false")
	tabB.click(20*time.Second, "hide deleted files again", `#show-deleted`)
	tabB.click(20*time.Second, "close the history", `#history-close`)
	tabB.do(20*time.Second, "see the history closed", chromedp.WaitNotVisible(`#history`, chromedp.ByQuery))

	// Invite a device: a code and its QR image.
	tabA.do(20*time.Second, "make an invite on A",
		chromedp.Click(`#invite-btn`, chromedp.ByQuery),
		chromedp.WaitVisible(`#invite-result`, chromedp.ByQuery))
	tabA.waitJS(20*time.Second, "the invite's QR image to load",
		`document.getElementById("invite-qr").complete && document.getElementById("invite-qr").naturalWidth > 0`, true)
	var code string
	tabA.eval("read the invite code", `document.getElementById("invite-code").textContent`, &code)
	if len(code) < 20 || strings.ContainsAny(code, " \n") {
		t.Errorf("invite code on the page is %q", code)
	}

	// Expose and unexpose a service; a refused one shows the daemon's
	// error.
	tabA.do(20*time.Second, "expose a service with a bad address on A",
		chromedp.SendKeys(`#expose-name`, "bad", chromedp.ByQuery),
		chromedp.SendKeys(`#expose-target`, "no-port-here", chromedp.ByQuery),
		chromedp.Click(`#expose-btn`, chromedp.ByQuery))
	tabA.waitJS(20*time.Second, "the refusal shown", `!document.getElementById("error").hidden && document.getElementById("error").textContent.includes("no-port-here")`, true)
	tabA.do(20*time.Second, "dismiss the error and clear the expose form",
		chromedp.Click(`#error`, chromedp.ByQuery),
		chromedp.WaitNotVisible(`#error`, chromedp.ByQuery),
		chromedp.Evaluate(`document.getElementById("expose-form").reset()`, nil))
	tabA.do(20*time.Second, "expose a service on A",
		chromedp.SendKeys(`#expose-name`, "webtest", chromedp.ByQuery),
		chromedp.SendKeys(`#expose-target`, "127.0.0.1:9", chromedp.ByQuery),
		chromedp.Click(`#expose-btn`, chromedp.ByQuery))
	tabA.waitJS(20*time.Second, "the service listed",
		`[...document.querySelectorAll("[data-testid=service]")].map(e => e.dataset.name).join(" ")`, "webtest")
	if out := a.mesh("exposed"); !strings.Contains(out, "webtest") {
		t.Errorf("mesh exposed on A after exposing through the page:\n%s", out)
	}
	tabA.click(20*time.Second, "unexpose it", `[data-testid=service][data-name="webtest"] [data-testid=unexpose]`)
	tabA.waitJS(20*time.Second, "the service gone", `document.querySelectorAll("[data-testid=service]").length`, 0)
	if out := a.mesh("exposed"); strings.Contains(out, "webtest") {
		t.Errorf("mesh exposed on A after unexposing through the page:\n%s", out)
	}
	tabA.screenshot("06-a-invite")

	// Phone width: the same page, one column.
	tabB.do(20*time.Second, "narrow B's window to phone width", chromedp.EmulateViewport(380, 800))
	tabB.waitJS(5*time.Second, "no horizontal scrolling at phone width",
		`document.documentElement.scrollWidth <= window.innerWidth`, true)
	tabB.screenshot("07-b-phone-width")

	for _, tb := range []*tab{tabA, tabB} {
		tb.waitJS(5*time.Second, "no error shown on the page", `document.getElementById("error").hidden`, true)
		tb.noPageErrors()
	}

	// Log out: the session is gone for good, a reload asks for the token.
	tabA.click(20*time.Second, "log out of A", `#logout`)
	tabA.do(20*time.Second, "see the login form", chromedp.WaitVisible(`#login-token`, chromedp.ByQuery))
	tabA.do(20*time.Second, "reload A's page", chromedp.Reload(), chromedp.WaitVisible(`#login-token`, chromedp.ByQuery))
	tabA.waitJS(5*time.Second, "the app hidden after logout", `document.getElementById("app").hidden && document.getElementById("live").dataset.state`, "closed")
}

// TestWebDesktopConflict: B's daemon stops under its open page (A's page
// shows bravo offline, with when it was last seen), both devices edit
// notes.txt, B comes back: B's page reconnects by itself (the restarted
// daemon makes it reload everything), both pages show the conflict, and
// "keep this" on A keeps the conflict copy's side everywhere.
func TestWebDesktopConflict(t *testing.T) {
	p := startWebPair(t)
	a, b, dirA, dirB, tabA, tabB, httpB := p.a, p.b, p.dirA, p.dirB, p.tabA, p.tabB, p.httpB
	loginURL(tabA, p.baseA, p.tokA)
	loginURL(tabB, p.baseB, p.tokB)
	for _, tb := range []*tab{tabA, tabB} {
		bothOnline(tb)
		openDocs(tb)
	}

	b.stop()
	tabB.waitJS(20*time.Second, "B's page to notice its daemon is gone",
		`document.getElementById("live").dataset.state !== "open"`, true)
	bravoJS := `(() => { const e = document.querySelector("#device-list [data-testid=device][data-name=bravo]"); return e.dataset.online + " " + e.querySelector("[data-testid=device-seen]").textContent.split(" ")[0]; })()`
	tabA.waitJS(30*time.Second, "A's page to show bravo offline, with when it was last seen", bravoJS, "false seen")
	tabA.screenshot("conflict-1-a-bravo-offline")
	write(t, filepath.Join(dirB, "notes.txt"), "bravo's offline edit\n")
	write(t, filepath.Join(dirA, "notes.txt"), "alpha's edit\n")
	a.mesh("wait", "docs", "--timeout", "60s")
	b.start("--http", httpB)
	tabB.waitJS(60*time.Second, "B's page to reconnect", `document.getElementById("live").dataset.state`, "open")
	tabA.waitJS(60*time.Second, "A's page to show bravo online again", bravoJS, "true online")
	conflictsJS := `[...document.querySelectorAll("[data-testid=conflict]")].map(e => e.dataset.conflictOf).join(" ")`
	tabA.waitJS(60*time.Second, "the conflict on A's page", conflictsJS, "notes.txt")
	tabB.waitJS(60*time.Second, "the conflict on B's page", conflictsJS, "notes.txt")
	var copyPath string
	tabA.eval("the conflict copy's path", `document.querySelector("[data-testid=conflict]").dataset.path`, &copyPath)
	if !strings.HasPrefix(copyPath, "notes.conflict-") {
		t.Fatalf("conflict copy path %q", copyPath)
	}
	waitFor(t, 60*time.Second, "the conflict copy on both disks", func() bool {
		_, errA := os.Stat(filepath.Join(dirA, copyPath))
		_, errB := os.Stat(filepath.Join(dirB, copyPath))
		return errA == nil && errB == nil
	})
	other, err := os.ReadFile(filepath.Join(dirA, copyPath))
	if err != nil {
		t.Fatal(err)
	}
	winner, _ := os.ReadFile(filepath.Join(dirA, "notes.txt"))
	if edits := map[string]bool{string(winner): true, string(other): true}; !edits["bravo's offline edit\n"] || !edits["alpha's edit\n"] {
		t.Fatalf("the two edits are not both kept: notes.txt %q, %s %q", winner, copyPath, other)
	}
	tabA.screenshot("conflict-2-a-both-sides")
	tabA.click(20*time.Second, "keep the conflict copy's side", `[data-testid=conflict] [data-testid=keep-this]`)
	tabA.waitJS(30*time.Second, "the conflict gone from A's page", `document.getElementById("conflicts").hidden`, true)
	tabB.waitJS(60*time.Second, "the conflict gone from B's page", `document.getElementById("conflicts").hidden`, true)
	waitFile(t, filepath.Join(dirA, "notes.txt"), string(other))
	waitFile(t, filepath.Join(dirB, "notes.txt"), string(other))
	for _, dir := range []string{dirA, dirB} {
		waitFor(t, 60*time.Second, "the conflict copy removed from "+dir, func() bool {
			_, err := os.Stat(filepath.Join(dir, copyPath))
			return os.IsNotExist(err)
		})
	}
	tabB.waitJS(30*time.Second, "B's browser to show the kept side", rowAttr("notes.txt", "size"), fmt.Sprint(len(other)))
	tabB.screenshot("conflict-3-b-resolved")

	for _, tb := range []*tab{tabA, tabB} {
		tb.waitJS(5*time.Second, "no error shown on the page", `document.getElementById("error").hidden`, true)
		tb.noPageErrors()
	}
}

// rowSel selects the file browser's row of a file.
func rowSel(path string) string {
	return `[data-testid=file][data-path=` + jsString(path) + `]`
}

// rowAttr is a JavaScript expression: the data-NAME attribute of a file's
// row in the file browser, or "absent".
func rowAttr(path, name string) string {
	return fmt.Sprintf(`((document.querySelector(%s) || {dataset: {%s: "absent"}}).dataset.%s)`, jsString(rowSel(path)), name, name)
}

// waitFile waits until the file at p holds want (checking as waitFor does).
func waitFile(t *testing.T, p, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(p)
		if err == nil && string(b) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 60s waiting for %s to hold %q: it holds %q (%v)", p, want, b, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWebDesktopBeforeMesh: a daemon in no mesh yet shows how to join
// one, and the open page follows by itself when `mesh join` is run.
// (After `mesh init` meshd sends no event yet, so that is not tested.)
func TestWebDesktopBeforeMesh(t *testing.T) {
	br := newBrowser(t)
	a := startDaemon(t, "a")
	a.mesh("init", "--name", "alpha")
	b := startDaemon(t, "b", "--http", "127.0.0.1:0")
	base, token := webLogin(t, b)
	tb := br.tab("b")
	tb.do(30*time.Second, "log in",
		chromedp.Navigate(base+"/login?"+url.Values{"token": {token}}.Encode()),
		chromedp.WaitVisible(`#no-mesh`, chromedp.ByQuery))
	tb.waitJS(10*time.Second, "the live event stream", `document.getElementById("live").dataset.state`, "open")
	tb.waitJS(5*time.Second, "the mesh's cards hidden", `document.getElementById("folders").hidden && document.getElementById("invite").hidden`, true)
	tb.screenshot("before-mesh-b")
	b.mesh("join", a.invite(), "--name", "bravo")
	tb.waitJS(30*time.Second, "the page to follow mesh join", `document.getElementById("no-mesh").hidden`, true)
	tb.waitJS(30*time.Second, "both devices listed, online",
		`[...document.querySelectorAll("#device-list [data-testid=device]")].map(e => e.dataset.name + ":" + e.dataset.online).sort().join(" ")`, "alpha:true bravo:true")
	tb.waitJS(5*time.Second, "the self name in the header", `document.getElementById("self-name").textContent`, "bravo")
	tb.waitJS(5*time.Second, "no error shown on the page", `document.getElementById("error").hidden`, true)
	tb.noPageErrors()
}
