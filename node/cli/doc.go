// Package cli is the mesh command-line tool: it parses commands and talks
// to the running meshd over the control API's Unix socket (see node/localapi).
//
// It must never touch the daemon's home directly (key, database): the
// daemon owns them; the CLI only asks.
//
// Output: human-readable tables by default; with --json, the API's JSON
// unchanged, so scripts get the stable field names documented in node/localapi.
// Errors are printed as "mesh: error: ..." (and "mesh: hint: ..." where a
// next step helps; a command, argument or flag that does not fit hints at
// the command's --help) with exit status 1.
//
// The transcripts in testdata/script (script_test.go) run every command
// against real daemons: its output, its --json form and its error lines.
package cli
