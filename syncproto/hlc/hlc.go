package hlc

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultMaxSkew is the default bound on how far a remote timestamp may be
// ahead of the local physical time.
const DefaultMaxSkew = 5 * time.Minute

// ErrClockSkew reports a remote timestamp too far in the future.
var ErrClockSkew = errors.New("timestamp too far in the future")

// ErrMalformed reports a timestamp text form that does not parse.
var ErrMalformed = errors.New("malformed timestamp")

// Timestamp is a hybrid logical clock reading. The zero Timestamp means
// "no time" (an absent FeedSync `when`) and is before every other one.
type Timestamp struct {
	Wall    int64  // physical time, Unix milliseconds
	Logical uint32 // counter for events within the same millisecond
}

// FromTime returns the timestamp of t with a zero counter, truncated to the
// millisecond.
func FromTime(t time.Time) Timestamp {
	return Timestamp{Wall: t.UnixMilli()}
}

// IsZero reports whether t is the zero Timestamp.
func (t Timestamp) IsZero() bool { return t == Timestamp{} }

// Time returns the physical part of t.
func (t Timestamp) Time() time.Time { return time.UnixMilli(t.Wall).UTC() }

// Compare returns -1, 0 or +1 as t is before, equal to or after u.
func (t Timestamp) Compare(u Timestamp) int {
	switch {
	case t.Wall < u.Wall:
		return -1
	case t.Wall > u.Wall:
		return 1
	case t.Logical < u.Logical:
		return -1
	case t.Logical > u.Logical:
		return 1
	}
	return 0
}

// After reports whether t is after u.
func (t Timestamp) After(u Timestamp) bool { return t.Compare(u) > 0 }

const textLayout = "2006-01-02T15:04:05.000Z"

// String returns the text form: RFC 3339 UTC with milliseconds, followed by
// "+" and the counter when the counter is not zero, for example
// "2026-01-02T03:04:05.678Z" or "2026-01-02T03:04:05.678Z+3". The zero
// Timestamp is the empty string.
func (t Timestamp) String() string {
	if t.IsZero() {
		return ""
	}
	s := t.Time().Format(textLayout)
	if t.Logical != 0 {
		s += "+" + strconv.FormatUint(uint64(t.Logical), 10)
	}
	return s
}

// Parse parses the text form written by String. It also accepts any RFC
// 3339 time (as the FeedSync samples carry), truncated to the millisecond.
func Parse(s string) (Timestamp, error) {
	if s == "" {
		return Timestamp{}, nil
	}
	ts, counter, hasCounter := strings.Cut(s, "+")
	if hasCounter && strings.Contains(ts, "T") && !strings.HasSuffix(ts, "Z") {
		// "+" belongs to a numeric zone offset, not a counter.
		ts, counter, hasCounter = s, "", false
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return Timestamp{}, fmt.Errorf("parse timestamp %q: %w", s, ErrMalformed)
	}
	out := FromTime(t)
	if hasCounter {
		n, err := strconv.ParseUint(counter, 10, 32)
		if err != nil || n == 0 || strconv.FormatUint(n, 10) != counter {
			return Timestamp{}, fmt.Errorf("parse timestamp %q: bad counter: %w", s, ErrMalformed)
		}
		out.Logical = uint32(n)
	}
	if out.IsZero() {
		return Timestamp{}, fmt.Errorf("parse timestamp %q: the Unix epoch is reserved for no time: %w", s, ErrMalformed)
	}
	return out, nil
}

// MarshalText implements encoding.TextMarshaler.
func (t Timestamp) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Timestamp) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// next returns the timestamp just after t.
func (t Timestamp) next() Timestamp {
	if t.Logical == math.MaxUint32 {
		return Timestamp{Wall: t.Wall + 1}
	}
	return Timestamp{Wall: t.Wall, Logical: t.Logical + 1}
}

// Clock is a hybrid logical clock. It is safe for concurrent use.
type Clock struct {
	now     func() time.Time
	maxSkew time.Duration

	mu   sync.Mutex
	last Timestamp
}

// NewClock returns a clock reading physical time from now and refusing
// remote timestamps more than maxSkew ahead of it (DefaultMaxSkew when
// maxSkew is zero or negative).
func NewClock(now func() time.Time, maxSkew time.Duration) *Clock {
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	return &Clock{now: now, maxSkew: maxSkew}
}

// MaxSkew returns the clock's bound on remote timestamps.
func (c *Clock) MaxSkew() time.Duration { return c.maxSkew }

// Now returns a timestamp after every timestamp the clock has returned or
// observed, and not before the physical time.
func (c *Clock) Now() Timestamp {
	pt := FromTime(c.now())
	c.mu.Lock()
	defer c.mu.Unlock()
	if pt.After(c.last) {
		c.last = pt
	} else {
		c.last = c.last.next()
	}
	return c.last
}

// Check reports, without changing the clock, whether remote is acceptable:
// it returns an error wrapping ErrClockSkew when remote is more than MaxSkew
// ahead of the physical time.
func (c *Clock) Check(remote Timestamp) error {
	pt := c.now()
	limit := FromTime(pt.Add(c.maxSkew))
	if remote.Wall > limit.Wall {
		return fmt.Errorf("observe %v: %v ahead of local time %v (bound %v): %w",
			remote, remote.Time().Sub(pt).Round(time.Millisecond), pt.UTC().Format(textLayout), c.maxSkew, ErrClockSkew)
	}
	return nil
}

// Observe takes in a timestamp received from a peer, so that every later Now
// is after it. A remote timestamp more than MaxSkew ahead of the physical
// time is refused with ErrClockSkew and leaves the clock unchanged.
func (c *Clock) Observe(remote Timestamp) error {
	if err := c.Check(remote); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if remote.After(c.last) {
		c.last = remote
	}
	return nil
}

// Last returns the latest timestamp the clock returned or observed.
func (c *Clock) Last() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Witness advances the clock to t if t is later, without the MaxSkew
// check. It is for timestamps this clock produced before a restart (read
// back from storage), never for timestamps received from peers.
func (c *Clock) Witness(t Timestamp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.last) {
		c.last = t
	}
}
