package natlab

import (
	"fmt"
	"net/netip"
	"strings"
)

// NAT is how a router translates and filters.
type NAT int

const (
	// Cone is Linux MASQUERADE: the source port is kept when it is free, so
	// one local port maps to one public port for every destination
	// (endpoint-independent mapping); inbound is allowed only for
	// established flows. Hole punching works through it.
	Cone NAT = iota + 1
	// Symmetric is MASQUERADE --random-fully: every new flow gets a random
	// public port (endpoint-dependent mapping). libp2p cannot predict it, so
	// hole punching fails and traffic stays relayed.
	Symmetric
)

func (n NAT) String() string {
	switch n {
	case Cone:
		return "cone"
	case Symmetric:
		return "symmetric"
	}
	return fmt.Sprintf("NAT(%d)", int(n))
}

// Router is a home router: a namespace with "wan" on the internet and a
// "lan" bridge for the hosts behind it.
type Router struct {
	lab    *Lab
	name   string
	ns     string
	nat    NAT
	wanIP  netip.Addr
	lan    netip.Prefix // 192.168.N.0/24
	nextHo int
}

// Router adds a router with the given NAT behaviour. The n-th router of a
// lab serves 192.168.n.0/24 on its LAN and takes the next internet address.
func (l *Lab) Router(name string, nat NAT) *Router {
	l.t.Helper()
	r, err := l.router(name, nat)
	if err != nil {
		l.t.Fatalf("natlab: router %q: %v", name, err)
	}
	return r
}

func (l *Lab) router(name string, nat NAT) (*Router, error) {
	if nat != Cone && nat != Symmetric {
		return nil, fmt.Errorf("unknown NAT type %v", nat)
	}
	name, err := l.allocName("router", name)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.nextRouter++
	n := l.nextRouter
	l.mu.Unlock()
	if n > 250 {
		return nil, fmt.Errorf("too many routers")
	}
	r := &Router{
		lab:  l,
		name: name,
		ns:   l.prefix + "r-" + name,
		nat:  nat,
		lan:  netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(n), 0}), 24),
	}
	if err := l.newNS(r.ns); err != nil {
		return nil, err
	}
	if err := sysctls(r.ns, map[string]string{"net/ipv4/ip_forward": "1"}); err != nil {
		return nil, err
	}
	// Bridged LAN frames need not traverse the router's iptables.
	_ = sysctls(r.ns, map[string]string{"net/bridge/bridge-nf-call-iptables": "0"})
	if r.wanIP, err = l.attachInternet(r.ns, "wan"); err != nil {
		return nil, err
	}
	if err := ipBatch(r.ns,
		"link add lan type bridge mcast_snooping 0",
		"addr add "+netip.PrefixFrom(r.gateway(), 24).String()+" dev lan",
		"link set lan up",
	); err != nil {
		return nil, err
	}
	if err := run([]byte(r.rules()), "ip", "netns", "exec", r.ns, "iptables-restore"); err != nil {
		return nil, fmt.Errorf("in namespace %s: %w (rules:\n%s)", r.ns, err, r.rules())
	}
	return r, nil
}

// rules is the router's iptables-restore input.
func (r *Router) rules() string {
	masq := "-A POSTROUTING -o wan -j MASQUERADE"
	if r.nat == Symmetric {
		masq += " --random-fully"
	}
	return strings.Join([]string{
		"*nat",
		":PREROUTING ACCEPT [0:0]",
		":INPUT ACCEPT [0:0]",
		":OUTPUT ACCEPT [0:0]",
		":POSTROUTING ACCEPT [0:0]",
		masq,
		"COMMIT",
		"*filter",
		":INPUT ACCEPT [0:0]",
		":FORWARD ACCEPT [0:0]",
		":OUTPUT ACCEPT [0:0]",
		"-A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
		"-A INPUT -i wan -j DROP",
		"-A FORWARD -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
		"-A FORWARD -i wan -j DROP",
		"COMMIT",
	}, "\n") + "\n"
}

func (r *Router) gateway() netip.Addr {
	a := r.lan.Addr().As4()
	a[3] = 1
	return netip.AddrFrom4(a)
}

// Host adds a host behind the router: eth0 on the LAN bridge with the next
// address from 192.168.N.10 and a default route via the router.
func (r *Router) Host(name string) *Host {
	r.lab.t.Helper()
	h, err := r.host(name)
	if err != nil {
		r.lab.t.Fatalf("natlab: host %q behind router %q: %v", name, r.name, err)
	}
	return h
}

func (r *Router) host(name string) (*Host, error) {
	name, err := r.lab.allocName("host", name)
	if err != nil {
		return nil, err
	}
	r.lab.mu.Lock()
	r.nextHo++
	k := r.nextHo
	r.lab.mu.Unlock()
	if k > 200 {
		return nil, fmt.Errorf("too many hosts behind router %s", r.name)
	}
	a := r.lan.Addr().As4()
	a[3] = byte(9 + k)
	h := &Host{lab: r.lab, name: name, ns: r.lab.prefix + "h-" + name, ip: netip.AddrFrom4(a), ifname: "eth0", router: r}
	if err := r.lab.newNS(h.ns); err != nil {
		return nil, err
	}
	port := fmt.Sprintf("h%d", k)
	if err := ipBatch(r.ns,
		"link add "+port+" type veth peer name eth0 netns "+h.ns,
		"link set "+port+" master lan",
		"link set "+port+" up",
	); err != nil {
		return nil, err
	}
	if err := ipBatch(h.ns,
		"addr add "+netip.PrefixFrom(h.ip, 24).String()+" dev eth0",
		"link set eth0 up",
		"route add default via "+r.gateway().String(),
	); err != nil {
		return nil, err
	}
	return h, nil
}

// Name is the router's name in the lab.
func (r *Router) Name() string { return r.name }

// NS is the router's network namespace (for ip netns exec / ip -n).
func (r *Router) NS() string { return r.ns }

// NAT is the router's NAT type.
func (r *Router) NAT() NAT { return r.nat }

// WANIP is the router's public address: what peers on the internet see.
func (r *Router) WANIP() netip.Addr { return r.wanIP }

// LAN is the router's home network, 192.168.N.0/24.
func (r *Router) LAN() netip.Prefix { return r.lan }

// WANRxTxBytes reads the byte counters of the router's wan interface.
func (r *Router) WANRxTxBytes() (rx, tx uint64, err error) {
	return linkBytes(r.ns, "wan")
}
