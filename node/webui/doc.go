// Package webui is the web desktop: static HTML, CSS and JavaScript
// embedded into meshd with go:embed and served by the daemon's HTTP API
// (node/API.md). The page talks only to that API.
//
// # What it must never do
//
// It holds no data and no secrets: the files it serves are the same for
// every device and need no token. It never loads anything from another
// origin (no CDN), so it works offline and under a strict CSP.
//
// # The files
//
// static/index.html is the one page; static/assets/app.js (plain
// JavaScript, no build step), app.css and icon.svg are everything else.
// Without a session the page shows a login form (POST /login with the
// field token); GET /login?token=… (the URL `mesh web` prints) does the
// same. Logged in, it shows the device ring, the folders with their sync
// state, the open folder's file browser (download, upload, history and
// restore of a file, conflict copies with "keep this"/"keep other"), the
// news stream, invites (code and QR image) and exposed services.
//
// Live updates come only from one EventSource on /api/v1/events (with
// viewing=FOLDER while a folder is open): change, folder, devices, news,
// presence and reset events redraw the part they concern. The page never
// polls; a timer only re-words "5 min ago" from what the page holds.
// Lists are redrawn row by row, only where a row's data changed.
//
// The location hash keeps what is open (#folder=NAME&dir=D/&history=PATH),
// so a reload or a shared link comes back to the same view.
//
// # Test hooks
//
// Elements that tests drive carry ids or data-testid attributes, and rows
// carry their data as attributes: device rows data-name, data-online,
// data-self and data-connection; file rows data-path, data-local,
// data-size and data-deleted; history rows data-n and data-size;
// conflict rows data-path and data-conflict-of; #upload-status and
// #history-status a data-state of done or failed; #live a data-state of
// open, connecting or closed. node/e2e/web_test.go drives the page in
// headless Chromium.
package webui
