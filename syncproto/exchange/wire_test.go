package exchange

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/meshwork/meshwork/syncproto"
)

var (
	testEpoch  = syncproto.Epoch{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	testEpoch2 = syncproto.Epoch{0xff, 2: 7}
)

func sampleAnnounces() []announce {
	return []announce{
		{},
		{Reply: true},
		{Heads: []head{{Object: "a", Epoch: testEpoch, Head: 0}}},
		{Reply: true, Heads: []head{
			{Object: "folder/1", Epoch: testEpoch, Head: 1 << 40},
			{Object: "note-ü", Epoch: testEpoch2, Head: 127},
		}},
	}
}

func sampleRequests() []request {
	return []request{
		{Object: "a"},
		{Object: "a", Cursor: syncproto.Cursor{Epoch: testEpoch, Seq: 0}},
		{Object: "list", Cursor: syncproto.Cursor{Epoch: testEpoch2, Seq: 300}},
		{Object: "list", More: true, Summary: []summaryEntry{
			{Item: "x", Digest: digest{1}},
			{Item: "y", Digest: digest{15: 9}},
		}},
		{Object: "list", Summary: []summaryEntry{{Item: "z"}}},
	}
}

func frame(typ byte, payload []byte) []byte {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	if err := writeFrame(w, typ, payload); err != nil {
		panic(err)
	}
	w.Flush()
	return b.Bytes()
}

func sampleChanges() []byte {
	it, err := syncproto.UpdateItem(syncproto.Item{Sync: syncproto.Sync{ID: "x"}, Content: syncproto.Content{Title: "t", Body: syncproto.Text("hi")}},
		"12D3KooWexample", hlcTimestamp(), false)
	if err != nil {
		panic(err)
	}
	return syncproto.EncodeChanges(syncproto.Changes{Object: "list", Epoch: testEpoch, Head: 4, Changes: []syncproto.Change{{Seq: 3, Item: it}}})
}

func TestWireRoundTrip(t *testing.T) {
	for _, a := range sampleAnnounces() {
		got, err := decodeAnnounce(a.encode())
		if err != nil {
			t.Fatalf("%+v: %v", a, err)
		}
		if !bytes.Equal(got.encode(), a.encode()) || got.Reply != a.Reply || len(got.Heads) != len(a.Heads) {
			t.Fatalf("announce %+v came back as %+v", a, got)
		}
	}
	for _, q := range sampleRequests() {
		got, err := decodeRequest(q.encode())
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		if !bytes.Equal(got.encode(), q.encode()) || got.Cursor != q.Cursor || got.More != q.More {
			t.Fatalf("request %+v came back as %+v", q, got)
		}
	}
	m := errorMsg{Code: codeRefused, Text: "no"}
	if got, err := decodeError(m.encode()); err != nil || got != m {
		t.Fatalf("error message: %+v, %v", got, err)
	}
}

func TestWireRejects(t *testing.T) {
	good := announce{Heads: []head{{Object: "a", Epoch: testEpoch, Head: 1}}}.encode()
	cases := map[string]struct {
		decode func([]byte) error
		data   []byte
	}{
		"announce flags":        {decAnnounce, []byte{2, 0}},
		"announce trailing":     {decAnnounce, append(bytes.Clone(good), 0)},
		"announce short":        {decAnnounce, good[:len(good)-1]},
		"announce zero epoch":   {decAnnounce, announce{Heads: []head{{Object: "a"}}}.encode()},
		"announce out of order": {decAnnounce, announce{Heads: []head{{Object: "b", Epoch: testEpoch}, {Object: "a", Epoch: testEpoch}}}.encode()},
		"announce duplicate":    {decAnnounce, announce{Heads: []head{{Object: "a", Epoch: testEpoch}, {Object: "a", Epoch: testEpoch}}}.encode()},
		"announce long varint":  {decAnnounce, []byte{0, 0x81, 0x00}},
		"announce huge count":   {decAnnounce, []byte{0, 0xff, 0xff, 0x03}},
		"announce bad id":       {decAnnounce, announce{Heads: []head{{Object: "a\x00", Epoch: testEpoch}}}.encode()},
		"request seq no epoch":  {decRequest, request{Object: "a", Cursor: syncproto.Cursor{Seq: 3}}.encode()},
		"request summary+cur":   {decRequest, request{Object: "a", Cursor: syncproto.Cursor{Epoch: testEpoch}, Summary: []summaryEntry{{Item: "x"}}}.encode()},
		"request more+cursor":   {decRequest, request{Object: "a", Cursor: syncproto.Cursor{Epoch: testEpoch}, More: true}.encode()},
		"request summary order": {decRequest, request{Object: "a", Summary: []summaryEntry{{Item: "y"}, {Item: "x"}}}.encode()},
		"request empty object":  {decRequest, request{}.encode()},
		"error long text":       {decError, errorMsg{Text: strings.Repeat("x", maxErrorText+1)}.encode()},
	}
	for name, c := range cases {
		if err := c.decode(c.data); !errors.Is(err, errFrame) {
			t.Errorf("%s: %v", name, err)
		}
	}
	frames := map[string][]byte{
		"unknown type":  {0x09, 0, 0, 0, 0},
		"too long":      {msgChanges, 0x00, 0x80, 0x00, 0x01},
		"non-empty end": {msgEnd, 0, 0, 0, 1, 0},
		"short header":  {msgAnnounce, 0},
		"short payload": {msgAnnounce, 0, 0, 0, 9, 1},
		"empty":         {},
	}
	for name, b := range frames {
		if _, _, err := readFrame(bytes.NewReader(b)); err == nil {
			t.Errorf("frame %s: no error", name)
		}
	}
}

func decAnnounce(b []byte) error { _, err := decodeAnnounce(b); return err }
func decRequest(b []byte) error  { _, err := decodeRequest(b); return err }
func decError(b []byte) error    { _, err := decodeError(b); return err }

// The decoders accept only what the encoders write: whatever decodes
// encodes back to the same bytes.
func FuzzAnnounce(f *testing.F) {
	for _, a := range sampleAnnounces() {
		f.Add(a.encode())
	}
	f.Add([]byte{0, 0x81, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := decodeAnnounce(data)
		if err != nil {
			return
		}
		if !bytes.Equal(a.encode(), data) {
			t.Fatalf("%x decoded to %+v, encodes to %x", data, a, a.encode())
		}
	})
}

func FuzzRequest(f *testing.F) {
	for _, q := range sampleRequests() {
		f.Add(q.encode())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := decodeRequest(data)
		if err != nil {
			return
		}
		if !bytes.Equal(q.encode(), data) {
			t.Fatalf("%x decoded to %+v, encodes to %x", data, q, q.encode())
		}
	})
}

