package hlc

import (
	"errors"
	"math"
	"testing"
	"time"
)

type fakeTime struct{ t time.Time }

func (f *fakeTime) now() time.Time { return f.t }

var start = time.Date(2026, 1, 10, 10, 0, 0, 0, time.UTC)

func TestNowMonotonic(t *testing.T) {
	ft := &fakeTime{t: start}
	c := NewClock(ft.now, 0)
	t1 := c.Now()
	if t1 != FromTime(start) {
		t.Fatalf("first Now = %v, want %v", t1, FromTime(start))
	}
	t2 := c.Now() // same millisecond: the counter moves
	if t2 != (Timestamp{Wall: t1.Wall, Logical: 1}) {
		t.Fatalf("second Now = %v", t2)
	}
	ft.t = start.Add(-time.Hour) // wall clock steps back
	t3 := c.Now()
	if !t3.After(t2) || t3.Wall != t2.Wall {
		t.Fatalf("Now after a step back = %v, want after %v on the same wall time", t3, t2)
	}
	ft.t = start.Add(time.Second)
	if t4 := c.Now(); t4 != FromTime(ft.t) {
		t.Fatalf("Now after physical time passed = %v", t4)
	}
}

func TestObserve(t *testing.T) {
	ft := &fakeTime{t: start}
	c := NewClock(ft.now, time.Minute)
	remote := FromTime(start.Add(30 * time.Second))
	remote.Logical = 7
	if err := c.Observe(remote); err != nil {
		t.Fatal(err)
	}
	if got := c.Now(); got != (Timestamp{Wall: remote.Wall, Logical: 8}) {
		t.Fatalf("Now after Observe = %v, want just after %v", got, remote)
	}
	// An older remote timestamp changes nothing.
	last := c.Last()
	if err := c.Observe(FromTime(start)); err != nil || c.Last() != last {
		t.Fatalf("Observe of an older time: %v, last %v", err, c.Last())
	}
	// Exactly at the bound: accepted. Beyond it: refused, clock unchanged.
	if err := c.Observe(FromTime(start.Add(time.Minute))); err != nil {
		t.Fatalf("Observe at the bound: %v", err)
	}
	last = c.Last()
	err := c.Observe(FromTime(start.Add(24 * time.Hour)))
	if !errors.Is(err, ErrClockSkew) {
		t.Fatalf("Observe a day ahead: %v, want ErrClockSkew", err)
	}
	if c.Last() != last {
		t.Fatalf("refused Observe moved the clock to %v", c.Last())
	}
	// Witness (own timestamps from storage) skips the bound.
	c.Witness(FromTime(start.Add(24 * time.Hour)))
	if got := c.Now(); !got.After(FromTime(start.Add(24 * time.Hour))) {
		t.Fatalf("Now after Witness = %v", got)
	}
	if NewClock(ft.now, 0).MaxSkew() != DefaultMaxSkew {
		t.Fatal("default bound not applied")
	}
}

func TestCounterOverflow(t *testing.T) {
	ft := &fakeTime{t: start}
	c := NewClock(ft.now, 0)
	c.Witness(Timestamp{Wall: start.UnixMilli(), Logical: math.MaxUint32})
	if got := c.Now(); got != (Timestamp{Wall: start.UnixMilli() + 1}) {
		t.Fatalf("Now after a full counter = %v", got)
	}
}

func TestText(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Timestamp
		out  string
	}{
		{"", Timestamp{}, ""},
		{"2026-01-10T10:00:00.000Z", FromTime(start), "2026-01-10T10:00:00.000Z"},
		{"2026-01-10T10:00:00.000Z+12", Timestamp{Wall: start.UnixMilli(), Logical: 12}, "2026-01-10T10:00:00.000Z+12"},
		{"2026-01-10T10:00:00Z", FromTime(start), "2026-01-10T10:00:00.000Z"},
		{"2026-01-10T12:00:00+02:00", FromTime(start), "2026-01-10T10:00:00.000Z"},
		{"2026-01-10T10:00:00.1234567Z", Timestamp{Wall: start.UnixMilli() + 123}, "2026-01-10T10:00:00.123Z"},
	} {
		got, err := Parse(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			continue
		}
		if s := got.String(); s != tt.out {
			t.Errorf("String of Parse(%q) = %q, want %q", tt.in, s, tt.out)
		}
	}
	for _, bad := range []string{"yesterday", "2026-01-10T10:00:00.000Z+", "2026-01-10T10:00:00.000Z+0", "2026-01-10T10:00:00.000Z+01", "2026-01-10T10:00:00.000Z+x", "1970-01-01T00:00:00Z"} {
		if _, err := Parse(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestCompare(t *testing.T) {
	a := Timestamp{Wall: 5, Logical: 9}
	b := Timestamp{Wall: 6}
	if a.Compare(b) != -1 || b.Compare(a) != 1 || a.Compare(a) != 0 || !b.After(a) || a.After(a) {
		t.Fatal("Compare does not order by wall time, then counter")
	}
	if !(Timestamp{Logical: 1}).After(Timestamp{}) {
		t.Fatal("zero is not first")
	}
}
