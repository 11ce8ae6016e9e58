package exchange

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/syncproto"
)

// memberSet is a mesh membership for tests.
type memberSet struct {
	mu sync.Mutex
	m  map[peer.ID]bool
}

func newMemberSet() *memberSet { return &memberSet{m: make(map[peer.ID]bool)} }

func (s *memberSet) IsMember(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[p]
}

func (s *memberSet) add(ids ...peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.m[id] = true
	}
}

// node is one device of a test mesh: a real libp2p host on loopback TCP
// and an engine.
type node struct {
	t       *testing.T
	name    string
	key     crypto.PrivKey
	members *memberSet
	store   Store

	h    host.Host
	e    *Engine
	done chan error

	changes chan []syncproto.Item         // OnChange calls (dropped when full)
	gate    atomic.Pointer[chan struct{}] // when set, OnChange signals entered and waits
	entered chan struct{}
}

// newNode starts a device with a new key and a memory store.
func newNode(t *testing.T, name string, members *memberSet) *node {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, name: name, key: key, members: members, store: NewMemStore()}
	n.start()
	members.add(n.h.ID())
	return n
}

// start creates the host and engine (again, after stop) with n's key and
// store.
func (n *node) start() {
	t := n.t
	t.Helper()
	h, err := libp2p.New(libp2p.Identity(n.key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	n.h = h
	n.changes = make(chan []syncproto.Item, 4096)
	n.entered = make(chan struct{}, 1)
	var logger *slog.Logger
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", n.name)
	}
	changes := n.changes
	n.e = New(h, Config{
		Members: n.members,
		Store:   n.store,
		OnChange: func(obj syncproto.ObjectID, items []syncproto.Item) {
			if g := n.gate.Load(); g != nil {
				n.entered <- struct{}{}
				<-*g
			}
			select {
			case changes <- items:
			default:
			}
		},
	}, logger)
	n.done = make(chan error, 1)
	e := n.e
	go func() { n.done <- e.Run(context.Background()) }()
	done := n.done
	t.Cleanup(func() {
		e.Close()
		<-done
		h.Close()
	})
}

// stop closes the engine and the host (a restart calls start again).
func (n *node) stop() {
	n.t.Helper()
	if err := n.e.Close(); err != nil {
		n.t.Fatal(err)
	}
	err := <-n.done
	n.done <- err // for the cleanup
	n.h.Close()
	if err != nil && !errors.Is(err, ErrClosed) { // ErrClosed: Run started after Close
		n.t.Fatalf("%s: run: %v", n.name, err)
	}
}

func (n *node) dev() syncproto.DeviceID { return syncproto.DeviceID(n.h.ID().String()) }

// addObject adds a replica of id with the given members.
func (n *node) addObject(id syncproto.ObjectID, members map[syncproto.DeviceID]syncproto.Role) *syncproto.Object {
	n.t.Helper()
	o, err := syncproto.NewObject(id, syncproto.TypeList, members, n.e.ObjectConfig())
	if err != nil {
		n.t.Fatal(err)
	}
	if err := n.e.Add(o); err != nil {
		n.t.Fatal(err)
	}
	return o
}

func (n *node) update(obj syncproto.ObjectID, item, text string) {
	n.t.Helper()
	if _, err := n.e.Update(obj, syncproto.ItemID(item), syncproto.Content{Title: item, Body: syncproto.Text(text)}); err != nil {
		n.t.Fatalf("%s: update %s: %v", n.name, item, err)
	}
}

func (n *node) item(obj syncproto.ObjectID, item string) (syncproto.Item, bool) {
	o := n.e.Object(obj)
	if o == nil {
		return syncproto.Item{}, false
	}
	return o.Item(syncproto.ItemID(item))
}

func (n *node) has(obj syncproto.ObjectID, item string) bool {
	_, ok := n.item(obj, item)
	return ok
}

func connect(t *testing.T, a, b *node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.h.Connect(ctx, peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
		t.Fatalf("connect %s to %s: %v", a.name, b.name, err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// converged reports whether every node holds obj with the same items.
func converged(obj syncproto.ObjectID, nodes ...*node) bool {
	var ref []syncproto.Item
	for i, n := range nodes {
		o := n.e.Object(obj)
		if o == nil {
			return false
		}
		items := o.Items()
		if i == 0 {
			ref = items
			continue
		}
		if len(items) != len(ref) {
			return false
		}
		for j := range items {
			if !items[j].Equal(ref[j]) {
				return false
			}
		}
	}
	return true
}

func connected(a, b *node) bool {
	return a.h.Network().Connectedness(b.h.ID()) == network.Connected
}

// roles builds a member list.
func roles(kv ...any) map[syncproto.DeviceID]syncproto.Role {
	m := make(map[syncproto.DeviceID]syncproto.Role)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(*node).dev()] = kv[i+1].(syncproto.Role)
	}
	return m
}
