package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/node/internal/wire"
)

// Message types of node.ProtoInvite (see node/invite.go).
const (
	ivMsgHello     = 1
	ivMsgChallenge = 2
	ivMsgProof     = 3
	ivMsgWelcome   = 4
	ivMsgRefused   = 5
)

// ivResult is one redemption attempt by the test-only invite client.
type ivResult struct {
	at      peer.ID
	welcome *identity.Log // the log in the welcome, if welcomed
	refused string        // the reason, if refused
	err     error         // anything else
}

// ivRedeem speaks /meshwork/invite/1.0.0 as a joining device would (see
// node.Node.redeemAt): hello, challenge, proof, welcome or refusal.
func ivRedeem(ctx context.Context, h host.Host, inv *identity.Invite, at peer.ID, name string) ivResult {
	res := ivResult{at: at}
	s, err := h.NewStream(ctx, at, node.ProtoInvite)
	if err != nil {
		res.err = fmt.Errorf("open invite stream to %s: %w", at, err)
		return res
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(20 * time.Second))
	grant, err := inv.Grant.MarshalBinary()
	if err != nil {
		res.err = err
		return res
	}
	if err := wire.WriteFrame(s, ivMsgHello, wire.AppendBytes(wire.AppendBytes(nil, grant), []byte(name))); err != nil {
		res.err = err
		return res
	}
	r := bufio.NewReader(s)
	typ, p, err := wire.ReadFrame(r, 64<<10)
	switch {
	case err != nil:
		res.err = fmt.Errorf("read challenge from %s: %w", at, err)
		return res
	case typ == ivMsgRefused:
		res.refused = string(p)
		return res
	case typ != ivMsgChallenge:
		res.err = fmt.Errorf("message type %d from %s, want a challenge", typ, at)
		return res
	}
	proof, err := inv.Prove(h.ID(), at, name, p)
	if err != nil {
		res.err = err
		return res
	}
	if err := wire.WriteFrame(s, ivMsgProof, proof); err != nil {
		res.err = err
		return res
	}
	typ, p, err = wire.ReadFrame(r, 8<<20)
	switch {
	case err != nil:
		res.err = fmt.Errorf("read welcome from %s: %w", at, err)
	case typ == ivMsgRefused:
		res.refused = string(p)
	case typ != ivMsgWelcome:
		res.err = fmt.Errorf("message type %d from %s, want a welcome", typ, at)
	default:
		res.welcome, res.err = identity.DecodeLog(p)
	}
	return res
}

// ivCount counts the devices d lists with id.
func ivCount(d *daemon, id string) int {
	n := 0
	for _, dev := range d.devices() {
		if dev.ID == id {
			n++
		}
	}
	return n
}

// TestHostileInviteTwice (issue 14, row 7): one invite code redeemed at
// two members at the same instant by a test-only client (a fresh key
// speaking the real invite protocol). The grant names its inviter A as the
// only redeemer: A welcomes the device, B refuses with a reason naming A;
// membership converges with the device joined once, and the mesh still
// syncs a change afterwards.
func TestHostileInviteTwice(t *testing.T) {
	a, b, c := startDaemon(t, "a"), startDaemon(t, "b"), startDaemon(t, "c")
	idA, idB := joinPair(t, a, b)
	c.mesh("join", a.invite(), "--name", "charlie")
	idC := c.status().DeviceID
	waitFor(t, 20*time.Second, "all three online", func() bool {
		return a.online(idC) && b.online(idC) && c.online(idA) && c.online(idB)
	})

	code, _, _ := strings.Cut(a.invite(), "-") // the mesh key part is not the invite's
	inv, err := identity.ParseInviteCode(code)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Grant.Redeemers) != 1 || inv.Grant.Redeemers[0].String() != idA {
		t.Fatalf("the code names redeemers %v, want only its inviter %s", inv.Grant.Redeemers, idA)
	}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newPlainHost(t, key)
	joiner := h.ID().String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ais := []peer.AddrInfo{addrInfo(t, a), addrInfo(t, b)}
	for _, ai := range ais {
		if err := h.Connect(ctx, ai); err != nil {
			t.Fatalf("connect to %s: %v", ai.ID, err)
		}
	}

	// Both redemptions start together.
	results := make([]ivResult, len(ais))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, ai := range ais {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = ivRedeem(ctx, h, inv, ai.ID, "hostile")
		}()
	}
	close(start)
	wg.Wait()

	ra, rb := results[0], results[1]
	if ra.err != nil || ra.welcome == nil {
		t.Fatalf("a (the inviter) did not welcome the device: refused %q, err %v", ra.refused, ra.err)
	}
	if !ra.welcome.IsMember(h.ID()) {
		t.Fatal("a's welcome log does not list the joiner")
	}
	if rb.welcome != nil || rb.err != nil {
		t.Fatalf("b did not refuse: welcome %v, err %v", rb.welcome != nil, rb.err)
	}
	if !strings.Contains(rb.refused, "can only be redeemed at") || !strings.Contains(rb.refused, idA) {
		t.Fatalf("b's refusal does not say where the invite is redeemable: %q", rb.refused)
	}
	t.Logf("b refused: %s", rb.refused)

	// Every device converges on the joiner, listed once, and 4 members.
	for _, d := range []*daemon{a, b, c} {
		waitFor(t, 30*time.Second, d.name+" lists the joiner once among 4 members", func() bool {
			return ivCount(d, joiner) == 1 && d.status().Members == 4
		})
	}
	if again := ivRedeem(ctx, h, inv, ais[0].ID, "hostile2"); again.welcome != nil || again.refused == "" {
		t.Fatalf("the used invite was redeemed again at a: %+v", again)
	}

	// The mesh still works: a change made on a reaches b and c.
	dirA := filepath.Join(t.TempDir(), "docs-a")
	write(t, filepath.Join(dirA, "before.txt"), "before\n")
	a.mesh("folder", "add", dirA, "--name", "docs")
	dirB, dirC := filepath.Join(t.TempDir(), "docs-b"), filepath.Join(t.TempDir(), "docs-c")
	waitFor(t, 30*time.Second, "b and c see the folder", func() bool {
		return strings.Contains(b.mesh("folder", "list"), "docs") && strings.Contains(c.mesh("folder", "list"), "docs")
	})
	b.mesh("folder", "join", "docs", dirB)
	c.mesh("folder", "join", "docs", dirC)
	write(t, filepath.Join(dirA, "after.txt"), "after the double redemption\n")
	for _, dir := range []string{dirB, dirC} {
		waitFor(t, 60*time.Second, "the change reaches "+dir, func() bool {
			got, err := os.ReadFile(filepath.Join(dir, "after.txt"))
			return err == nil && string(got) == "after the double redemption\n"
		})
	}
}
