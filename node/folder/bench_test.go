package folder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkRescanUnchanged100k: a full rescan of 100,000 unchanged small
// files (in 100 directories); generating and first indexing them is outside
// the timer. Reports files/s.
func BenchmarkRescanUnchanged100k(b *testing.B) {
	const files, dirs = 100_000, 100
	n := newNode(b, devA, nil)
	for d := range dirs {
		dir := filepath.Join(n.root, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := range files / dirs {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.txt", i)), []byte(fmt.Sprintf("file %d/%d", d, i)), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	start := time.Now()
	n.scan()
	b.Logf("initial scan (hashing %d files): %v", files, time.Since(start))
	var hashed int
	n.f.hashHook = func(string) { hashed++ }
	head := n.obj.Head()
	b.ResetTimer()
	for range b.N {
		if err := n.f.Scan(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if hashed != 0 || n.obj.Head() != head {
		b.Fatalf("rescan hashed %d files, head %d -> %d", hashed, head, n.obj.Head())
	}
	b.ReportMetric(float64(files)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
}
