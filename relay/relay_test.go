package relay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/relay"
)

// testLogger logs to the test output when -v is given, else nowhere.
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

func newKey(t *testing.T) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func peerID(t *testing.T, k crypto.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// startRelay runs a relay on loopback TCP until the test ends.
func startRelay(t *testing.T, mutate func(*relay.Config)) *relay.Server {
	t.Helper()
	cfg := relay.Config{
		Key:            newKey(t),
		ListenAddrs:    []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
		ResourceMemory: 1 << 30,
		ResourceFDs:    1024,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := relay.New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("relay.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("relay Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("relay Run did not return after cancel")
		}
		if err := srv.Close(); err != nil {
			t.Errorf("relay Close after Run: %v", err)
		}
	})
	return srv
}

// newClient starts a plain go-libp2p host with key and connects it to srv.
// listen=false gives a host without listen addresses (reachable only
// through the relay).
func newClient(t *testing.T, key crypto.PrivKey, srv *relay.Server, listen bool) host.Host {
	t.Helper()
	opts := []libp2p.Option{libp2p.Identity(key), libp2p.DisableMetrics(), libp2p.EnableRelay()}
	if listen {
		opts = append(opts, libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	} else {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, srv.AddrInfo()); err != nil {
		t.Fatalf("connect to relay: %v", err)
	}
	return h
}

func reserve(t *testing.T, h host.Host, srv *relay.Server) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := client.Reserve(ctx, h, srv.AddrInfo())
	return err
}

func wantRefused(t *testing.T, err error) {
	t.Helper()
	var re client.ReservationError
	if !errors.As(err, &re) {
		t.Fatalf("reserve: got %v, want a refusal", err)
	}
	if re.Status != pbv2.Status_PERMISSION_DENIED {
		t.Fatalf("reserve: status %v (%v), want PERMISSION_DENIED", re.Status, err)
	}
}

func authenticate(t *testing.T, h host.Host, srv *relay.Server, log *identity.Log) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return relay.Authenticate(ctx, h, srv.ID(), log.Encode())
}

func wantAuthStatus(t *testing.T, err error, want relay.Status) {
	t.Helper()
	if !errors.Is(err, relay.ErrRefused) {
		t.Fatalf("authenticate: got %v, want a refusal", err)
	}
	var ae *relay.AuthError
	if !errors.As(err, &ae) || ae.Status != want {
		t.Fatalf("authenticate: got %v, want status %v", err, want)
	}
}

// testMesh is a mesh whose owner has added member.
type testMesh struct {
	ownerKey, memberKey crypto.PrivKey
	log                 *identity.Log
}

