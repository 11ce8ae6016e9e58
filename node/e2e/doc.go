// Package e2e holds end-to-end tests that run the real meshd and mesh
// binaries as processes on loopback, and demo.sh behind `make demo`.
//
// It ships no code: everything here is test harness. It must never reach
// beyond loopback or the test's own temporary directories.
package e2e