// FuzzFrame reads a frame and decodes its payload by type; what is read
// writes back to the same bytes.
func FuzzFrame(f *testing.F) {
	for _, a := range sampleAnnounces() {
		f.Add(frame(msgAnnounce, a.encode()))
	}
	for _, q := range sampleRequests() {
		f.Add(frame(msgRequest, q.encode()))
	}
	f.Add(frame(msgChanges, sampleChanges()))
	f.Add(frame(msgEnd, nil))
	f.Add(frame(msgError, errorMsg{Code: codeBadRequest, Text: "bad"}.encode()))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		typ, p, err := readFrame(r)
		if err != nil {
			return
		}
		consumed := data[:len(data)-r.Len()]
		if !bytes.Equal(frame(typ, p), consumed) {
			t.Fatalf("frame %x writes back as %x", consumed, frame(typ, p))
		}
		var re []byte
		switch typ {
		case msgAnnounce:
			a, err := decodeAnnounce(p)
			if err != nil {
				return
			}
			re = a.encode()
		case msgRequest:
			q, err := decodeRequest(p)
			if err != nil {
				return
			}
			re = q.encode()
		case msgChanges:
			c, err := syncproto.DecodeChanges(p)
			if err != nil {
				return
			}
			re = syncproto.EncodeChanges(c)
		case msgError:
			m, err := decodeError(p)
			if err != nil {
				return
			}
			re = m.encode()
		case msgEnd:
			re = []byte{}
		}
		if !bytes.Equal(re, p) {
			t.Fatalf("type %#x payload %x re-encodes to %x", typ, p, re)
		}
	})
}
