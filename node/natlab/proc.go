package natlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
)

// Proc is a long-running process inside a lab host, started by Host.Start.
// Its stdout lines are queued for NextLine and WaitLine; stdout and stderr
// are both logged through t.Logf with the host's name, and the last 64 KiB
// of stderr goes into every error.
type Proc struct {
	host   *Host
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser
	done   chan struct{} // closed when the process has exited and its output is drained

	mu      sync.Mutex
	lines   []string
	next    int
	changed chan struct{} // closed and replaced on every new line and on exit
	waitErr error
	stopped bool // Stop was called
	stderr  tail
}

// Start runs name with args inside the host and registers a cleanup that
// stops it. It fails the test if the process cannot be started.
func (h *Host) Start(t T, name string, args ...string) *Proc {
	t.Helper()
	p, err := h.StartProc(t, name, args...)
	if err != nil {
		t.Fatalf("natlab: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Logf("natlab: %v", err)
		}
	})
	return p
}

// StartProc is Start without the cleanup and with an error instead of
// Fatalf; the caller must Stop the process. t is used only for logging.
func (h *Host) StartProc(t T, name string, args ...string) (*Proc, error) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proc{host: h, cancel: cancel, done: make(chan struct{}), changed: make(chan struct{})}
	p.cmd = h.Command(ctx, name, args...)
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%s: stdin: %w", p, err)
	}
	p.stdin = stdin
	label := h.name + ": " + baseName(name)
	p.cmd.Stdout = &lineWriter{fn: func(line string) {
		t.Logf("[%s] %s", label, line)
		p.mu.Lock()
		p.lines = append(p.lines, line)
		p.notifyLocked()
		p.mu.Unlock()
	}}
	p.cmd.Stderr = &lineWriter{fn: func(line string) {
		t.Logf("[%s stderr] %s", label, line)
		p.mu.Lock()
		p.stderr.add(line)
		p.mu.Unlock()
	}}
	if err := p.cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("%s: start: %w", p, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.notifyLocked()
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

func baseName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}

func (p *Proc) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// String names the process and where it runs, for error messages.
func (p *Proc) String() string {
	return fmt.Sprintf("%q in namespace %s", strings.Join(p.cmd.Args[3:], " "), p.host.ns)
}

// Stdin is the process's standard input; Stop closes it.
func (p *Proc) Stdin() io.Writer { return p.stdin }

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Stderr returns the tail of what the process wrote to stderr.
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Lines returns every stdout line so far.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// NextLine returns the next unread stdout line. It fails when ctx ends or
// the process exits with no unread line left; the error carries the
// process's stderr.
func (p *Proc) NextLine(ctx context.Context) (string, error) {
	for {
		p.mu.Lock()
		if p.next < len(p.lines) {
			l := p.lines[p.next]
			p.next++
			p.mu.Unlock()
			return l, nil
		}
		changed := p.changed
		exited := isClosed(p.done) || p.waitErr != nil
		p.mu.Unlock()
		if exited {
			return "", p.errorf("exited (%s) before the expected output", p.exitErr())
		}
		select {
		case <-changed:
		case <-p.done:
		case <-ctx.Done():
			return "", p.errorf("waiting for output: %w", ctx.Err())
		}
	}
}

// WaitLine reads stdout lines until match accepts one and returns it. Lines
// it skips are consumed.
func (p *Proc) WaitLine(ctx context.Context, match func(line string) bool) (string, error) {
	for {
		l, err := p.NextLine(ctx)
		if err != nil {
			return "", err
		}
		if match(l) {
			return l, nil
		}
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// exitErr describes how the process ended, for messages.
func (p *Proc) exitErr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waitErr == nil {
		return "exit status 0"
	}
	return p.waitErr.Error()
}

func (p *Proc) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %w; stderr:\n%s", p, fmt.Errorf(format, args...), p.Stderr())
}

// Signal sends sig to the process (e.g. SIGKILL to simulate a crash).
func (p *Proc) Signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return p.errorf("signal %v: %w", sig, err)
	}
	return nil
}

// Wait waits for the process to exit by itself and returns its exit error.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		return p.errorf("waiting for exit: %w", ctx.Err())
	}
	p.mu.Lock()
	err := p.waitErr
	p.mu.Unlock()
	if err != nil {
		return p.errorf("%w", err)
	}
	return nil
}

// Stop closes stdin, sends SIGTERM, waits for the process to exit (SIGKILL
// after StopGrace) and returns an error if it exited with a failure. It is
// safe to call more than once.
func (p *Proc) Stop() error {
	p.mu.Lock()
	already := p.stopped
	p.stopped = true
	p.mu.Unlock()
	if !already {
		_ = p.stdin.Close()
		p.cancel()
	}
	<-p.done
	p.mu.Lock()
	err := p.waitErr
	p.mu.Unlock()
	if err == nil || errors.Is(err, context.Canceled) {
		// Exited with status 0, before or after our SIGTERM.
		return nil
	}
	return p.errorf("stop: %w", err)
}

// lineWriter calls fn for every complete line written to it.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func(string)
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.fn(string(bytes.TrimRight(w.buf[:i], "\r")))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a runaway line: pass it on in pieces
		w.fn(string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(b), nil
}

// tail keeps about the last 64 KiB of lines.
type tail struct {
	lines []string
	size  int
}

func (t *tail) add(l string) {
	t.lines = append(t.lines, l)
	t.size += len(l) + 1
	for t.size > 64<<10 && len(t.lines) > 1 {
		t.size -= len(t.lines[0]) + 1
		t.lines = t.lines[1:]
	}
}

func (t *tail) String() string { return strings.Join(t.lines, "\n") }
