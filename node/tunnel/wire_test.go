package tunnel

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestWireRoundTrip(t *testing.T) {
	for _, name := range []string{"a", "ssh", "vnc-2", strings.Repeat("z", MaxNameLen)} {
		enc := appendRequest(nil, name)
		v, got, err := readRequest(bytes.NewReader(enc))
		if err != nil || v != requestVersion || got != name {
			t.Fatalf("request %q: %d %q %v", name, v, got, err)
		}
		for i := range enc {
			if _, _, err := readRequest(bytes.NewReader(enc[:i])); err == nil {
				t.Fatalf("request %q truncated at %d decoded", name, i)
			}
		}
	}
	for _, st := range []Status{StatusOK, StatusRefused, StatusNotFound, StatusUnavailable, StatusBadRequest, 200} {
		enc := appendReply(nil, st, "because")
		got, reason, err := readReply(bytes.NewReader(enc))
		if err != nil || got != st || reason != "because" {
			t.Fatalf("reply %s: %s %q %v", st, got, reason, err)
		}
	}
	// Long reasons are cut at a rune boundary to fit.
	enc := appendReply(nil, StatusRefused, strings.Repeat("é", 100))
	if _, reason, err := readReply(bytes.NewReader(enc)); err != nil || len(reason) != 126 {
		t.Fatalf("long reason: %d bytes, %v", len(reason), err)
	}
	// A length with the continuation bit (a longer uvarint) is refused.
	if _, _, err := readRequest(bytes.NewReader([]byte{1, 0x81, 0x00, 'a'})); !errors.Is(err, errMalformed) {
		t.Fatalf("two-byte length: %v", err)
	}
	if v, _, err := readRequest(bytes.NewReader([]byte{2, 1, 'a'})); !errors.Is(err, errMalformed) || v != 2 {
		t.Fatalf("unknown version: %d %v", v, err)
	}
}

// FuzzReadRequest: the request decoder never panics, reads only the
// request's bytes, and what it accepts re-encodes to exactly those bytes.
func FuzzReadRequest(f *testing.F) {
	f.Add(appendRequest(nil, "ssh"))
	f.Add(appendRequest(nil, strings.Repeat("a", MaxNameLen)))
	f.Add(append(appendRequest(nil, "web"), "GET / HTTP/1.1\r\n"...))
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 0x80, 0x01, 'a'})
	f.Add([]byte{2, 3, 'a', 'b', 'c'})
	f.Add([]byte{1, 3, 'A', 'B', 'C'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		_, name, err := readRequest(r)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error without errMalformed: %v", err)
			}
			return
		}
		if checkName(name) != nil {
			t.Fatalf("accepted invalid name %q", name)
		}
		consumed := len(data) - r.Len()
		if enc := appendRequest(nil, name); !bytes.Equal(enc, data[:consumed]) {
			t.Fatalf("re-encoding %x differs from consumed %x", enc, data[:consumed])
		}
	})
}

// FuzzReadReply checks the reply decoder the same way.
func FuzzReadReply(f *testing.F) {
	f.Add(appendReply(nil, StatusOK, ""))
	f.Add(appendReply(nil, StatusRefused, "not a member"))
	f.Add(append(appendReply(nil, StatusOK, ""), "HTTP/1.1 200 OK"...))
	f.Add([]byte{1, 0x80, 0x01})
	f.Add([]byte{3, 2, 0xff, 0xfe})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		st, reason, err := readReply(r)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error without errMalformed: %v", err)
			}
			return
		}
		consumed := len(data) - r.Len()
		if enc := appendReply(nil, st, reason); !bytes.Equal(enc, data[:consumed]) {
			t.Fatalf("re-encoding %x differs from consumed %x", enc, data[:consumed])
		}
	})
}
