package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dhtpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/meshwork/meshwork/relay"
)

// arStartNofile is startDaemon with meshd run under prlimit: its
// RLIMIT_NOFILE is soft:hard, as on a machine with a low descriptor limit.
func arStartNofile(t *testing.T, name string, soft, hard int) *daemon {
	t.Helper()
	prl, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) is needed to run meshd with a low RLIMIT_NOFILE")
	}
	home, err := os.MkdirTemp("", "mw-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	d := &daemon{t: t, name: name, home: home, listen: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}}
	logf, err := os.OpenFile(filepath.Join(home, "meshd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{fmt.Sprintf("--nofile=%d:%d", soft, hard), "--", filepath.Join(binDir, "meshd"),
		"--home", home, "--no-mdns", "--log-level", "debug", "--http", "127.0.0.1:0"}
	for _, l := range d.listen {
		args = append(args, "--listen", l)
	}
	cmd := exec.Command(prl, args...) // prlimit execs meshd: same process
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start meshd %s under prlimit: %v", name, err)
	}
	d.cmd, d.logf, d.done = cmd, logf, make(chan struct{})
	go func() { _ = cmd.Wait(); close(d.done) }()
	t.Cleanup(d.stop)
	waitFor(t, 15*time.Second, "meshd "+name+" control API", func() bool {
		_, _, err := d.run("status", "--json")
		return err == nil
	})
	return d
}

