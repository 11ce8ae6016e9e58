package identity

import (
	"fmt"
	"testing"
	"time"
)

// benchLog builds a log of about n entries: two admins adding devices on
// their own branches, merging every 10 additions, with some revocations.
func benchLog(b testing.TB, n int) *Log {
	f := newFixture(b)
	a, c := f.log, f.log.Clone()
	at := t0
	for i := 0; a.Len() < n; i++ {
		at = at.Add(time.Second)
		d := newDevice(b, uint64(1000+i))
		if i%2 == 0 {
			must(b, a.Add(f.owner.key, d.id, fmt.Sprint("a", i), RoleMember, at))
			if i%7 == 0 {
				must(b, a.Revoke(f.owner.key, d.id, at))
			}
		} else {
			must(b, c.Add(f.admin.key, d.id, fmt.Sprint("c", i), RoleMember, at))
		}
		if i%10 == 9 {
			_, err := a.Merge(c)
			must(b, err)
			_, err = c.Merge(a)
			must(b, err)
		}
	}
	return a
}

func BenchmarkDecodeLog(b *testing.B) {
	for _, n := range []int{100, 1000} {
		enc := benchLog(b, n).Encode()
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, err := DecodeLog(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
