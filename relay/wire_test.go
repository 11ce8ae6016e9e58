package relay

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRequestRoundTrip(t *testing.T) {
	for _, n := range []int{1, 127, 128, 300, 1 << 16} {
		log := bytes.Repeat([]byte{0xa5}, n)
		enc := appendRequest(nil, log)
		got, err := readRequest(bufio.NewReader(bytes.NewReader(enc)), 1<<20)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, log) {
			t.Fatalf("%d bytes: round trip changed the log", n)
		}
	}
}

func TestReadRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"empty stream", nil, 10, ErrMalformed},
		{"zero length", []byte{0}, 10, ErrMalformed},
		{"over the bound", appendRequest(nil, make([]byte, 11)), 10, ErrTooLarge},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10, ErrTooLarge},
		{"overlong varint", bytes.Repeat([]byte{0x80}, 11), 10, ErrMalformed},
		{"short body", []byte{5, 1, 2}, 10, ErrMalformed},
	} {
		_, err := readRequest(bufio.NewReader(bytes.NewReader(tc.in)), tc.max)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestResponseRoundTrip(t *testing.T) {
	long := strings.Repeat("é", maxMessageLen) // 2 bytes a rune: must be cut on a rune boundary
	for _, tc := range []struct {
		st  Status
		msg string
	}{
		{StatusOK, ""},
		{StatusNotMember, "device X is not a current member"},
		{StatusBusy, long},
		{Status(200), "\xff invalid utf-8"},
	} {
		enc := appendResponse(nil, tc.st, tc.msg)
		st, msg, err := readResponse(bufio.NewReader(bytes.NewReader(enc)))
		if err != nil {
			t.Fatalf("%v %q: %v", tc.st, tc.msg, err)
		}
		if st != tc.st || len(msg) > maxMessageLen || !utf8.ValidString(msg) {
			t.Fatalf("%v %q: got %v %q", tc.st, tc.msg, st, msg)
		}
		if len(tc.msg) <= maxMessageLen && utf8.ValidString(tc.msg) && msg != tc.msg {
			t.Fatalf("message changed: %q → %q", tc.msg, msg)
		}
	}
}

func TestStatusNames(t *testing.T) {
	seen := map[string]bool{}
	for s := StatusOK; s <= StatusBusy; s++ {
		name := s.String()
		if seen[name] || strings.HasPrefix(name, "status_") {
			t.Errorf("status %d has name %q", s, name)
		}
		seen[name] = true
	}
	if got := Status(99).String(); got != "status_99" {
		t.Errorf("unknown status: %q", got)
	}
	err := error(&AuthError{Status: StatusNotMember, Message: "m"})
	if !errors.Is(err, ErrRefused) {
		t.Errorf("AuthError is not ErrRefused")
	}
}

// FuzzReadRequest checks that the request decoder never panics, never
// returns more than the bound, and that what it accepts re-encodes to the
// bytes it consumed (so the framing has one encoding per log).
func FuzzReadRequest(f *testing.F) {
	f.Add(appendRequest(nil, []byte("log")), 16)
	f.Add(appendRequest(nil, bytes.Repeat([]byte{1}, 200)), 1024)
	f.Add([]byte{0}, 16)
	f.Add([]byte{0x80, 0x01}, 16)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 16)
	f.Add([]byte{3, 'a', 'b'}, 16)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max <= 0 || max > 1<<16 {
			max = 1 << 16
		}
		br := bytes.NewReader(data)
		r := bufio.NewReader(br)
		log, err := readRequest(r, max)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if len(log) == 0 || len(log) > max {
			t.Fatalf("accepted a log of %d bytes with bound %d", len(log), max)
		}
		consumed := len(data) - br.Len() - r.Buffered()
		if enc := appendRequest(nil, log); !bytes.Equal(enc, data[:consumed]) {
			t.Fatalf("re-encoding differs: %x vs consumed %x", enc, data[:consumed])
		}
	})
}

// FuzzReadResponse checks the response decoder the same way.
func FuzzReadResponse(f *testing.F) {
	f.Add(appendResponse(nil, StatusOK, "authorised"))
	f.Add(appendResponse(nil, StatusNotMember, "not a member"))
	f.Add([]byte{0})
	f.Add([]byte{1, 0xff, 0x03})
	f.Add([]byte{2, 2, 0xff, 0xfe})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		st, msg, err := readResponse(r)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		enc := appendResponse(nil, st, msg)
		if !bytes.HasPrefix(data, enc) {
			t.Fatalf("re-encoding %x is not a prefix of the input %x", enc, data)
		}
	})
}