func newTestMesh(t *testing.T) *testMesh {
	t.Helper()
	m := &testMesh{ownerKey: newKey(t), memberKey: newKey(t)}
	now := time.Now()
	var err error
	m.log, err = identity.NewMesh(m.ownerKey, "owner", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.log.Add(m.ownerKey, peerID(t, m.memberKey), "member", identity.RoleMember, now); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReserveRefusedOutsideACL(t *testing.T) {
	srv := startRelay(t, func(c *relay.Config) {
		c.AllowDevices = []peer.ID{peerID(t, newKey(t))} // somebody else
	})
	h := newClient(t, newKey(t), srv, false)
	wantRefused(t, reserve(t, h, srv))
}

func TestReserveRefusedWithEmptyACL(t *testing.T) {
	srv := startRelay(t, nil)
	h := newClient(t, newKey(t), srv, false)
	wantRefused(t, reserve(t, h, srv))
}

func TestAllowDeviceReserves(t *testing.T) {
	key := newKey(t)
	srv := startRelay(t, func(c *relay.Config) { c.AllowDevices = []peer.ID{peerID(t, key)} })
	h := newClient(t, key, srv, false)
	if err := reserve(t, h, srv); err != nil {
		t.Fatalf("reserve as allowed device: %v", err)
	}
}

func TestOpenReserves(t *testing.T) {
	srv := startRelay(t, func(c *relay.Config) { c.Open = true })
	h := newClient(t, newKey(t), srv, false)
	if err := reserve(t, h, srv); err != nil {
		t.Fatalf("reserve on open relay: %v", err)
	}
}

func TestMeshProof(t *testing.T) {
	m := newTestMesh(t)
	other := newTestMesh(t) // a mesh the relay does not allow
	srv := startRelay(t, func(c *relay.Config) { c.AllowMeshes = []identity.MeshID{m.log.MeshID()} })

	t.Run("member", func(t *testing.T) {
		h := newClient(t, m.memberKey, srv, false)
		wantRefused(t, reserve(t, h, srv)) // not before the proof
		if err := authenticate(t, h, srv, m.log); err != nil {
			t.Fatalf("authenticate member: %v", err)
		}
		if err := reserve(t, h, srv); err != nil {
			t.Fatalf("reserve after proof: %v", err)
		}
	})
	t.Run("owner", func(t *testing.T) {
		h := newClient(t, m.ownerKey, srv, false)
		if err := authenticate(t, h, srv, m.log); err != nil {
			t.Fatalf("authenticate owner: %v", err)
		}
		if err := reserve(t, h, srv); err != nil {
			t.Fatalf("reserve after proof: %v", err)
		}
	})
	t.Run("non-member with a valid log", func(t *testing.T) {
		h := newClient(t, newKey(t), srv, false)
		wantAuthStatus(t, authenticate(t, h, srv, m.log), relay.StatusNotMember)
		wantRefused(t, reserve(t, h, srv))
	})
	t.Run("forged log", func(t *testing.T) {
		h := newClient(t, newKey(t), srv, false)
		forged := forgeLog(t, m)
		wantAuthStatus(t, relay.Authenticate(context.Background(), h, srv.ID(), forged), relay.StatusInvalidLog)
		wantRefused(t, reserve(t, h, srv))
	})
	t.Run("mesh not allowed", func(t *testing.T) {
		h := newClient(t, other.memberKey, srv, false)
		wantAuthStatus(t, authenticate(t, h, srv, other.log), relay.StatusMeshNotAllowed)
		wantRefused(t, reserve(t, h, srv))
	})
	t.Run("garbage", func(t *testing.T) {
		h := newClient(t, newKey(t), srv, false)
		err := relay.Authenticate(context.Background(), h, srv.ID(), []byte("not a log"))
		wantAuthStatus(t, err, relay.StatusInvalidLog)
	})
}

// forgeLog returns m's encoded log with one byte near the end flipped
// (inside the last entry's body or signature), so it no longer verifies.
func forgeLog(t *testing.T, m *testMesh) []byte {
	t.Helper()
	forged := bytes.Clone(m.log.Encode())
	forged[len(forged)-10] ^= 0x01
	if _, err := identity.DecodeLog(forged); err == nil {
		t.Fatal("flipped log still decodes")
	}
	return forged
}

func toIDs(ss []string) []protocol.ID {
	ids := make([]protocol.ID, len(ss))
	for i, s := range ss {
		ids[i] = protocol.ID(s)
	}
	return ids
}

func TestRevocationApplies(t *testing.T) {
	m := newTestMesh(t)
	srv := startRelay(t, func(c *relay.Config) { c.AllowMeshes = []identity.MeshID{m.log.MeshID()} })

	member := newClient(t, m.memberKey, srv, false)
	if err := authenticate(t, member, srv, m.log); err != nil {
		t.Fatalf("authenticate member: %v", err)
	}
	if err := reserve(t, member, srv); err != nil {
		t.Fatalf("reserve: %v", err)
	}

	// The owner revokes the member and presents the newer log.
	revoked := m.log.Clone()
	if err := revoked.Revoke(m.ownerKey, member.ID(), time.Now()); err != nil {
		t.Fatal(err)
	}
	owner := newClient(t, m.ownerKey, srv, false)
	if err := authenticate(t, owner, srv, revoked); err != nil {
		t.Fatalf("authenticate owner: %v", err)
	}
	// The member's renewal is refused, and presenting its old log again
	// does not help: the relay merged the revocation.
	wantRefused(t, reserve(t, member, srv))
	wantAuthStatus(t, authenticate(t, member, srv, m.log), relay.StatusNotMember)
}

func TestAuthorisationEndsWithConnection(t *testing.T) {
	m := newTestMesh(t)
	srv := startRelay(t, func(c *relay.Config) { c.AllowMeshes = []identity.MeshID{m.log.MeshID()} })
	h := newClient(t, m.memberKey, srv, false)
	if err := authenticate(t, h, srv, m.log); err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	if err := h.Network().ClosePeer(srv.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "relay to see the disconnect", func() bool {
		return srv.Host().Network().Connectedness(h.ID()) != network.Connected
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, srv.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, reserve(t, h, srv))
}

// circuitAddr is the address of target through srv, dialed by hand because
// a loopback relay hands out no public circuit address.
func circuitAddr(t *testing.T, srv *relay.Server, target peer.ID) peer.AddrInfo {
	t.Helper()
	var addrs []ma.Multiaddr
	for _, a := range srv.Addrs() {
		addrs = append(addrs, ma.StringCast(fmt.Sprintf("%s/p2p/%s/p2p-circuit", a, srv.ID())))
	}
	return peer.AddrInfo{ID: target, Addrs: addrs}
}

const sinkProto = "/meshwork/test/sink/1.0.0"

// serveSink makes h read whole streams and answer with their SHA-256.
func serveSink(h host.Host) {
	h.SetStreamHandler(sinkProto, func(s network.Stream) {
		hash := sha256.New()
		if _, err := io.Copy(hash, s); err != nil {
			_ = s.Reset()
			return
		}
		_, _ = s.Write(hash.Sum(nil))
		_ = s.Close()
	})
}

// sendThroughRelay dials target through srv from h and streams size
// pseudo-random bytes, returning an error if the echo of their hash fails.
func sendThroughRelay(t *testing.T, h host.Host, srv *relay.Server, target peer.ID, size int) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := h.Connect(ctx, circuitAddr(t, srv, target)); err != nil {
		return fmt.Errorf("connect through relay: %w", err)
	}
	for _, c := range h.Network().ConnsToPeer(target) {
		if !strings.Contains(c.RemoteMultiaddr().String(), "/p2p-circuit") {
			t.Fatalf("connection to target is not relayed: %s", c.RemoteMultiaddr())
		}
	}
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "test"), target, sinkProto)
	if err != nil {
		return fmt.Errorf("open stream through relay: %w", err)
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()

	hash := sha256.New()
	chunk := make([]byte, 256<<10)
	if _, err := rand.Read(chunk); err != nil {
		t.Fatal(err)
	}
	for sent := 0; sent < size; sent += len(chunk) {
		chunk[0]++ // vary the chunks
		n := min(len(chunk), size-sent)
		hash.Write(chunk[:n])
		if _, err := s.Write(chunk[:n]); err != nil {
			return fmt.Errorf("write at %d bytes: %w", sent, err)
		}
	}
	if err := s.CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		return fmt.Errorf("read hash: %w", err)
	}
	if !bytes.Equal(got, hash.Sum(nil)) {
		return fmt.Errorf("hash mismatch: got %x, want %x", got, hash.Sum(nil))
	}
	return nil
}

