package cli

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestTranscriptsCoverEveryCommand fails when a mesh command (or its
// --json form) appears in no transcript of testdata/script, so that a new
// command comes with one.
func TestTranscriptsCoverEveryCommand(t *testing.T) {
	files, err := filepath.Glob("testdata/script/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts in testdata/script: %v", err)
	}
	var lines []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "exec mesh ") || strings.HasPrefix(l, "waitmesh ") {
				lines = append(lines, l)
			}
		}
	}
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if !c.Runnable() || c.Name() == "help" || strings.HasPrefix(c.CommandPath(), "mesh completion") {
			return
		}
		n++
		path := strings.TrimPrefix(c.CommandPath(), "mesh ")
		// "exec mesh [--home H] PATH ..." or "waitmesh H 'REGEXP' PATH ...".
		re := regexp.MustCompile(`(exec mesh( --home \S+)?|^waitmesh \S+ '[^']*') ` + regexp.QuoteMeta(path) + `(\s|$)`)
		found, foundJSON := false, false
		for _, l := range lines {
			if !re.MatchString(l) {
				continue
			}
			found = true
			if strings.Contains(l, " --json") {
				foundJSON = true
			}
		}
		if !found {
			t.Errorf("mesh %s: no transcript in testdata/script runs it", path)
		}
		if c.Flags().Lookup("json") != nil && !foundJSON {
			t.Errorf("mesh %s --json: no transcript in testdata/script runs it", path)
		}
	}
	walk(newRoot(io.Discard, io.Discard))
	if n < 30 {
		t.Errorf("walked %d commands, want the whole tree (30 or more)", n)
	}
}
