package cli

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/meshwork/meshwork/node"
)

// The transcripts in testdata/script run the real mesh (this package's
// Main, registered as a command of the test binary) against real meshd
// processes built once from cmd/meshd (its run function is in a main
// package, so it cannot be registered in-process from here).

func TestMain(m *testing.M) {
	testscript.Main(removeMeshd{m}, map[string]func(){
		"mesh": func() { os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// removeMeshd runs the tests, then removes the meshd they built (once for
// every -count).
type removeMeshd struct{ m *testing.M }

func (r removeMeshd) Run() int {
	code := r.m.Run()
	if meshdBuild.dir != "" {
		os.RemoveAll(meshdBuild.dir)
	}
	return code
}

// scriptBound is how long a transcript's polling command waits for its
// condition: a bound for a stuck daemon, not a timed assertion.
const scriptBound = 60 * time.Second

var meshdBuild struct {
	once sync.Once
	dir  string
	skip string // why the binaries cannot be built, if they cannot
}

// meshdDir builds meshd into a directory once per test binary; it skips
// the test if there is no go command or the build fails (e.g. offline
// without a module cache).
func meshdDir(t *testing.T) string {
	b := &meshdBuild
	b.once.Do(func() {
		goCmd, err := exec.LookPath("go")
		if err != nil {
			b.skip = "no go command in PATH to build meshd: " + err.Error()
			return
		}
		dir, err := os.MkdirTemp("", "meshwork-cli-bin")
		if err != nil {
			b.skip = "temp dir for meshd: " + err.Error()
			return
		}
		out, err := exec.Command(goCmd, "build", "-o", dir+"/", "github.com/meshwork/meshwork/cmd/meshd").CombinedOutput()
		if err != nil {
			os.RemoveAll(dir)
			b.skip = fmt.Sprintf("go build cmd/meshd: %v\n%s", err, out)
			return
		}
		b.dir = dir
	})
	if b.skip != "" {
		t.Skip("CLI transcripts need meshd: " + b.skip)
	}
	return b.dir
}

// TestScripts runs the CLI transcripts in testdata/script: every mesh
// command's output, its --json form and its error lines with their hints.
// Besides testscript's own commands a script has waitsock, waitmesh,
// waitfile (bounded polls, no sleeps), grab (a value from stdout into a
// variable), echoserver, freeport and dial (for tunnels); see below.
func TestScripts(t *testing.T) {
	bin := meshdDir(t)
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", bin+string(filepath.ListSeparator)+env.Getenv("PATH"))
			env.Setenv("MESH_VERSION", node.Version)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitsock":   cmdWaitsock,
			"waitmesh":   cmdWaitmesh,
			"waitfile":   cmdWaitfile,
			"grab":       cmdGrab,
			"echoserver": cmdEchoserver,
			"freeport":   cmdFreeport,
			"dial":       cmdDial,
		},
	})
}

// poll calls cond until it holds, or fails the script after scriptBound.
// what describes the condition (it may say what the last try saw).
func poll(ts *testscript.TestScript, what func() string, cond func() bool) {
	deadline := time.Now().Add(scriptBound)
	for !cond() {
		if time.Now().After(deadline) {
			ts.Fatalf("gave up after %s waiting for %s", scriptBound, what())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitsock HOME: wait until the meshd of HOME answers on its control
// socket (GET /v1/status).
func cmdWaitsock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitsock HOME")
	}
	home := ts.MkAbs(args[0])
	var last error
	what := func() string {
		return fmt.Sprintf("meshd control socket %s (last try: %v)", node.SocketPath(home), last)
	}
	poll(ts, what, func() bool {
		c := newClient(home)
		defer c.http.CloseIdleConnections()
		var st node.Status
		last = c.call("GET", "/v1/status", nil, &st, nil)
		return last == nil
	})
}

// waitmesh HOME REGEXP ARGS...: run 'mesh --home HOME ARGS...' until it
// succeeds with a stdout that matches REGEXP (multi-line mode); that run's
// stdout and stderr become the script's.
func cmdWaitmesh(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: waitmesh HOME REGEXP ARGS...")
	}
	re := regexp.MustCompile("(?m)" + args[1])
	cmdArgs := append([]string{"--home", ts.MkAbs(args[0])}, args[2:]...)
	var out, errOut string
	what := func() string {
		return fmt.Sprintf("mesh %s to print %s; last stdout:\n%s\nlast stderr:\n%s", strings.Join(cmdArgs, " "), args[1], out, errOut)
	}
	poll(ts, what, func() bool {
		cmd := exec.Command("mesh", cmdArgs...)
		cmd.Dir = ts.Getenv("WORK")
		cmd.Env = []string{"PATH=" + ts.Getenv("PATH"), "HOME=" + ts.Getenv("HOME"), "TMPDIR=" + ts.Getenv("TMPDIR")}
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		out, errOut = o.String(), e.String()
		return err == nil && re.MatchString(out)
	})
	fmt.Fprint(ts.Stdout(), out)
	fmt.Fprint(ts.Stderr(), errOut)
}

// waitfile FILE REGEXP: wait until FILE holds text that matches REGEXP
// (multi-line mode), e.g. the output of a background command.
func cmdWaitfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitfile FILE REGEXP")
	}
	re := regexp.MustCompile("(?m)" + args[1])
	path := ts.MkAbs(args[0])
	var b []byte
	what := func() string { return fmt.Sprintf("%s to hold %s; it holds:\n%s", args[0], args[1], b) }
	poll(ts, what, func() bool {
		b, _ = os.ReadFile(path)
		return re.Match(b)
	})
}

// grab VAR REGEXP: set VAR to the first group of REGEXP (multi-line mode)
// in the last command's stdout; fail if it does not match.
func cmdGrab(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: grab VAR REGEXP")
	}
	re := regexp.MustCompile("(?m)" + args[1])
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("grab %s: no match for %q in stdout", args[0], args[1])
	}
	ts.Setenv(args[0], m[1])
}

// echoserver VAR TEXT: a TCP service on loopback that writes TEXT and a
// newline to each connection and closes it; VAR is set to its address.
// The script owns it: it closes when the script ends.
func cmdEchoserver(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: echoserver VAR TEXT")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by the script's end
			}
			_, _ = io.WriteString(c, args[1]+"\n")
			c.Close()
		}
	}()
	ts.Defer(func() { ln.Close(); <-done })
	ts.Setenv(args[0], ln.Addr().String())
}

// freeport VAR: set VAR to a loopback address with a port that was free.
func cmdFreeport(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Setenv(args[0], ln.Addr().String())
	ln.Close()
}

// dial ADDR: connect to ADDR until a connection yields data, and print
// it. '! dial ADDR' fails if one connection attempt yields data.
func cmdDial(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: dial ADDR")
	}
	read := func() string {
		c, err := net.DialTimeout("tcp", args[0], 5*time.Second)
		if err != nil {
			return ""
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	if neg {
		if got := read(); got != "" {
			ts.Fatalf("dial %s: got %q, want no data", args[0], got)
		}
		return
	}
	var got string
	poll(ts, func() string { return "data from " + args[0] }, func() bool {
		got = read()
		return got != ""
	})
	fmt.Fprint(ts.Stdout(), got)
}
