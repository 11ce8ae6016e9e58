// Package kv holds the small helpers over the daemon's badger database that
// several packages of node/ share.
//
// It must never define a key layout: each package owns its prefixes.
package kv
