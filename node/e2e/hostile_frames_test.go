package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/syncproto/exchange"
)

const (
	fsStreams   = 64      // half-sent frames per protocol
	fsFrameSize = 8 << 20 // the largest frame each protocol allows
	fsRSSBudget = 64 << 20
)

// TestHostileHalfFrames (issue 14, row 6): a member's key in a hostile
// program opens 64 sync streams, each announcing an 8 MiB frame and
// sending all of it but its last byte, then the same on the membership
// protocol, and holds them open. The victim's resident memory may rise by
// at most 64 MiB over its baseline (its peak, VmHWM, reset at the
// baseline); it keeps running and still syncs a change afterwards. Over
// QUIC and over TCP (yamux), which buffer differently.
func TestHostileHalfFrames(t *testing.T) {
	for _, transport := range []string{"quic-v1", "tcp"} {
		t.Run(transport, func(t *testing.T) { fsHalfFramesOver(t, transport) })
	}
}

func fsHalfFramesOver(t *testing.T, transport string) {
	a, b := startDaemon(t, "a"), startDaemon(t, "b")
	joinPair(t, a, b)
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	write(t, filepath.Join(dirA, "before.txt"), "before the attack\n")
	a.mesh("folder", "add", dirA, "--name", "docs")
	waitFor(t, 20*time.Second, "b sees the folder", func() bool { return strings.Contains(b.mesh("folder", "list"), "docs") })
	b.mesh("folder", "join", "docs", dirB)
	b.mesh("wait", "docs", "--timeout", "60s")
	ai := addrInfo(t, a)
	addrs := ai.Addrs[:0]
	for _, m := range ai.Addrs {
		if strings.Contains(m.String(), "/"+transport) {
			addrs = append(addrs, m)
		}
	}
	if ai.Addrs = addrs; len(addrs) == 0 {
		t.Fatalf("victim has no %s address", transport)
	}
	b.stop() // from here on, bravo's key speaks through the hostile program

	key, _, err := identity.LoadOrCreateKey(node.KeyPath(b.home))
	if err != nil {
		t.Fatal(err)
	}
	h := fsHostileHost(t, key)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := h.Connect(ctx, ai); err != nil {
		t.Fatal(err)
	}
	for _, c := range h.Network().ConnsToPeer(ai.ID) {
		t.Logf("hostile connection over %s", c.RemoteMultiaddr())
	}
	base := fsMemory(t, a)
	fsResetPeak(t, a)
	t.Logf("victim baseline: VmRSS %d MiB", base.rss>>20)

	// Sync frame: type u8 (CHANGES), length u32 big-endian, payload.
	syncHdr := []byte{0x03, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(syncHdr[1:], fsFrameSize)
	// Membership frame: uvarint length of type + payload, type 1 (state).
	memHdr := append(binary.AppendUvarint(nil, fsFrameSize+1), 1)
	var held []network.Stream
	for _, proto := range []struct {
		id  protocol.ID
		hdr []byte
	}{{exchange.ProtocolID, syncHdr}, {node.ProtoMembership, memHdr}} {
		streams, sent := fsHalfFrames(ctx, t, h, ai.ID, proto.id, proto.hdr)
		held = append(held, streams...)
		m := fsMemory(t, a)
		t.Logf("%s: %d streams opened, %d MiB delivered; victim VmRSS %d MiB, peak %d MiB", proto.id, len(streams), sent>>20, m.rss>>20, m.hwm>>20)
	}
	m := fsMemory(t, a)
	if rise := m.hwm - base.rss; rise > fsRSSBudget {
		t.Errorf("victim's peak RSS rose by %d MiB (from %d to %d MiB), more than %d MiB", rise>>20, base.rss>>20, m.hwm>>20, fsRSSBudget>>20)
	}
	select {
	case <-a.done:
		t.Fatal("the victim exited under the attack")
	default:
	}
	for _, s := range held {
		s.Reset()
	}
	h.Close()

	// The victim still works: a change syncs to bravo, back in meshd.
	b.start()
	write(t, filepath.Join(dirA, "after.txt"), "after the attack\n")
	a.mesh("wait", "docs", "--timeout", "60s")
	waitFor(t, 60*time.Second, "the change to reach b", func() bool {
		got, _ := os.ReadFile(filepath.Join(dirB, "after.txt"))
		return string(got) == "after the attack\n"
	})
}

// fsHostileHost is a plain libp2p host with the member's key and no
// resource limits of its own (so that its 128 streams are not refused on
// its side).
func fsHostileHost(t *testing.T, key crypto.PrivKey) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.ResourceManager(&network.NullResourceManager{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// fsHalfFrames opens fsStreams streams of proto to p, each writing hdr and
// then all but the last byte of an fsFrameSize payload, concurrently. It
// returns when every writer has written it all or failed (the victim
// refused or reset the stream), with the streams still open and the
// number of payload bytes the victim accepted.
func fsHalfFrames(ctx context.Context, t *testing.T, h host.Host, p peer.ID, proto protocol.ID, hdr []byte) ([]network.Stream, int64) {
	t.Helper()
	chunk := make([]byte, 64<<10)
	var (
		mu      sync.Mutex
		streams []network.Stream
		sent    int64
		wg      sync.WaitGroup
		errs    = map[string]int{}
	)
	for range fsStreams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := h.NewStream(ctx, p, proto)
			if err != nil {
				mu.Lock()
				errs[fsDigits.ReplaceAllString(fmt.Sprintf("open: %v", err), "N")]++
				mu.Unlock()
				return
			}
			mu.Lock()
			streams = append(streams, s)
			mu.Unlock()
			_ = s.SetWriteDeadline(time.Now().Add(90 * time.Second))
			if _, err := s.Write(hdr); err != nil {
				return
			}
			var n int64
			for left := fsFrameSize - 1; left > 0; {
				k := min(left, len(chunk))
				if _, err := s.Write(chunk[:k]); err != nil {
					mu.Lock()
					errs[fsDigits.ReplaceAllString(fmt.Sprintf("write: %v", err), "N")]++
					mu.Unlock()
					break
				}
				left -= k
				n += int64(k)
			}
			mu.Lock()
			sent += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	for e, n := range errs {
		t.Logf("%s: %d× %s", proto, n, e)
	}
	return streams, sent
}

var fsDigits = regexp.MustCompile(`stream \d+`)

type fsMem struct{ rss, hwm int64 }

// fsMemory reads the daemon's resident set size and its peak (VmRSS and
// VmHWM of /proc/PID/status).
func fsMemory(t *testing.T, d *daemon) fsMem {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("memory of meshd %s: %v", d.name, err)
	}
	var m fsMem
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v) // "12345 kB"
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || len(f) != 2 || f[1] != "kB" {
			t.Fatalf("memory of meshd %s: bad line %q", d.name, line)
		}
		if k == "VmRSS" {
			m.rss = kb << 10
		} else {
			m.hwm = kb << 10
		}
	}
	if m.rss == 0 || m.hwm == 0 {
		t.Fatalf("memory of meshd %s: no VmRSS or VmHWM in /proc status", d.name)
	}
	return m
}

// fsResetPeak resets the daemon's VmHWM to its current RSS (Linux
// clear_refs 5), so that the peak measures the attack only.
func fsResetPeak(t *testing.T, d *daemon) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", d.cmd.Process.Pid), []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak RSS of meshd %s: %v", d.name, err)
	}
}