func TestRelays50MiB(t *testing.T) {
	keyA, keyB := newKey(t), newKey(t)
	srv := startRelay(t, func(c *relay.Config) {
		c.AllowDevices = []peer.ID{peerID(t, keyA), peerID(t, keyB)}
		c.MetricsAddr = "127.0.0.1:0"
	})
	a := newClient(t, keyA, srv, false) // reachable only through the relay
	serveSink(a)
	if err := reserve(t, a, srv); err != nil {
		t.Fatalf("reserve: %v", err)
	}
	b := newClient(t, keyB, srv, false)

	const size = 50 << 20
	start := time.Now()
	if err := sendThroughRelay(t, b, srv, a.ID(), size); err != nil {
		t.Fatal(err)
	}
	t.Logf("relayed %d MiB in %v", size>>20, time.Since(start))

	body := scrape(t, srv)
	if v := metricValue(t, body, "meshrelay_relayed_bytes_total"); v < size {
		t.Errorf("meshrelay_relayed_bytes_total = %v, want ≥ %d", v, size)
	}
	if v := metricValue(t, body, `meshrelay_circuit_requests_total{status="ok"}`); v != 1 {
		t.Errorf(`circuit requests ok = %v, want 1`, v)
	}
}

// TestCircuitFromOutsideToAllowed: a peer outside the ACL may open a circuit
// to an allowed, reserved device (a device redeeming an invite reaches the
// inviter this way; the inviter serves it nothing but the invite protocol),
// but it still cannot reserve, so nobody can reach it through the relay.
func TestCircuitFromOutsideToAllowed(t *testing.T) {
	keyA := newKey(t)
	srv := startRelay(t, func(c *relay.Config) { c.AllowDevices = []peer.ID{peerID(t, keyA)} })
	a := newClient(t, keyA, srv, false)
	serveSink(a)
	if err := reserve(t, a, srv); err != nil {
		t.Fatalf("reserve: %v", err)
	}
	stranger := newClient(t, newKey(t), srv, false)
	if err := sendThroughRelay(t, stranger, srv, a.ID(), 1024); err != nil {
		t.Fatalf("a circuit to an allowed device was refused: %v", err)
	}
	if err := reserve(t, stranger, srv); err == nil {
		t.Fatal("a peer outside the ACL got a reservation")
	}
}

