package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/node"
)

// fbVictim starts a (the victim) and b sharing the folder "docs", in sync;
// then stops b and returns a plain libp2p host speaking with b's device key
// (a member's key in a hostile program), connected to a.
func fbVictim(t *testing.T) (a, b *daemon, dirA, dirB string, h host.Host, victim peer.ID) {
	t.Helper()
	a, b = startDaemon(t, "a"), startDaemon(t, "b")
	joinPair(t, a, b)
	dirA, dirB = filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	write(t, filepath.Join(dirA, "first.txt"), "before the attack\n")
	a.mesh("folder", "add", dirA, "--name", "docs")
	waitFor(t, 20*time.Second, "b sees the folder", func() bool { return strings.Contains(b.mesh("folder", "list"), "docs") })
	b.mesh("folder", "join", "docs", dirB)
	for _, d := range []*daemon{a, b, a, b} {
		d.mesh("wait", "docs", "--timeout", "60s")
	}
	b.stop() // from here on, b's key speaks through the hostile program
	key, _, err := identity.LoadOrCreateKey(node.KeyPath(b.home))
	if err != nil {
		t.Fatal(err)
	}
	h = newPlainHost(t, key)
	ai := addrInfo(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Connect(ctx, ai); err != nil {
		t.Fatalf("hostile host connect to the victim: %v", err)
	}
	return a, b, dirA, dirB, h, ai.ID
}

// fbSend opens a stream of proto to the victim, sends in, and reads the
// victim's whole answer (at most limit bytes) until the victim ends the
// stream. It fails t if the stream is not ended by the victim.
func fbSend(t *testing.T, h host.Host, victim peer.ID, proto protocol.ID, in []byte, limit int64) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := h.NewStream(ctx, victim, proto)
	if err != nil {
		t.Fatalf("open %s: %v", proto, err)
	}
	defer st.Reset()
	_ = st.SetDeadline(time.Now().Add(20 * time.Second)) // a victim that never ends the stream fails here
	go func() {                                          // the victim may refuse to read it all
		if _, err := st.Write(in); err == nil {
			_ = st.CloseWrite()
		}
	}()
	out, err := io.ReadAll(io.LimitReader(st, limit))
	if err != nil && !strings.Contains(err.Error(), "reset") && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("%s: the victim did not end the stream: %v (after %d bytes)", proto, err, len(out))
	}
	return out
}

// fbFrame is a /meshwork/blobs/1.0.0 frame header declaring n bytes,
// followed by body.
func fbFrame(typ byte, n uint32, body []byte) []byte {
	b := append([]byte{typ}, binary.BigEndian.AppendUint32(nil, n)...)
	return append(b, body...)
}

// fbStillAlive asserts the victim's process runs, answers, and logged no
// panic (not even a recovered one).
func fbStillAlive(t *testing.T, a *daemon) {
	t.Helper()
	select {
	case <-a.done:
		t.Fatal("the victim's meshd exited")
	default:
	}
	_ = a.status()
	if a.logContains("panic") {
		t.Fatal("the victim's log has a panic")
	}
}

// fbStillSyncs restarts b and asserts a new file written on a reaches it.
func fbStillSyncs(t *testing.T, a, b *daemon, dirB, dirA string) {
	t.Helper()
	b.start()
	idA, idB := a.status().DeviceID, b.status().DeviceID
	waitFor(t, 30*time.Second, "a and b online again", func() bool { return a.online(idB) && b.online(idA) })
	write(t, filepath.Join(dirA, "after.txt"), "after the attack\n")
	waitFor(t, 60*time.Second, "the new file on b", func() bool {
		got, err := os.ReadFile(filepath.Join(dirB, "after.txt"))
		return err == nil && string(got) == "after the attack\n"
	})
}

