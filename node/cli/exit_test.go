package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestMainExitStatus: Main returns 0 for success and help, 1 for every
// error, which it prints as "mesh: error:" with a hint line.
func TestMainExitStatus(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none")
	for _, tc := range []struct {
		args       []string
		want       int
		wantStdout string
		wantStderr string
	}{
		{[]string{"--home", none, "version"}, 0, "mesh ", ""},
		{[]string{"--help"}, 0, "Usage:\n  mesh [command]", ""},
		{[]string{"folder"}, 0, "Usage:\n  mesh folder [command]", ""},
		{[]string{"--home", none, "status"}, 1, "", "mesh: error: no meshd is running with home \"" + none + "\"\nmesh: hint: start the daemon first: meshd --home " + none + "\n"},
		{[]string{"--home", none, "nosuch"}, 1, "", "mesh: error: unknown command \"nosuch\" for \"mesh\"\nmesh: hint: see 'mesh --help'\n"},
		{[]string{"--home", none, "join"}, 1, "", "mesh: error: accepts 1 arg(s), received 0\nmesh: hint: see 'mesh join --help'\n"},
		{[]string{"--home", none, "feed", "news", "--format", "xml"}, 1, "", "mesh: error: --format \"xml\": want atom, rss or json\n"},
	} {
		var out, errOut strings.Builder
		got := Main(tc.args, &out, &errOut)
		if got != tc.want {
			t.Errorf("mesh %s: exit status %d, want %d (stderr %q)", strings.Join(tc.args, " "), got, tc.want, errOut.String())
		}
		if !strings.Contains(out.String(), tc.wantStdout) || (tc.wantStdout == "" && out.Len() > 0) {
			t.Errorf("mesh %s: stdout %q, want it to hold %q", strings.Join(tc.args, " "), out.String(), tc.wantStdout)
		}
		if errOut.String() != tc.wantStderr {
			t.Errorf("mesh %s: stderr %q, want %q", strings.Join(tc.args, " "), errOut.String(), tc.wantStderr)
		}
	}
}
