// Package natlab builds small NAT labs out of Linux network namespaces so that
// tests can run real peers (go-libp2p hosts, meshd processes) behind real
// address-translating routers: a relay on a fake internet, devices behind
// port-preserving ("cone") or port-randomising ("symmetric") NATs, and several
// devices on one home LAN.
//
// # Topology
//
// Every lab gets its own "internet": a bridge inside a dedicated namespace
// (never the root namespace) with 1.2.0.0/24 on it. That range is one that
// manet.IsPublicAddr accepts, which go-libp2p needs before it will hole-punch;
// go-libp2p's own tests use it. Public hosts (a relay, a public device) and
// the WAN side of every router attach to that bridge and get 1.2.0.1, .2, …
// in the order they are created; 1.2.0.254 is the bridge itself and the
// default gateway, and leads nowhere.
//
// A router is a namespace with "wan" on the internet bridge and a "lan"
// bridge with 192.168.N.1/24 (N is 1 for the lab's first router, 2 for the
// second, …). Each home host behind it has "eth0" = 192.168.N.10, .11, … and a
// default route via the router. The router forwards, masquerades everything
// that leaves through wan and drops unsolicited inbound traffic on wan:
//
//	Cone:      -t nat -A POSTROUTING -o wan -j MASQUERADE               (keeps source ports when it can)
//	Symmetric: -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully (new port per mapping)
//	both:      INPUT and FORWARD from wan: ACCEPT ESTABLISHED,RELATED, DROP the rest
//
// Multicast works on a home LAN (the lan bridge has multicast snooping off),
// so mDNS between two hosts behind one router works. IPv6 is disabled in
// every lab namespace: the lab is IPv4 only.
//
// # Use
//
//	lab := natlab.New(t)                // skips unless root with ip and iptables
//	lab.RaiseUDPBuffers(t)              // optional: quiet quic-go's buffer warning
//	relay := lab.PublicHost("relay")    // 1.2.0.1
//	a := lab.Router("home1", natlab.Cone).Host("a")      // 192.168.1.10
//	b := lab.Router("home2", natlab.Symmetric).Host("b") // 192.168.2.10
//	p := a.Start(t, meshd, "-listen", "/ip4/0.0.0.0/udp/4001/quic-v1")
//	line, err := p.WaitLine(ctx, func(l string) bool { return strings.Contains(l, "ready") })
//
// Host.Command gives a plain *exec.Cmd that runs inside the host's namespace
// (through "ip netns exec"), stopped with SIGTERM when its context ends.
// Host.Start wraps that for long-running daemons: stdout lines are queued for
// WaitLine/NextLine (read with deadlines, never sleep), both streams are
// logged through t.Logf, and the process is stopped gracefully at cleanup.
// Host.RxTxBytes and Router.WANRxTxBytes read interface byte counters, e.g.
// to assert how much traffic crossed the relay.
//
// Every namespace name starts with the lab's prefix, "nl<pid>x<n>-", so
// parallel test packages never collide. Lab.Close (registered with t.Cleanup)
// stops what still runs in the lab and deletes every namespace, and with them
// every veth and bridge, the lab made. New also deletes namespaces left by a
// crashed earlier run: those whose prefix names a process that no longer
// exists. Processes started with Command or Start die with the test process
// (Pdeathsig), so a crash leaves no daemon behind.
//
// # Running meshd in a lab
//
// Build meshd once per test binary (go build into a temporary directory, as
// holepunch_test.go does for labpeer) before starting any scenario clock: a
// cold build of a go-libp2p program takes minutes on two cores. Then:
//
//	relay := lab.PublicHost("relay")
//	r := relay.Start(t, meshrelay, "-listen", "/ip4/0.0.0.0/udp/4001/quic-v1", "-key", keyFile)
//	// read the relay's peer ID from its output with r.WaitLine(ctx, ...)
//	a := lab.Router("home1", natlab.Cone).Host("a")
//	da := a.Start(t, meshd, "-data", t.TempDir(), "-relay", relayAddr)
//
// Give every daemon its own data directory (the filesystem is shared; only
// the network is per host) and fixed ports (4001): MASQUERADE keeps the port,
// which is what makes the observed address punchable. Let the daemon print
// machine-readable events on stdout (one JSON object per line) and wait for
// them with WaitLine and a context deadline; a control socket, if any, must
// be a Unix socket (short path: 108 bytes at most), never a lab address. To
// restart a relay, Stop its Proc (SIGTERM: a killed go-libp2p node leaves
// stale QUIC state at its peers) and Start it again with the same key file.
// To count relayed bytes, read relay.RxTxBytes before and after.
//
// A go-libp2p node behind a NAT registers /libp2p/dcutr only after it has
// seen a public observed address (about 0.3 s after it reaches the relay),
// and the side that receives the relayed connection starts the punch only if
// its hole-punch service is up by then: a daemon should report when
// holepunch.Protocol appears in h.Mux().Protocols(), and the test should
// wait for that on both sides before the dial.
//
// IPv6 is disabled on every lab interface; a daemon may still listen on
// /ip6/:: (it just gets no IPv6 address).
//
// # What it must never do
//
// natlab never changes the root namespace's addresses, routes, links or
// firewall, and never connects a lab namespace to the host's real network:
// all veths are created inside lab namespaces, with both ends in lab
// namespaces. The only root-namespace state it touches is
// net.core.rmem_max/wmem_max, in RaiseUDPBuffers, which it restores at
// cleanup (this kernel refuses them inside a namespace).
//
// Lab addresses exist only inside the lab. Never dial them from the test
// process itself: the root namespace has no route to 1.2.0.0/24 other than
// its default route, which leads to the real network. Talk to daemons in the
// lab through a Unix socket, through their stdout, or from a process started
// with Host.Command; Host.Do runs a function with sockets created inside a
// host's namespace.
//
// natlab is a test helper: it needs root (CAP_NET_ADMIN), calls Fatalf on
// setup failures and must be used from the test's goroutine.
package natlab
