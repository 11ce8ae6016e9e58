// Command meshrelay runs a Meshwork relay: a libp2p circuit relay v2 for the
// devices its operator allows, an AutoNAT and identify service, and a
// server of Meshwork's DHT. It is a thin wrapper around package relay.
//
//	meshrelay --state DIR [--listen MULTIADDR]... [--allow-mesh MESH_ID]...
//	          [--allow-device DEVICE_ID]... [--open] [--metrics ADDR]
//	meshrelay id --state DIR
//
// Settings come from flags, then DIR/meshrelay.json (see relay.File), then
// defaults. The relay's key is DIR/relay.key, created on first use.
//
// It must never hold mesh data or import node/; it only wires flags, the
// config file and the key into relay.New and runs it until SIGINT or
// SIGTERM. Errors are printed as "meshrelay: error: ..." with a
// "meshrelay: hint: ..." line where one helps, and exit with status 1.
package main
