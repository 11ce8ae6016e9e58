package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// ShutdownBudget bounds Run's shutdown: from the cancellation of its
// context (SIGTERM, SIGINT) to the node closed. A part that does not stop
// within it (a badger store retrying a flush into a directory that is gone,
// say) is abandoned: Run logs one ERROR line naming it and returns an error
// wrapping ErrShutdownTimeout, and meshd exits with status 1.
const ShutdownBudget = 10 * time.Second

// ErrShutdownTimeout is wrapped by Run's error when the shutdown overran
// ShutdownBudget. Run has logged it already.
var ErrShutdownTimeout = errors.New("shutdown did not finish in time")

// Run serves the mesh protocols and discovery, and runs services (each
// until its context is done: the local API, node/localapi, which cmd/meshd
// opens before Run), until ctx is cancelled, then closes the node. It
// returns after all its goroutines exit, or after ShutdownBudget with an
// ErrShutdownTimeout error, abandoning the part that did not stop (the
// caller is expected to exit). The core never starts an API itself.
func (n *Node) Run(ctx context.Context, services ...func(context.Context)) error {
	served := make(chan struct{})
	done := make(chan error, 1)
	go func() { // owned by Run; abandoned only when the shutdown overruns
		err := n.serve(ctx, services)
		close(served)
		if cerr := n.Close(); cerr != nil {
			n.log.Warn("closing the node", "err", cerr)
		}
		done <- err
	}()
	select {
	case <-ctx.Done():
	case <-served: // serve failed to start
	}
	timer := time.NewTimer(ShutdownBudget)
	defer timer.Stop()
	select {
	case err := <-done:
		if err == nil {
			n.log.Info("meshd stopped")
		}
		return err
	case <-timer.C:
	}
	part := n.stop.get()
	attrs := []any{}
	if msg, since := n.health.state(); msg != "" {
		attrs = append(attrs, "store_error", msg, "store_error_since", since)
	}
	n.log.Error(fmt.Sprintf("shutdown: %s did not stop within %s; exiting without it", part, ShutdownBudget), attrs...)
	return fmt.Errorf("%w: %s did not stop within %s", ErrShutdownTimeout, part, ShutdownBudget)
}

// Ready is closed once Run serves: the protocols are registered, the
// folders and replicas are loaded and every task has started, so that the
// methods that need a running node (Join, AddFolder, WaitFolder...) may be
// called from another goroutine. It stays open if Run fails to start. meshd does not need it;
// an in-process mesh (node/meshtest) waits on it.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// partTasks is the stop part while Run waits for its goroutines.
const partTasks = "tasks"

// stopState is what the shutdown is doing: the part being stopped, and
// Run's goroutines still running.
type stopState struct {
	mu      sync.Mutex
	part    string
	running map[string]int
}

func (s *stopState) set(part string) {
	s.mu.Lock()
	s.part = part
	s.mu.Unlock()
}

func (s *stopState) started(task string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		s.running = map[string]int{}
	}
	s.running[task]++
}

func (s *stopState) ended(task string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[task]--; s.running[task] <= 0 {
		delete(s.running, task)
	}
}

// get names what the shutdown waits for.
func (s *stopState) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.part {
	case "":
		return "the node"
	case partTasks:
		var names []string
		for t := range s.running {
			names = append(names, t)
		}
		sort.Strings(names)
		return "task(s) " + strings.Join(names, ", ")
	}
	return s.part
}
