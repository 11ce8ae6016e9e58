package e2e

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
)

// A photo library as a phone and a camera make it, for the benchmarks: the
// kinds of item, their shares and sizes taken from published figures, not
// from any benchmark's earlier shape.
//
//   - HEIC stills, 70 % of items, ~2 MB (Apple: a 12 MP HEIC is about half a
//     JPEG's size, 1.5–2.5 MB); 40 % of them are Live Photos, a still plus
//     a ~3 s MOV of 2–4 MB beside it with the same name.
//   - JPEG stills, 15 %, 3–5 MB (12 MP JPEG from phones and compact cameras).
//   - Screenshots (PNG), 8 %, 0.2–1.5 MB.
//   - RAW/DNG, 2 %, 25–75 MB (Apple ProRAW: ~25 MB at 12 MP, ~75 MB at 48 MP).
//   - Videos (MOV, 4K HEVC at 30 fps: 170 MB a minute, Apple's Camera
//     settings), 5 %, length log-normal with a median of 30 s (so ~85 MB),
//     capped at 10 minutes.
//   - One sidecar per item: a JSON of 0.5–2 KB (Google Takeout) or an XMP
//     of 2–10 KB (Lightroom, darktable).
//   - Items nested by year and month (YYYY/MM/, 2016–2025, in order).
//   - Album folders (Albums/NAME/) holding byte-identical copies of 10–20 %
//     of the items' main files, as exported albums and "favourites" copies
//     are.
//
// All content is incompressible (stWriteTree); a copy has its original's
// bytes (stFile.same).

// libKind is one kind of library item.
type libKind struct {
	name  string
	share float64 // of items
	ext   string
}

var libKinds = []libKind{
	{"heic", 0.70, "HEIC"},
	{"jpeg", 0.15, "JPG"},
	{"png", 0.08, "PNG"},
	{"raw", 0.02, "DNG"},
	{"video", 0.05, "MOV"},
}

// libMix counts what a generated library holds, by kind of file.
type libMix struct {
	items int
	files map[string]int
	bytes map[string]int64
	total int64
}

func (m *libMix) add(kind string, size int64) {
	m.files[kind]++
	m.bytes[kind] += size
	m.total += size
}

// String is one line per kind: files and MB.
func (m *libMix) String() string {
	kinds := make([]string, 0, len(m.files))
	for k := range m.files {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	fmt.Fprintf(&b, "%d items, %d files, %.0f MB:", m.items, m.count(), float64(m.total)/1e6)
	for _, k := range kinds {
		fmt.Fprintf(&b, " %s %d (%.0f MB);", k, m.files[k], float64(m.bytes[k])/1e6)
	}
	return strings.TrimSuffix(b.String(), ";")
}

func (m *libMix) count() int {
	n := 0
	for _, c := range m.files {
		n += c
	}
	return n
}

// libGenerate lays out a library of about target bytes (it stops at the
// first item that reaches it), reproducible from seed.
func libGenerate(target int64, seed uint64) ([]stFile, *libMix) {
	rng := rand.New(rand.NewPCG(seed, 0x11b))
	mix := &libMix{files: map[string]int{}, bytes: map[string]int64{}}
	const mb = 1_000_000
	uniform := func(lo, hi float64) int64 { return int64((lo + (hi-lo)*rng.Float64()) * mb) }
	var files []stFile
	var mains []int // index in files of each item's main file
	add := func(kind, rel string, size int64) int {
		files = append(files, stFile{rel: rel, size: size})
		mix.add(kind, size)
		return len(files) - 1
	}
	// About 1,500 items a year, spread over ten years in order.
	for i := 0; mix.total < target; i++ {
		day := i * 10 * 365 / max(1, int(target/(9*mb)))
		dir := fmt.Sprintf("%d/%02d", 2016+min(day/365, 9), 1+(day%365)/31)
		name := fmt.Sprintf("IMG_%04d", 1+i%9999)
		if i >= 9999 {
			name = fmt.Sprintf("IMG_%04d_%d", 1+i%9999, i/9999)
		}
		k := libPick(rng.Float64())
		var size int64
		switch k.name {
		case "heic":
			size = uniform(1.5, 2.5)
		case "jpeg":
			size = uniform(3, 5)
		case "png":
			size = uniform(0.2, 1.5)
		case "raw":
			size = uniform(25, 75)
		case "video":
			secs := math.Min(600, 30*math.Exp(0.8*rng.NormFloat64()))
			size = int64(secs * 170 * mb / 60 * (0.9 + 0.2*rng.Float64()))
			name = strings.Replace(name, "IMG", "VID", 1)
		}
		mains = append(mains, add(k.name, dir+"/"+name+"."+k.ext, size))
		if k.name == "heic" && rng.Float64() < 0.4 {
			add("live-mov", dir+"/"+name+".MOV", uniform(2, 4))
		}
		if rng.Float64() < 0.5 {
			add("sidecar", dir+"/"+name+"."+k.ext+".json", int64(500+rng.IntN(1501)))
		} else {
			add("sidecar", dir+"/"+name+".xmp", int64(2000+rng.IntN(8001)))
		}
		mix.items++
	}
	// Albums: copies of 10–20 % of the items' main files, a few albums.
	copies := int(float64(len(mains)) * (0.10 + 0.10*rng.Float64()))
	albums := []string{"Favourites", "Holidays 2019", "Family", "Best of 2023", "Printed"}
	taken := map[string]bool{}
	for _, j := range rng.Perm(len(mains))[:copies] {
		src := files[mains[j]]
		album := albums[rng.IntN(len(albums))]
		rel := "Albums/" + album + "/" + src.rel[strings.LastIndexByte(src.rel, '/')+1:]
		if taken[rel] { // two items named alike in different months
			continue
		}
		taken[rel] = true
		files = append(files, stFile{rel: rel, size: src.size, same: mains[j] + 1})
		mix.add("album-copy", src.size)
	}
	return files, mix
}

// libPick maps u in [0,1) to a kind by the kinds' shares.
func libPick(u float64) libKind {
	for _, k := range libKinds {
		if u < k.share {
			return k
		}
		u -= k.share
	}
	return libKinds[0]
}