func TestDataLimitEnforced(t *testing.T) {
	keyA, keyB := newKey(t), newKey(t)
	srv := startRelay(t, func(c *relay.Config) {
		c.AllowDevices = []peer.ID{peerID(t, keyA), peerID(t, keyB)}
		c.Limits.Data = 256 << 10
	})
	a := newClient(t, keyA, srv, false)
	serveSink(a)
	if err := reserve(t, a, srv); err != nil {
		t.Fatalf("reserve: %v", err)
	}
	b := newClient(t, keyB, srv, false)
	err := sendThroughRelay(t, b, srv, a.ID(), 4<<20)
	if err == nil {
		t.Fatal("4 MiB went through a relay limited to 256 KiB per connection")
	}
	t.Logf("cut as expected: %v", err)
}

func scrape(t *testing.T, srv *relay.Server) string {
	t.Helper()
	addr := srv.MetricsAddr()
	if addr == nil {
		t.Fatal("metrics are off")
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatalf("get metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("get metrics: %s %v", resp.Status, err)
	}
	return string(body)
}

// metricValue returns the value of the sample named by name (with labels,
// exactly as exposed), or -1 if absent.
func metricValue(t *testing.T, body, name string) float64 {
	t.Helper()
	for line := range strings.Lines(body) {
		rest, ok := strings.CutPrefix(line, name+" ")
		if !ok {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(rest, &v); err != nil {
			t.Fatalf("metric %s: %q: %v", name, line, err)
		}
		return v
	}
	return -1
}

func TestMetricsEndpoint(t *testing.T) {
	m := newTestMesh(t)
	keyA := newKey(t)
	srv := startRelay(t, func(c *relay.Config) {
		c.AllowDevices = []peer.ID{peerID(t, keyA)}
		c.AllowMeshes = []identity.MeshID{m.log.MeshID()}
		c.MetricsAddr = "127.0.0.1:0"
	})
	a := newClient(t, keyA, srv, false)
	if err := reserve(t, a, srv); err != nil {
		t.Fatal(err)
	}
	stranger := newClient(t, newKey(t), srv, false)
	wantRefused(t, reserve(t, stranger, srv))
	wantAuthStatus(t, authenticate(t, stranger, srv, m.log), relay.StatusNotMember)
	member := newClient(t, m.memberKey, srv, false)
	if err := authenticate(t, member, srv, m.log); err != nil {
		t.Fatal(err)
	}

	body := scrape(t, srv)
	for name, want := range map[string]float64{
		"meshrelay_relay_up": 1,
		`meshrelay_reservation_requests_total{status="ok"}`:                1,
		`meshrelay_reservation_requests_total{status="permission_denied"}`: 1,
		`meshrelay_reservations_opened_total{kind="new"}`:                  1,
		"meshrelay_reservations_active":                                    1,
		`meshrelay_auth_requests_total{status="not_member"}`:               1,
		`meshrelay_auth_requests_total{status="ok"}`:                       1,
		"meshrelay_authorised_peers":                                       1,
	} {
		if got := metricValue(t, body, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if !strings.Contains(body, "libp2p_") {
		t.Errorf("libp2p host metrics missing from /metrics")
	}
}

func TestServesIdentifyAutoNATAndDHT(t *testing.T) {
	srv := startRelay(t, nil)
	h := newClient(t, newKey(t), srv, false)
	want := []string{
		"/ipfs/id/1.0.0",
		"/libp2p/autonat/1.0.0",
		"/libp2p/autonat/2/dial-request",
		string(relay.DHTProtocolPrefix) + "/kad/1.0.0",
		relay.AuthProtocolID,
		"/libp2p/circuit/relay/0.2.0/hop",
	}
	waitFor(t, "identify to report the relay's protocols", func() bool {
		protos, err := h.Peerstore().SupportsProtocols(srv.ID(), toIDs(want)...)
		return err == nil && len(protos) == len(want)
	})
	protos, _ := h.Peerstore().GetProtocols(srv.ID())
	for _, p := range protos {
		if p == "/ipfs/kad/1.0.0" {
			t.Errorf("relay speaks the public IPFS DHT")
		}
	}
}

func TestCloseIdempotent(t *testing.T) {
	srv, err := relay.New(relay.Config{
		Key:         newKey(t),
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
		MetricsAddr: "127.0.0.1:0",
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := srv.Run(context.Background()); !errors.Is(err, relay.ErrClosed) {
		t.Fatalf("Run after Close: %v, want ErrClosed", err)
	}
}

func TestCloseStopsRun(t *testing.T) {
	srv, err := relay.New(relay.Config{
		Key:         newKey(t),
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
		MetricsAddr: "127.0.0.1:0",
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background()) }()
	waitFor(t, "metrics endpoint", func() bool {
		resp, err := http.Get("http://" + srv.MetricsAddr().String() + "/metrics")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close waits for Run's work to end, so the metrics endpoint is already
	// gone when it returns; Run's own return reaches done a moment later
	// (its goroutine still has to send), which is waited for, bounded.
	if _, err := http.Get("http://" + srv.MetricsAddr().String() + "/metrics"); err == nil {
		t.Fatal("metrics endpoint still serving after Close")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of Close")
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := relay.New(relay.Config{}, nil); !errors.Is(err, relay.ErrNoKey) {
		t.Errorf("no key: %v", err)
	}
	_, err := relay.New(relay.Config{Key: newKey(t), Limits: relay.Limits{Data: -1}}, nil)
	if err == nil || !strings.Contains(err.Error(), "data") {
		t.Errorf("negative data limit: %v", err)
	}
}

func TestAuthTooLarge(t *testing.T) {
	m := newTestMesh(t)
	srv := startRelay(t, func(c *relay.Config) {
		c.AllowMeshes = []identity.MeshID{m.log.MeshID()}
		c.Limits.MaxLogSize = 32
	})
	h := newClient(t, m.memberKey, srv, false)
	wantAuthStatus(t, authenticate(t, h, srv, m.log), relay.StatusTooLarge)
	// A log far larger than the stream's buffers: the relay answers
	// before reading it, and the client still reports the status.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := relay.Authenticate(ctx, h, srv.ID(), make([]byte, 8<<20))
	wantAuthStatus(t, err, relay.StatusTooLarge)
}
