package wire

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, 7, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	typ, p, err := ReadFrame(bufio.NewReader(&buf), 10)
	if err != nil || typ != 7 || string(p) != "hello" {
		t.Fatalf("got %d %q %v", typ, p, err)
	}
}

func TestFrameTooLarge(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, 1, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadFrame(bufio.NewReader(&buf), 99); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("want ErrTooLarge, got %v", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteFrame(&buf, 1, []byte("seed"))
	f.Add(buf.Bytes())
	f.Add([]byte{0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, p, err := ReadFrame(bufio.NewReader(bytes.NewReader(data)), 1<<16)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteFrame(&out, typ, p); err != nil {
			t.Fatal(err)
		}
		typ2, p2, err := ReadFrame(bufio.NewReader(&out), 1<<16)
		if err != nil || typ2 != typ || !bytes.Equal(p, p2) {
			t.Fatalf("round trip changed frame: %v", err)
		}
	})
}
