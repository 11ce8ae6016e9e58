// Package localapi is the daemon's local API: the HTTP+JSON control API on
// the Unix socket node.SocketPath(home) (mode 0600, the mesh CLI's channel,
// no token), and the HTTP API with the web desktop on 127.0.0.1 (token,
// Host and Origin checks: node/API.md is its reference). It decodes
// requests, calls the daemon's core (package node) and encodes the answers;
// the logic stays in the core.
//
// cmd/meshd wires the two:
//
//	n, _ := node.New(cfg, logger)
//	api, _ := localapi.Listen(n, localapi.Config{Home: cfg.Home, ...})
//	defer api.Close()
//	n.Run(ctx, api.Serve) // the API shuts down with the node's other tasks
//
// # Layout
//
//   - server.go: Listen, Serve, Close; the control socket. http.go: the TCP
//     listener, its token, login and guards. connlimit.go: both listeners'
//     connection budgets and timeouts.
//   - routes.go: every route of both listeners, in one place. A new HTTP
//     route goes there, its handler in the file of its concept.
//   - Handler files by concept, each declaring the small interface of the
//     core it needs (at the consumer): mesh.go (meshCore: status, init,
//     invite, join, devices, revoke, ping, web), folders.go (folderCore),
//     files.go (fileCore: folder files and blobs over HTTP), objects.go
//     (objectCore: objects, feeds, items), tunnels.go (tunnelCore),
//     blobs.go (blobCore), events.go (eventCore: Server-Sent Events),
//     storage.go (storageCore). Core is their union; *node.Node satisfies
//     it. respond.go: JSON answers and the status code of a core failure
//     (node.ErrNotFound → 404, node.ErrNoMesh → 409, ...: statusOf).
//
// # Control socket routes
//
// Every answer is JSON; a failure has a 4xx/5xx status and the body
// {"error": "..."}. The JSON field names are stable: new fields may be
// added, none renamed.
//
//	GET  /v1/status            → node.Status
//	POST /v1/init    {"name"}  → {"mesh_id"}
//	POST /v1/invite  {"role", "ttl", "storage"}  (ttl as a Go duration, "24h";
//	                 storage: a code without the mesh content key, node/storage.go)
//	                           → node.InviteResponse
//	POST /v1/join    {"code", "name"} → {"mesh_id"}
//	GET  /v1/devices           → [node.Device]
//	POST /v1/revoke  {"device"} (name or ID) → {"id", "name"}
//	GET  /v1/ping?device=NAME|ID&count=N → [node.PingResult] (N ≤ 100, default 3)
//	GET  /v1/web               → {"url", "addr", "token"}: the web desktop's login
//	POST /v1/blobs/add, POST /v1/blobs/get — see blobs.go
//	expose, unexpose, exposed, tunnels — see tunnels.go
//	POST   /v1/folders {"path","name"}          share a directory as a new folder
//	POST   /v1/folders/join {"name","path","mode"}  sync an existing folder here
//	POST   /v1/folders/share {"name","device","role"}  owner sets a device's role
//	GET    /v1/folders                          → [node.FolderInfo]
//	DELETE /v1/folders/{name}                   stop syncing it here (files stay)
//	GET    /v1/folders/{name}/wait?timeout=D    → node.WaitResult when this copy holds
//	                                            every change made on an online member
//	                                            before the call (node/insync.go)
//	GET    /v1/folders/{name}/files             → [node.FileInfo] (metadata mode)
//	GET    /v1/history?path=P → [node.HistoryEntry]; POST /v1/restore {"path","version"}
//	GET    /v1/storage → node.StorageStatus; POST /v1/fetch, POST /v1/evict {"paths"}
//	GET    /v1/news[?follow=1] → [node.NewsEntry] (follow: NDJSON, pushed as it happens)
//	GET    /api/v1/…            the HTTP API's routes, without a token
//	GET    /debug/pprof/…       Go's profiler (net/http/pprof)
//
// # What it must never do
//
// It must never hold state of the mesh or reach into the core's fields:
// it calls exported methods of node through its interfaces, and package
// node must never import it (TestCoreNeverImportsAPI). It must never
// serve /api/ on TCP without the token, nor any TCP request whose Host or
// Origin is foreign, and never listen on the socket with a mode wider than
// 0600.
package localapi