// TestHostileBlobFrame is issue 14 row 1: a member sends one blobs request
// frame declaring 100,000 bytes (which panicked the serving meshd), then
// other malformed frames. Each stream gets ERROR(bad request) and is ended;
// the victim keeps running and syncing.
func TestHostileBlobFrame(t *testing.T) {
	a, b, dirA, dirB, h, victim := fbVictim(t)
	const proto = protocol.ID("/meshwork/blobs/1.0.0")
	const badRequest = 3
	cases := []struct {
		name string
		in   []byte
	}{
		{"row 1: request of 100,000 bytes", fbFrame(0x01, 100_000, make([]byte, 100_000))},
		{"GET of 100,000 bytes", fbFrame(0x02, 100_000, make([]byte, 100_000))},
		{"oversized: length 2^32-1", fbFrame(0x01, 0xffffffff, make([]byte, 64))},
		{"response type CHUNK of 4 MiB", fbFrame(0x82, 36+4<<20, make([]byte, 1024))},
		{"unknown type", fbFrame(0x42, 3, []byte{1, 2, 3})},
		{"MANIFEST of the wrong length", fbFrame(0x03, 45, make([]byte, 45))},
	}
	for _, c := range cases {
		out := fbSend(t, h, victim, proto, c.in, 1<<20)
		typ, code, ok := fbLastBlobFrame(out)
		if !ok || typ != 0x8f || code != badRequest {
			t.Fatalf("%s: the victim answered %x, want one ERROR(bad request) and the end of the stream", c.name, out)
		}
		t.Logf("%s: ERROR(bad request), stream ended", c.name)
	}
	// Truncated: a GET cut short, then the end of input. Nothing is
	// answered; the stream ends.
	trunc := fbFrame(0x02, 4+40+32, make([]byte, 20))
	if out := fbSend(t, h, victim, proto, trunc, 1<<20); len(out) != 0 {
		t.Fatalf("truncated frame: the victim answered %x", out)
	}
	fbStillAlive(t, a)
	h.Close()
	fbStillSyncs(t, a, b, dirB, dirA)
	fbStillAlive(t, a)
}

// fbLastBlobFrame parses out as blobs frames and returns the type and first
// payload byte after the request ID (an ERROR's code) of the last one.
func fbLastBlobFrame(out []byte) (typ, code byte, ok bool) {
	r := bufio.NewReader(strings.NewReader(string(out)))
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return typ, code, ok && errors.Is(err, io.EOF)
		}
		p := make([]byte, binary.BigEndian.Uint32(hdr[1:])) // bounded: out is at most 1 MiB
		if len(p) > len(out) {
			return 0, 0, false
		}
		if _, err := io.ReadFull(r, p); err != nil || len(p) < 5 {
			return 0, 0, false
		}
		typ, code, ok = hdr[0], p[4], true
	}
}

// TestHostileTunnelFrame: the same for /meshwork/tunnel/1.0.0: requests
// with a service name longer than allowed, an unknown version, or cut
// short get "bad request" (or nothing) and the end of the stream; the
// victim keeps running and syncing.
func TestHostileTunnelFrame(t *testing.T) {
	a, b, dirA, dirB, h, victim := fbVictim(t)
	const proto = protocol.ID("/meshwork/tunnel/1.0.0")
	const statusBadRequest = 4
	long := append([]byte{1, 255}, make([]byte, 255)...)
	cases := map[string][]byte{
		"name length 255":    long,
		"name length 65":     append([]byte{1, 65}, []byte(strings.Repeat("a", 65))...),
		"name length 0":      {1, 0},
		"unknown version":    append([]byte{7}, make([]byte, 100_000)...),
		"name not a-z0-9":    append([]byte{1, 3}, "A/\x00"...),
		"garbage of 100,000": append([]byte{1, 64}, make([]byte, 100_000)...),
	}
	for name, in := range cases {
		out := fbSend(t, h, victim, proto, in, 1<<16)
		if len(out) < 2 || out[0] != statusBadRequest || int(out[1]) != len(out)-2 {
			t.Fatalf("%s: the victim answered %q, want one bad-request reply and the end of the stream", name, out)
		}
		t.Logf("%s: %q", name, out[2:])
	}
	if out := fbSend(t, h, victim, proto, []byte{1, 10, 'a'}, 1<<16); len(out) < 2 || out[0] != statusBadRequest {
		t.Fatalf("truncated request: the victim answered %q", out)
	}
	fbStillAlive(t, a)
	h.Close()
	fbStillSyncs(t, a, b, dirB, dirA)
	fbStillAlive(t, a)
}
