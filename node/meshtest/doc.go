// Package meshtest builds an in-process mesh of real Meshwork nodes for
// tests: New(t, n) starts n devices (node.New and Run, real libp2p hosts on
// loopback TCP and QUIC, a temporary home each, no mDNS and no HTTP
// listener), makes them one mesh the way a user does (mesh init on the
// first device, an invite code from it redeemed by each of the others) and
// waits until every device is connected to every other member. Options add
// a relay (package relay, in-process, admitting only this mesh) and a
// storage peer (a node with node.RoleStorage, joined with a storage invite
// code). t.Cleanup stops every node and waits for its Run to return, bounded
// by node.ShutdownBudget; when the test failed, it prints the tail of each
// node's log.
//
// The helpers drive the nodes through their Go methods (Init, Invite, Join,
// AddFolder, JoinFolder, WaitFolder, Revoke, Devices), the same calls the
// control API makes for the mesh CLI, so a protocol-level test needs no
// meshd process and no socket. Tests that need the binaries, the CLI's
// output or the HTTP API stay in node/e2e. A test reads like this:
//
//	m := meshtest.New(t, 3)
//	d0, d1 := m.Device(0), m.Device(1)
//	d0.WriteFile("docs", "a.txt", []byte("hello"))
//	d0.AddFolder("docs")
//	d1.JoinFolder("docs")
//	d1.WaitFolder("docs") // d1's copy now has a.txt
//	d1.Stop()             // offline; d1.Start() brings it back on its ports
//	m.WaitFor("d0 sees d1 go", func() bool { return !d0.ConnectedTo(d1) })
//
// What it must never do:
//   - be imported by non-test code: it imports testing, and meshd, mesh and
//     meshrelay must not link it (TestNoShippedImport checks the module);
//   - synchronise by sleeping: every wait is WaitFor (a condition polled
//     until a bound) or a call that itself returns when done (Ready,
//     WaitFolder), and a bound that passes fails the test, naming what it
//     waited for;
//   - assert on time: bounds exist so that a hung test fails, not to
//     measure speed (that belongs in benchmarks);
//   - change how a node behaves: it sets only what meshd's flags set
//     (listen addresses, relays, role, --no-mdns, --http off).
package meshtest
