package e2e

import (
	"math"
	"strings"
	"testing"
)

// TestLibraryShape: the generated library has the shape its comment
// promises (library_gen_test.go): the kinds' shares of items, their sizes,
// one sidecar per item, Live Photos beside 40 % of the HEICs, album copies
// of 10–20 % of the items that repeat their original's content, and about
// the size asked for. It writes nothing.
func TestLibraryShape(t *testing.T) {
	const target = 5e9
	files, mix := libGenerate(target, 1)
	if mix.total < target || mix.total > target+700e6 {
		t.Errorf("total %d bytes, want %d to %d", mix.total, int64(target), int64(target+700e6))
	}
	items := float64(mix.items)
	share := func(kind string) float64 { return float64(mix.files[kind]) / items }
	near := func(what string, got, want, tol float64) {
		if math.Abs(got-want) > tol {
			t.Errorf("%s: %.3f, want %.3f ± %.3f", what, got, want, tol)
		}
	}
	for _, k := range libKinds {
		near(k.name+" share of items", share(k.name), k.share, math.Max(0.02, k.share*0.35))
	}
	near("sidecars per item", share("sidecar"), 1, 0)
	near("Live Photo MOVs per HEIC", float64(mix.files["live-mov"])/float64(mix.files["heic"]), 0.4, 0.08)
	copies := share("album-copy")
	if copies < 0.08 || copies > 0.2 {
		t.Errorf("album copies: %.3f of items, want 0.10–0.20 (a few dropped for names taken)", copies)
	}
	if got := float64(mix.bytes["video"]) / float64(mix.total); got < 0.3 {
		t.Errorf("videos are %.2f of the bytes; a phone library's videos are most of it", got)
	}
	// Sizes per kind, by extension.
	bounds := map[string][2]int64{".HEIC": {1.5e6, 2.5e6}, ".JPG": {3e6, 5e6}, ".PNG": {0.2e6, 1.5e6}, ".DNG": {25e6, 75e6}, ".json": {500, 2000}, ".xmp": {2000, 10000}}
	seen := map[string]bool{}
	for i, f := range files {
		if seen[f.rel] {
			t.Fatalf("%s appears twice", f.rel)
		}
		seen[f.rel] = true
		for ext, b := range bounds {
			if strings.HasSuffix(f.rel, ext) && (f.size < b[0] || f.size > b[1]) {
				t.Errorf("%s: %d bytes, want %d to %d", f.rel, f.size, b[0], b[1])
			}
		}
		if f.same > 0 {
			o := files[f.same-1]
			if !strings.HasPrefix(f.rel, "Albums/") || o.size != f.size || o.same != 0 || strings.HasPrefix(o.rel, "Albums/") {
				t.Fatalf("file %d (%s) repeats %d (%s): want an album copy of an original of the same size", i, f.rel, f.same-1, o.rel)
			}
		}
		if !strings.HasPrefix(f.rel, "Albums/") && !strings.HasPrefix(f.rel, "20") {
			t.Errorf("%s is not under YYYY/MM/", f.rel)
		}
	}
	again, _ := libGenerate(target, 1)
	if len(again) != len(files) || again[len(again)-1] != files[len(files)-1] {
		t.Error("the same seed gave another library")
	}
	t.Logf("library: %s", mix)
}
