// Package webui is the web desktop: static HTML, CSS and JavaScript
// embedded into meshd with go:embed and served by the daemon's HTTP API
// (node/API.md). The page talks only to that API.
//
// # What it must never do
//
// It holds no data and no secrets: the files it serves are the same for
// every device and need no token. It never loads anything from another
// origin (no CDN), so it works offline and under a strict CSP.
package webui
