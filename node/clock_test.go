package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/node/internal/wire"
)

// fakeClock is a Config.Now that moves only when the test says so.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// newClockNode opens a node (not run) on loopback whose clock is clk, in a
// mesh of its own.
func newClockNode(t *testing.T, clk *fakeClock) *Node {
	t.Helper()
	n, err := New(Config{
		Home:        t.TempDir(),
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		NoMDNS:      true,
		HTTPAddr:    "off",
		Now:         clk.now,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	if _, err := n.Init("owner"); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return n
}

// redeemAt serves one redemption of inv by joiner on n (the redeemer's
// side of ProtoInvite, over an in-memory pipe) and returns the type and
// payload of the answer to the hello: a welcome after a challenge was
// proven, or a refusal.
func redeemAt(t *testing.T, n *Node, inv *identity.Invite, joiner peer.ID, name string) (byte, []byte) {
	t.Helper()
	server, client := net.Pipe()
	defer client.Close()
	_ = client.SetDeadline(time.Now().Add(20 * time.Second)) // a bound on a stuck test, not a decision
	served := make(chan error, 1)
	go func() { // owned by this call: it waits for served below
		defer server.Close()
		served <- serveInvite(server, joiner, nodeInviteHost{n}, n.log)
	}()
	g, err := inv.Grant.MarshalBinary()
	if err != nil {
		t.Fatalf("marshal grant: %v", err)
	}
	if err := wire.WriteFrame(client, msgHello, wire.AppendBytes(wire.AppendBytes(nil, g), []byte(name))); err != nil {
		t.Fatalf("write hello: %v", err)
	}
	r := wire.NewReader(client)
	defer r.Release()
	typ, p, err := r.ReadFrame(maxInviteFrame)
	if err != nil {
		t.Fatalf("read the answer to hello: %v", err)
	}
	if typ == msgChallenge {
		proof, err := inv.Prove(joiner, n.id, name, p)
		if err != nil {
			t.Fatalf("prove: %v", err)
		}
		if err := wire.WriteFrame(client, msgProof, proof); err != nil {
			t.Fatalf("write proof: %v", err)
		}
		if typ, p, err = r.ReadFrame(maxInviteFrame); err != nil {
			t.Fatalf("read the answer to the proof: %v", err)
		}
	}
	if err := <-served; err != nil {
		t.Fatalf("serveInvite: %v", err)
	}
	return typ, p
}

// TestInviteExpiryFollowsConfigNow: an invite's expiry is set, served
// and checked by Config.Now, not the wall clock. The fake clock runs years
// ahead of the wall clock, so by the wall clock the invites stay valid
// throughout: a refusal can come only from the fake clock.
func TestInviteExpiryFollowsConfigNow(t *testing.T) {
	t0 := time.Date(2040, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := &fakeClock{t: t0}
	n := newClockNode(t, clk)
	ok, err := n.NewInvite(identity.RoleMember, time.Hour)
	if err != nil {
		t.Fatalf("NewInvite: %v", err)
	}
	late, err := n.NewInvite(identity.RoleMember, time.Hour)
	if err != nil {
		t.Fatalf("NewInvite: %v", err)
	}
	expires := t0.Add(time.Hour)
	if !ok.Grant.Expires.Equal(expires) {
		t.Fatalf("invite made at %s for 1h expires at %s, want %s (Config.Now)", t0, ok.Grant.Expires, expires)
	}
	joinerKey, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	joiner, _ := peer.IDFromPrivateKey(joinerKey)

	// Half an hour later by the fake clock: redeemed.
	redeemedAt := t0.Add(30 * time.Minute)
	clk.set(redeemedAt)
	if typ, p := redeemAt(t, n, ok, joiner, "phone"); typ != msgWelcome {
		t.Fatalf("redeem an invite 30 min before its expiry: answer type %d %q, want a welcome (%d)", typ, p, msgWelcome)
	}
	m, found := n.membership().Lookup(joiner)
	if !found || m.Name != "phone" {
		t.Fatalf("after the welcome the joiner is not in the log: %+v, %v", m, found)
	}
	if !m.AddedAt.Equal(redeemedAt) {
		t.Errorf("joiner added at %s, want the fake clock's %s", m.AddedAt, redeemedAt)
	}

	// At its expiry by the fake clock (years after the wall clock's now):
	// refused by the redeemer, with when it expired, and by Join.
	clk.set(expires)
	other, _, _ := crypto.GenerateEd25519Key(nil)
	otherID, _ := peer.IDFromPrivateKey(other)
	typ, p := redeemAt(t, n, late, otherID, "laptop")
	want := fmt.Sprintf("invite expired at %s", expires.Format(time.RFC3339))
	if typ != msgRefused || string(p) != want {
		t.Fatalf("redeem an invite at its expiry: answer type %d %q, want a refusal (%d) %q", typ, p, msgRefused, want)
	}
	if _, found := n.membership().Lookup(otherID); found {
		t.Fatalf("a refused joiner is in the log")
	}
	_, err = n.Join(context.Background(), late.Code(), "laptop")
	if !errors.Is(err, identity.ErrInviteExpired) || !strings.Contains(err.Error(), expires.Format(time.RFC3339)) {
		t.Fatalf("Join with an invite at its expiry: %v, want %v at %s", err, identity.ErrInviteExpired, expires.Format(time.RFC3339))
	}

	// A second before its expiry Join gets past the expiry check (and stops
	// at the next one: this device is in a mesh already).
	clk.set(expires.Add(-time.Second))
	_, err = n.Join(context.Background(), late.Code(), "laptop")
	if err == nil || errors.Is(err, identity.ErrInviteExpired) || !strings.Contains(err.Error(), "already belongs to a mesh") {
		t.Fatalf("Join with an invite a second before its expiry: %v, want past the expiry check (already in a mesh)", err)
	}
}