// arNofile reads a process's RLIMIT_NOFILE from /proc.
func arNofile(t *testing.T, pid int) (soft, hard int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`Max open files\s+(\d+)\s+(\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no open-files limit in /proc/%d/limits:\n%s", pid, b)
	}
	soft, _ = strconv.Atoi(string(m[1]))
	hard, _ = strconv.Atoi(string(m[2]))
	return soft, hard
}

// arOpenFDs counts a process's open descriptors.
func arOpenFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// arFlood opens n idle connections to addr: a third send a whole request
// and then stay as idle keep-alive connections, a third stop half-way
// through a request header, a third send nothing. closed counts the ones
// the server has closed.
func arFlood(t *testing.T, addr string, n int) (closed *atomic.Int64, stop func()) {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < uint64(n)+512 {
		rl.Cur = min(rl.Max, uint64(n)+1024)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < uint64(n)+256 {
			t.Skipf("the test needs %d descriptors; RLIMIT_NOFILE is %d:%d", n+256, rl.Cur, rl.Max)
		}
	}
	closed = new(atomic.Int64)
	var wg sync.WaitGroup
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("flood connection %d to %s: %v", i, addr, err)
		}
		conns = append(conns, c)
		switch i % 3 {
		case 0:
			_, err = io.WriteString(c, "GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		case 1:
			_, err = io.WriteString(c, "GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaa")
		}
		if err != nil {
			t.Fatalf("flood connection %d: write: %v", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(io.Discard, c) // ends when the server closes it
			closed.Add(1)
		}()
	}
	return closed, func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}
}

// TestHostileHTTPFlood (issue 14, row 9): 1,005 idle connections to the
// HTTP API of a meshd allowed 1,024 descriptors, without a token, some
// stopping half-way through a request header. The control socket and an
// authorised HTTP request still answer, meshd stays within its connection
// budget, the server closes every idle connection, the events stream
// still works and the daemon still syncs a change.
func TestHostileHTTPFlood(t *testing.T) {
	const flood = 1005
	a := arStartNofile(t, "a", 512, 1024)
	b := startDaemon(t, "b")
	joinPair(t, a, b)
	pid := a.cmd.Process.Pid
	// Go raises the soft limit to the hard one (less one) at start (Go
	// 1.19+, package syscall's init).
	if soft, hard := arNofile(t, pid); soft < 1023 || hard != 1024 {
		t.Fatalf("meshd's RLIMIT_NOFILE is %d:%d, want 1023:1024 (soft raised from 512)", soft, hard)
	}
	ca := a.api()
	ca.json("POST", "/api/v1/objects", map[string]string{"name": "groceries", "type": "list"}, nil)
	base := arOpenFDs(t, pid)

	closed, stop := arFlood(t, strings.TrimPrefix(ca.base, "http://"), flood)
	defer stop()

	// The control socket and an authorised request answer during the flood.
	if st := a.status(); st.MeshID == nil {
		t.Fatalf("status over the control socket during the flood: %+v", st)
	}
	if body := ca.get("/api/v1/status"); !strings.Contains(string(body), `"device_id"`) {
		t.Fatalf("authorised GET /api/v1/status during the flood: %s", body)
	}
	// The TCP listener holds at most its budget (1024/8 = 128) connections.
	if fds := arOpenFDs(t, pid); fds > base+128+64 {
		t.Fatalf("meshd has %d descriptors open during the flood (%d before): the connection budget does not hold", fds, base)
	}

	// Events still stream: subscribe, change, see it.
	ev, closeEv := ca.events("?objects=groceries", "")
	defer closeEv()
	ca.json("PUT", "/api/v1/objects/groceries/items/eggs", map[string]string{"title": "Eggs", "text": "6"}, nil)
	waitEvent(t, ev, 30*time.Second, "eggs on a's own events stream", func(e sseEvent) bool {
		return e.Type == "change" && strings.Contains(e.Data, `"eggs"`)
	})

	// And the change syncs to b.
	cb := b.api()
	waitFor(t, 30*time.Second, "b has a's item", func() bool {
		resp, body := cb.req("GET", "/api/v1/objects/groceries/items", nil, nil)
		return resp.StatusCode == 200 && strings.Contains(string(body), `"id":"eggs"`)
	})

	// The server closes every idle connection (evicted, or by the header
	// and idle timeouts), without the client closing any.
	waitFor(t, 90*time.Second, "meshd to close all flood connections", func() bool { return closed.Load() == flood })
	if out := a.mesh("status"); !strings.Contains(out, "alpha") {
		t.Fatalf("mesh status after the flood: %s", out)
	}
	if body := ca.get("/api/v1/status"); !strings.Contains(string(body), `"device_id"`) {
		t.Fatalf("authorised GET /api/v1/status after the flood: %s", body)
	}
	if a.logContains("too many open files") {
		t.Fatalf("meshd ran out of descriptors")
	}
}

// arFindNode sends one FIND_NODE for target to the relay's DHT over the
// real kad protocol (varint-framed protobuf) and returns the answer's peers.
func arFindNode(ctx context.Context, h host.Host, relayID, target peer.ID) ([]*peer.AddrInfo, error) {
	s, err := h.NewStream(ctx, relayID, relay.DHTProtocolPrefix+"/kad/1.0.0")
	if err != nil {
		return nil, fmt.Errorf("open DHT stream: %w", err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	req, err := proto.Marshal(dhtpb.NewMessage(dhtpb.Message_FIND_NODE, []byte(target), 0))
	if err != nil {
		return nil, err
	}
	if _, err := s.Write(append(binary.AppendUvarint(nil, uint64(len(req))), req...)); err != nil {
		return nil, fmt.Errorf("send FIND_NODE: %w", err)
	}
	br := bufio.NewReader(s)
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("read FIND_NODE answer: %w", err)
	}
	if n > 1<<20 {
		return nil, fmt.Errorf("FIND_NODE answer of %d bytes", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, fmt.Errorf("read FIND_NODE answer: %w", err)
	}
	var resp dhtpb.Message
	if err := proto.Unmarshal(buf, &resp); err != nil {
		return nil, fmt.Errorf("decode FIND_NODE answer: %w", err)
	}
	return dhtpb.PBPeersToPeerInfos(resp.GetCloserPeers()), nil
}

func arAddrsOf(infos []*peer.AddrInfo, p peer.ID) int {
	for _, ai := range infos {
		if ai.ID == p {
			return len(ai.Addrs)
		}
	}
	return 0
}

// TestHostileDHTLookup (issue 14, row 10): a real meshrelay admits the
// members of one mesh; a member daemon holds a reservation on it. A
// stranger with a fresh key asks the relay's DHT for the member's
// addresses and is refused (its stream reset); a device the relay allows
// (--allow-device) asking the same gets them. Members finding each other
// through the relay's DHT is TestRelayAndDHT.
func TestHostileDHTLookup(t *testing.T) {
	a := startDaemon(t, "a")
	a.mesh("init", "--name", "alpha")
	st := a.status()
	allowedKey, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	allowedID, _ := peer.IDFromPrivateKey(allowedKey)
	r := startRelay(t, "--allow-mesh", *st.MeshID, "--allow-device", allowedID.String())
	a.stop()
	a.start("--relay", r.addr)
	waitFor(t, 15*time.Second, "a's relay reservation", func() bool {
		for _, addr := range a.status().ListenAddrs {
			if strings.Contains(addr, "/p2p-circuit") {
				return true
			}
		}
		return false
	})
	idA, err := peer.Decode(st.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	ri, err := peer.AddrInfoFromString(r.addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	connect := func(h host.Host) {
		if err := h.Connect(ctx, *ri); err != nil {
			t.Fatalf("connect to the relay: %v", err)
		}
	}

	allowed := newPlainHost(t, allowedKey)
	connect(allowed)
	waitFor(t, 15*time.Second, "the relay's DHT to give an allowed device a's addresses", func() bool {
		got, err := arFindNode(ctx, allowed, ri.ID, idA)
		return err == nil && arAddrsOf(got, idA) > 0
	})

	strangerKey, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger := newPlainHost(t, strangerKey)
	connect(stranger)
	for i := range 3 {
		got, err := arFindNode(ctx, stranger, ri.ID, idA)
		if err == nil {
			t.Fatalf("stranger's FIND_NODE %d for a member answered: %v", i, got)
		}
		if !strings.Contains(err.Error(), "reset") {
			t.Fatalf("stranger's FIND_NODE %d: %v, want the stream reset", i, err)
		}
	}
	// The member still works behind the relay.
	if out := a.mesh("status"); !strings.Contains(out, "alpha") {
		t.Fatalf("mesh status: %s", out)
	}
}
