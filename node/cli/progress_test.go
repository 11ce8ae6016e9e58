package cli

import (
	"testing"

	"github.com/meshwork/meshwork/node"
)

func TestProgressText(t *testing.T) {
	for _, c := range []struct {
		p    node.Progress
		want string
	}{
		{node.Progress{FilesDone: 1234, FilesTotal: 20000, BytesDone: 12_345_678, BytesTotal: 204_800_000, Rate: 4_100_000, ETASeconds: 46.9},
			"1,234 of 20,000 files, 12.3 MB of 204.8 MB, 4.1 MB/s, about 47s left"},
		{node.Progress{FilesDone: 0, FilesTotal: 3, BytesDone: 0, BytesTotal: 999},
			"0 of 3 files, 0 B of 999 B"},
		{node.Progress{FilesDone: 800000, FilesTotal: 800000, BytesDone: 2_500_000_000_000, BytesTotal: 2_500_000_000_000},
			"800,000 of 800,000 files, 2.5 TB of 2.5 TB"},
		{node.Progress{FilesDone: 5, FilesTotal: 9, BytesDone: 1000, BytesTotal: 4_000_000_000, Rate: 1500, ETASeconds: 3 * 86400},
			"5 of 9 files, 1.0 kB of 4.0 GB, 1.5 kB/s, about 72h0m0s left"},
	} {
		if got := progressText(c.p); got != c.want {
			t.Errorf("progressText(%+v)\n = %q\nwant %q", c.p, got, c.want)
		}
	}
}
