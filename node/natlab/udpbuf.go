package natlab

import (
	"os"
	"strconv"
	"strings"
)

// UDPBufferBytes is what RaiseUDPBuffers sets net.core.rmem_max and
// wmem_max to: the 7 MiB quic-go asks for, and a little more.
const UDPBufferBytes = 7864320 // 7.5 MiB

// RaiseUDPBuffers raises net.core.rmem_max and net.core.wmem_max in the root
// namespace to UDPBufferBytes, if they are lower, and restores the old values
// at cleanup (unless something else changed them meanwhile). This kernel
// does not let them be set inside a namespace, and without them quic-go logs
// a warning and runs with small buffers. Best effort: failures are logged.
//
// Two test processes doing this at once may restore the old value while the
// other still runs; that only brings the warning back.
func (l *Lab) RaiseUDPBuffers(t T) {
	t.Helper()
	for _, k := range []string{"net/core/rmem_max", "net/core/wmem_max"} {
		path := "/proc/sys/" + k
		b, err := os.ReadFile(path)
		if err != nil {
			t.Logf("natlab: read %s: %v", path, err)
			continue
		}
		old, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || old >= UDPBufferBytes {
			continue
		}
		want := strconv.Itoa(UDPBufferBytes)
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Logf("natlab: raise %s: %v", path, err)
			continue
		}
		t.Cleanup(func() {
			cur, err := os.ReadFile(path)
			if err != nil || strings.TrimSpace(string(cur)) != want {
				return
			}
			if err := os.WriteFile(path, []byte(strconv.Itoa(old)), 0o644); err != nil {
				t.Logf("natlab: restore %s to %d: %v", path, old, err)
			}
		})
	}
}
