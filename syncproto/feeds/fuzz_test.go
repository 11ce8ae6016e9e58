package feeds

import (
	"bytes"
	"testing"

	"github.com/meshwork/meshwork/syncproto"
)

// The fuzz targets check that whatever a parser accepts is written and
// read back unchanged, and that a second rendering is byte-identical.

func fuzzSeeds(f *testing.F, fm format) {
	var buf bytes.Buffer
	if err := fm.write(&buf, testInfo, sampleItems(f), blobURL); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	folder, list := testObjects(f)
	for _, items := range [][]syncproto.Item{folder.Items(), list.Items(), nil} {
		buf.Reset()
		if err := fm.write(&buf, testInfo, items, nil); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
}

func fuzzRoundTrip(t *testing.T, fm format, data []byte) {
	items, err := fm.parse(bytes.NewReader(data))
	if err != nil {
		return
	}
	var first bytes.Buffer
	if err := fm.write(&first, testInfo, items, blobURL); err != nil {
		t.Fatalf("write parsed items: %v", err)
	}
	again, err := fm.parse(bytes.NewReader(first.Bytes()))
	if err != nil {
		t.Fatalf("parse own rendering: %v\n%s", err, first.Bytes())
	}
	equalItems(t, again, items)
	var second bytes.Buffer
	if err := fm.write(&second, testInfo, again, blobURL); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Fatalf("renderings differ:\n%s\n%s", first.Bytes(), second.Bytes())
	}
}

func FuzzParseAtom(f *testing.F) {
	fuzzSeeds(f, formats[0])
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, formats[0], data) })
}

func FuzzParseRSS(f *testing.F) {
	fuzzSeeds(f, formats[1])
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, formats[1], data) })
}

func FuzzParseJSON(f *testing.F) {
	fuzzSeeds(f, formats[2])
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, formats[2], data) })
}
