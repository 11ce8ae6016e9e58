package transfer

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/blobs"
)

const benchSize = 256 << 20

// BenchmarkFetch moves 256 MiB between two in-process hosts over loopback
// TCP with Noise and yamux, into a fresh store each iteration (chunks written
// to the fetcher's chunk store, verified on the way). Compare with
// BenchmarkRawTCP and BenchmarkLibp2pStream from the same run.
func BenchmarkFetch(b *testing.B) {
	data := randBytes(100, benchSize)
	a := newNode(b, nil, nil)
	m := a.seed(b, "f", data)
	data = nil
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		c := newNode(b, nil, nil)
		connect(b, c, a)
		b.StartTimer()
		if err := c.svc.Fetch(context.Background(), m, ids(a), nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		c.svc.Close()
		c.h.Close()
		b.StartTimer()
	}
}

// BenchmarkFetchToFile is the daemon's path: fetch 256 MiB straight into a
// partial file beside the target, then Commit (read back and verify, fsync,
// rename).
func BenchmarkFetchToFile(b *testing.B) {
	data := randBytes(100, benchSize)
	a := newNode(b, nil, nil)
	m := a.seed(b, "f", data)
	data = nil
	b.SetBytes(benchSize)
	var commit time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		c := newNode(b, nil, nil)
		connect(b, c, a)
		b.StartTimer()
		p, err := c.store.OpenPartial(context.Background(), m, filepath.Join(c.dir, "target"))
		if err != nil {
			b.Fatal(err)
		}
		if err := c.svc.FetchInto(context.Background(), m, ids(a), p, nil); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := p.Commit(context.Background()); err != nil {
			b.Fatal(err)
		}
		commit += time.Since(t0)
		b.StopTimer()
		c.svc.Close()
		c.h.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(commit.Milliseconds())/float64(b.N), "commit-ms/op")
}

// verifySink verifies chunks and drops them: the protocol without disk.
type verifySink struct{}

func (verifySink) Put(_ context.Context, id blobs.ChunkID, data []byte) error {
	if blobs.SumChunk(data) != id {
		return blobs.ErrMismatch
	}
	return nil
}

// BenchmarkFetchNoDisk is BenchmarkFetch with a sink that only verifies.
func BenchmarkFetchNoDisk(b *testing.B) {
	data := randBytes(100, benchSize)
	a := newNode(b, nil, nil)
	m := a.seed(b, "f", data)
	data = nil
	c := newNode(b, nil, nil)
	connect(b, c, a)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		if err := c.svc.FetchInto(context.Background(), m, ids(a), verifySink{}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawTCP copies the same number of bytes over a plain loopback TCP
// socket with 1 MiB writes: the ceiling for any transfer here.
func BenchmarkRawTCP(b *testing.B) {
	data := randBytes(100, benchSize)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	b.SetBytes(benchSize)
	buf := make([]byte, 1<<20)
	b.ResetTimer()
	for b.Loop() {
		errc := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			for off := 0; off < len(data); off += 1 << 20 {
				if _, err := c.Write(data[off : off+1<<20]); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, buf)
		c.Close()
		if err != nil || n != benchSize {
			b.Fatalf("copied %d: %v", n, err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLibp2pStream copies the same bytes over one libp2p stream
// (Noise + yamux, no protocol of ours): the ceiling for BenchmarkFetch.
func BenchmarkLibp2pStream(b *testing.B) {
	data := randBytes(100, benchSize)
	ha, hc := newHost(b), newHost(b)
	const proto = "/meshwork/bench/copy"
	ha.SetStreamHandler(proto, func(s network.Stream) {
		defer s.Close()
		for off := 0; off < len(data); off += 1 << 20 {
			if _, err := s.Write(data[off : off+1<<20]); err != nil {
				return
			}
		}
	})
	if err := hc.Connect(context.Background(), peer.AddrInfo{ID: ha.ID(), Addrs: ha.Addrs()}); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		s, err := hc.NewStream(context.Background(), ha.ID(), proto)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{s}, buf)
		s.Close()
		if err != nil || n != benchSize {
			b.Fatalf("copied %d: %v", n, err)
		}
	}
}

// BenchmarkFetchSmallParallel fetches 32 KiB blobs (one chunk each) on 16
// goroutines into a sink that only verifies: the per-blob cost of the
// protocol (stream, request, answer), as when a folder of small files syncs.
func BenchmarkFetchSmallParallel(b *testing.B) {
	a := newNode(b, nil, nil)
	const n = 512
	ms := make([]blobs.Manifest, n)
	for i := range ms {
		ms[i] = a.seed(b, fmt.Sprintf("s%d", i), randBytes(uint64(1000+i), 32<<10))
	}
	c := newNode(b, nil, nil)
	connect(b, c, a)
	b.SetBytes(32 << 10)
	b.SetParallelism(8) // 16 goroutines on 2 cores
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m := ms[next.Add(1)%n]
			if err := c.svc.FetchInto(context.Background(), m, ids(a), verifySink{}, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSwarmRate is the measured side of TestSendRate and
// TestSendCapDoesNotHoldSwarm: a device capped at 4 MiB/s serves 12 MiB
// alone (capped-MiB/s, expected at most the cap plus one frame's burst),
// then a 32 MiB blob is fetched from it and an uncapped peer together
// (uncapped/capped is the ratio of chunks each served; well above 2 on an
// idle machine). It reports, it does not assert: speed depends on the machine.
func BenchmarkSwarmRate(b *testing.B) {
	const size = 12 << 20
	const capped = 4 << 20
	data := randBytes(7, size)
	big := randBytes(8, 32<<20)
	var alone time.Duration
	var sa, sb int64
	for b.Loop() {
		b.StopTimer()
		a, c := newNode(b, nil, nil), newNode(b, nil, nil)
		m := a.seed(b, "f", data)
		a.svc.SetSendRate(capped)
		connect(b, c, a)
		b.StartTimer()
		t0 := time.Now()
		if err := c.svc.Fetch(context.Background(), m, ids(a), nil); err != nil {
			b.Fatal(err)
		}
		alone += time.Since(t0)

		b.StopTimer()
		m2 := a.seed(b, "g", big)
		u, d := newNode(b, nil, nil), newNode(b, nil, nil)
		u.seed(b, "g", big)
		connect(b, d, a)
		connect(b, d, u)
		before := a.svc.Stats().ChunksServed
		b.StartTimer()
		if err := d.svc.Fetch(context.Background(), m2, ids(a, u), nil); err != nil {
			b.Fatal(err)
		}
		sa += a.svc.Stats().ChunksServed - before
		sb += u.svc.Stats().ChunksServed
	}
	b.ReportMetric(float64(size)*float64(b.N)/alone.Seconds()/(1<<20), "capped-MiB/s")
	b.ReportMetric(float64(sb)/float64(max(sa, 1)), "uncapped/capped")
}
