package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/node/internal/tlsbatch"
)

// The libp2p-stream baseline: the same bytes as the raw TCP baseline, over
// one stream of the stack meshd uses on TCP (libp2p TCP transport, TLS 1.3 as
// meshd configures it, yamux as node.Muxer), between two processes. It shows what the
// chosen libraries cost before Meshwork does anything: in "hash" mode each
// side also BLAKE3-hashes every 1 MiB it sends or receives (the chunk
// verification every transfer must do on both ends); the receiver discards
// the bytes and writes no file.
const (
	p2pReceiverEnv = "MESHWORK_P2P_RECEIVER" // "plain" or "hash"
	p2pSinkProto   = "/meshwork/bench-sink/1.0.0"
)

func init() {
	if mode := os.Getenv(p2pReceiverEnv); mode != "" {
		os.Exit(p2pReceiver(mode == "hash"))
	}
}

func p2pHost(listen ...string) (host.Host, error) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	return libp2p.New(
		libp2p.Identity(k),
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(tlsbatch.ID, tlsbatch.New),
		libp2p.Muxer(yamux.ID, node.Muxer()),
	)
}

// p2pReceiver is the child process: it prints its address, reads one
// stream to the end (hashing it in 1 MiB pieces if asked), answers with the
// byte count and exits.
func p2pReceiver(hash bool) int {
	h, err := p2pHost("/ip4/127.0.0.1/tcp/0")
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer h.Close()
	done := make(chan int, 1)
	h.SetStreamHandler(p2pSinkProto, func(s network.Stream) {
		defer s.Close()
		buf := make([]byte, 1<<20)
		var n int64
		for {
			m, err := io.ReadFull(s, buf)
			if m > 0 {
				if hash {
					blobs.SumChunk(buf[:m])
				}
				n += int64(m)
			}
			if err != nil {
				break
			}
		}
		fmt.Fprintf(s, "%d\n", n)
		s.CloseWrite()
		io.Copy(io.Discard, s) // until the sender closes
		done <- 0
	})
	fmt.Printf("%s/p2p/%s\n", h.Addrs()[0], h.ID())
	return <-done
}

// p2pStream sends the files to a p2pReceiver child over one libp2p stream
// and returns the bytes, the time from the stream's first byte to the
// receiver's count, and the CPU time of both processes.
func p2pStream(tb testing.TB, paths []string, hash bool) (bytes int64, elapsed, cpu time.Duration) {
	tb.Helper()
	mode := "plain"
	if hash {
		mode = "hash"
	}
	ch := startChild(tb, p2pReceiverEnv+"="+mode, "libp2p receiver")
	defer ch.stop()
	addr, err := ma.NewMultiaddr(strings.TrimSpace(ch.out.Text()))
	if err != nil {
		tb.Fatalf("libp2p receiver: %q: %v", ch.out.Text(), err)
	}
	info, err := peer.AddrInfoFromP2pAddr(addr)
	if err != nil {
		tb.Fatal(err)
	}
	h, err := p2pHost()
	if err != nil {
		tb.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := h.Connect(ctx, *info); err != nil {
		tb.Fatal(err)
	}
	s, err := h.NewStream(ctx, info.ID, p2pSinkProto)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	start, cpu0 := time.Now(), cpuTime()
	buf := make([]byte, 1<<20)
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			tb.Fatal(err)
		}
		for {
			n, err := io.ReadFull(f, buf)
			if n > 0 {
				if hash {
					blobs.SumChunk(buf[:n])
				}
				if _, werr := s.Write(buf[:n]); werr != nil {
					tb.Fatal(werr)
				}
				bytes += int64(n)
			}
			if err != nil {
				break
			}
		}
		f.Close()
	}
	if err := s.CloseWrite(); err != nil {
		tb.Fatal(err)
	}
	line, err := bufio.NewReader(s).ReadString('\n')
	if err != nil {
		tb.Fatalf("libp2p receiver did not report: %v", err)
	}
	elapsed = time.Since(start)
	if got := strings.TrimSpace(line); got != fmt.Sprint(bytes) {
		tb.Fatalf("libp2p receiver got %s bytes, sent %d", got, bytes)
	}
	cpu = cpuTime() - cpu0
	s.Close()
	return bytes, elapsed, cpu + ch.wait()
}
