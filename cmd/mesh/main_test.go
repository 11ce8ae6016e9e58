package main

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"mesh": main})
}

// TestExitStatus runs this main as the mesh command: arguments in, exit
// status and output out (node/cli's transcripts cover the commands).
func TestExitStatus(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata/script", RequireExplicitExec: true})
}
