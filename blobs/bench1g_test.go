package blobs_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/store"
)

// BenchmarkChunkHash1GiB: chunking + BLAKE3 hashing (blobs.Split, as
// store.AddFile does) of a 1 GiB file of incompressible data on disk, beside
// SHA-256 of the same file and a plain read of it, in the same run; then
// store.AddFolder over 16 × 64 MiB files (GOMAXPROCS workers). The files are
// written, fsynced and read once outside the timer, so every measurement
// reads from the page cache (nothing is dropped from it). b.N is not used.
//
//	go test -run '^$' -bench BenchmarkChunkHash1GiB -benchtime 1x ./blobs/
//
// Results go to testout/bench-chunkhash.txt at the repository root.
func BenchmarkChunkHash1GiB(b *testing.B) {
	const size = 1 << 30
	const rounds = 2
	dir := b.TempDir()
	big := filepath.Join(dir, "one.bin")
	bench1gWrite(b, big, size, 1)
	bench1gWarm(b, big)

	var report strings.Builder
	fmt.Fprintf(&report, "BenchmarkChunkHash1GiB %s, GOMAXPROCS=%d, NumCPU=%d, %s/%s\n",
		time.Now().UTC().Format(time.RFC3339), runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&report, "1 GiB incompressible file in b.TempDir(), fsynced and read once before timing: every pass reads from the page cache (nothing dropped)\n")
	fmt.Fprintf(&report, "single-threaded passes, %d interleaved rounds; mean (runs); MB = 10^6 bytes\n\n", rounds)

	type pass struct {
		name, metric, what string
		fn                 func(*os.File) (int64, error)
		runs               []float64
	}
	buf := make([]byte, 1<<20)
	passes := []*pass{
		{name: "raw read", metric: "read-MB/s", what: "io.CopyBuffer to io.Discard, 1 MiB buffer",
			fn: func(f *os.File) (int64, error) {
				// Hide WriterTo/ReaderFrom so the 1 MiB buffer is used.
				return io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{f}, buf)
			}},
		{name: "sha256", metric: "sha256-MB/s", what: "crypto/sha256, streaming through a 1 MiB buffer (sha256sum-style)",
			fn: func(f *os.File) (int64, error) {
				h := sha256.New()
				n, err := io.CopyBuffer(struct{ io.Writer }{h}, struct{ io.Reader }{f}, buf)
				h.Sum(nil)
				return n, err
			}},
		{name: "chunk+hash", metric: "chunkhash-MB/s", what: "blobs.Split: FastCDC v1 + BLAKE3 per chunk + manifest (Chunker's 8 MiB buffer)",
			fn: func(f *os.File) (int64, error) {
				_, ref, err := blobs.Split(f, nil)
				return ref.Size, err
			}},
		{name: "chunk only", metric: "chunkonly-MB/s", what: "blobs.Chunker cut points, no hashing",
			fn: func(f *os.File) (int64, error) {
				c := blobs.NewChunker(f)
				var n int64
				for {
					_, data, err := c.Next()
					if err == io.EOF {
						return n, nil
					}
					if err != nil {
						return n, err
					}
					n += int64(len(data))
				}
			}},
	}
	for range rounds {
		for _, p := range passes {
			f, err := os.Open(big)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			n, err := p.fn(f)
			elapsed := time.Since(start)
			f.Close()
			if err != nil {
				b.Fatalf("%s: %v", p.name, err)
			}
			if n != size {
				b.Fatalf("%s: %d bytes, want %d", p.name, n, size)
			}
			p.runs = append(p.runs, size/elapsed.Seconds()/1e6)
		}
	}
	var chunkHash float64
	for _, p := range passes {
		m := bench1gMean(p.runs)
		if p.name == "chunk+hash" {
			chunkHash = m
		}
		fmt.Fprintf(&report, "%-11s %6.0f MB/s %-12s %s\n", p.name, m, bench1gRuns(p.runs), p.what)
		b.ReportMetric(m, p.metric)
	}

	// The folder case: 16 × 64 MiB files indexed by a fresh store.
	const files, fsize = 16, 64 << 20
	folder := filepath.Join(dir, "folder")
	if err := os.Mkdir(folder, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range files {
		p := filepath.Join(folder, fmt.Sprintf("file%02d.bin", i))
		bench1gWrite(b, p, fsize, uint64(100+i))
		bench1gWarm(b, p)
	}
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "db")).WithLogger(nil))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s, err := store.Open(db, []byte("blobs/"), filepath.Join(dir, "chunks"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	res, err := s.AddFolder(context.Background(), folder)
	elapsed := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if len(res) != files {
		b.Fatalf("AddFolder indexed %d files, want %d", len(res), files)
	}
	for _, r := range res {
		if r.Err != nil || r.Ref.Size != fsize {
			b.Fatalf("AddFolder %s: size %d, %v", r.Path, r.Ref.Size, r.Err)
		}
	}
	folderMBs := float64(files*fsize) / elapsed.Seconds() / 1e6
	fmt.Fprintf(&report, "\nstore.AddFolder, %d × %d MiB (page cache), %d workers, fresh badger index: %.0f MB/s (%s), %.2f× single-threaded chunk+hash\n",
		files, fsize>>20, runtime.GOMAXPROCS(0), folderMBs, elapsed.Round(time.Millisecond), folderMBs/chunkHash)
	b.ReportMetric(folderMBs, "addfolder-MB/s")

	out := filepath.Join("..", "testout")
	if err := os.MkdirAll(out, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "bench-chunkhash.txt"), []byte(report.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("\n%s", report.String())
}

// bench1gWrite writes size pseudo-random (incompressible) bytes to path and
// fsyncs it, so that no writeback runs during the timed passes.
func bench1gWrite(b *testing.B, path string, size int64, seed uint64) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7})
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		k := min(left, int64(len(buf)))
		_, _ = rng.Read(buf[:k])
		if _, err := f.Write(buf[:k]); err != nil {
			b.Fatal(err)
		}
		left -= k
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// bench1gWarm reads path once so that it is all in the page cache.
func bench1gWarm(b *testing.B, path string) {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{f}, make([]byte, 1<<20)); err != nil {
		b.Fatal(err)
	}
}

func bench1gMean(v []float64) float64 {
	var sum float64
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}

func bench1gRuns(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
