package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
)

// echoProtocol copies every byte back until the writer closes its side.
const echoProtocol protocol.ID = "/natlab/echo/1.0.0"

// mdnsService is the mDNS service name labpeers announce and look for.
const mdnsService = "natlab-labpeer"

type config struct {
	mode          string
	port          int
	transports    string
	keyFile       string
	relay         string
	connect       string
	mdns          bool
	holepunchWait time.Duration
	dialTimeout   time.Duration
}

func main() {
	var cfg config
	flag.StringVar(&cfg.mode, "mode", "peer", "relay or peer")
	flag.IntVar(&cfg.port, "port", 4001, "TCP and UDP port to listen on (fixed ports make NAT mappings punchable)")
	flag.StringVar(&cfg.transports, "transports", "quic,tcp", "comma-separated transports to listen on: quic, tcp")
	flag.StringVar(&cfg.keyFile, "key", "", "identity key file (created if missing); empty means a fresh identity")
	flag.StringVar(&cfg.relay, "relay", "", "peer mode: relay multiaddr including /p2p/ID to reserve on")
	flag.StringVar(&cfg.connect, "connect", "", "peer mode: peer ID to dial through the relay and keep connected")
	flag.BoolVar(&cfg.mdns, "mdns", false, "peer mode: find and dial LAN peers with mDNS")
	flag.DurationVar(&cfg.holepunchWait, "holepunch-wait", 20*time.Second, "peer mode: how long to wait for DCUtR to register before reporting ready (0: do not wait)")
	flag.DurationVar(&cfg.dialTimeout, "dial-timeout", 10*time.Second, "DCUtR direct dial timeout")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	out := &emitter{start: time.Now(), enc: json.NewEncoder(os.Stdout)}
	if err := run(ctx, cfg, out); err != nil {
		out.emit(ev{Event: "error", Err: err.Error()})
		fmt.Fprintf(os.Stderr, "labpeer: error: %v\n", err)
		os.Exit(1)
	}
}

// ev is one JSON line on stdout.
type ev struct {
	Event     string   `json:"event"`
	T         int64    `json:"t_ms"`
	ID        string   `json:"id,omitempty"`
	Addrs     []string `json:"addrs,omitempty"`
	Holepunch *bool    `json:"holepunch,omitempty"`
	Peer      string   `json:"peer,omitempty"`
	Addr      string   `json:"addr,omitempty"`
	Relayed   *bool    `json:"relayed,omitempty"`
	Dir       string   `json:"dir,omitempty"`
	AfterMS   *float64 `json:"after_ms,omitempty"`
	Type      string   `json:"type,omitempty"`
	Success   *bool    `json:"success,omitempty"`
	MS        *float64 `json:"ms,omitempty"`
	Bytes     int      `json:"bytes,omitempty"`
	Err       string   `json:"err,omitempty"`
}

type emitter struct {
	start time.Time
	mu    sync.Mutex
	enc   *json.Encoder
}

func (e *emitter) emit(v ev) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v.T = time.Since(e.start).Milliseconds()
	_ = e.enc.Encode(v)
}

func ptr[T any](v T) *T { return &v }

func ms(d time.Duration) *float64 { return ptr(float64(d.Microseconds()) / 1000) }

func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

func loadKey(path string) (crypto.PrivKey, error) {
	if path == "" {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		return k, err
	}
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("load key %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load key: %w", err)
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	b, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("save key: %w", err)
	}
	return k, nil
}

func listenAddrs(cfg config) ([]string, error) {
	var addrs []string
	for _, t := range strings.Split(cfg.transports, ",") {
		switch strings.TrimSpace(t) {
		case "quic":
			addrs = append(addrs, fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", cfg.port))
		case "tcp":
			addrs = append(addrs, fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", cfg.port))
		default:
			return nil, fmt.Errorf("unknown transport %q in -transports %q", t, cfg.transports)
		}
	}
	return addrs, nil
}

func run(ctx context.Context, cfg config, out *emitter) error {
	key, err := loadKey(cfg.keyFile)
	if err != nil {
		return err
	}
	laddrs, err := listenAddrs(cfg)
	if err != nil {
		return err
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(laddrs...),
		libp2p.DisableMetrics(),
	}
	switch cfg.mode {
	case "relay":
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case "peer":
		opts = append(opts,
			libp2p.EnableHolePunching(
				holepunch.DirectDialTimeout(cfg.dialTimeout),
				holepunch.WithTracer(tracer{out}),
			),
		)
	default:
		return fmt.Errorf("unknown -mode %q", cfg.mode)
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return fmt.Errorf("new host: %w", err)
	}
	p := &peerNode{cfg: cfg, h: h, out: out, firstRelayed: map[peer.ID]time.Time{}, direct: map[peer.ID]bool{}}
	h.Network().Notify(p.notifiee())
	h.SetStreamHandler(echoProtocol, handleEcho)

	var wg sync.WaitGroup
	defer func() {
		// Closing the host first unblocks every goroutine below.
		_ = h.Close()
		wg.Wait()
	}()

	if cfg.mode == "relay" {
		r, err := relayv2.New(h, relayv2.WithInfiniteLimits())
		if err != nil {
			return fmt.Errorf("start relay: %w", err)
		}
		defer r.Close()
		out.emit(ev{Event: "ready", ID: h.ID().String(), Addrs: addrStrings(h.Addrs())})
		<-ctx.Done()
		return nil
	}
	return p.runPeer(ctx, &wg)
}

func addrStrings(as []ma.Multiaddr) []string {
	s := make([]string, 0, len(as))
	for _, a := range as {
		s = append(s, a.String())
	}
	return s
}

type peerNode struct {
	cfg config
	h   host.Host
	out *emitter

	mu           sync.Mutex
	relayID      peer.ID
	firstRelayed map[peer.ID]time.Time
	direct       map[peer.ID]bool
}

func (p *peerNode) notifiee() *network.NotifyBundle {
	return &network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			rp, ra := c.RemotePeer(), c.RemoteMultiaddr()
			p.mu.Lock()
			if rp == p.relayID {
				p.mu.Unlock()
				return
			}
			relayed := isRelayed(ra)
			var after *float64
			if relayed {
				if _, ok := p.firstRelayed[rp]; !ok {
					p.firstRelayed[rp] = time.Now()
				}
			} else if t0, ok := p.firstRelayed[rp]; ok && !p.direct[rp] {
				p.direct[rp] = true
				after = ms(time.Since(t0))
			}
			p.mu.Unlock()
			p.out.emit(ev{Event: "conn", Peer: rp.String(), Addr: ra.String(), Relayed: ptr(relayed), Dir: c.Stat().Direction.String()})
			if after != nil {
				p.out.emit(ev{Event: "direct", Peer: rp.String(), Addr: ra.String(), AfterMS: after})
			}
		},
		DisconnectedF: func(_ network.Network, c network.Conn) {
			p.mu.Lock()
			isRelay := c.RemotePeer() == p.relayID
			p.mu.Unlock()
			if isRelay {
				return
			}
			p.out.emit(ev{Event: "disconn", Peer: c.RemotePeer().String(), Addr: c.RemoteMultiaddr().String(), Relayed: ptr(isRelayed(c.RemoteMultiaddr()))})
		},
	}
}

func (p *peerNode) runPeer(ctx context.Context, wg *sync.WaitGroup) error {
	relayInfo, target, err := p.parseTargets()
	if err != nil {
		return err
	}
	// Subscribe before anything connects so no event is missed.
	w, err := p.watchEvents(wg, relayInfo, target)
	if err != nil {
		return err
	}
	defer w.sub.Close()

	if p.cfg.mdns {
		svc := mdns.NewMdnsService(p.h, mdnsService, &mdnsNotifee{ctx: ctx, p: p, wg: wg})
		if err := svc.Start(); err != nil {
			return fmt.Errorf("start mdns: %w", err)
		}
		defer svc.Close()
	}

	if relayInfo != nil {
		reserved := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.keepReservation(ctx, *relayInfo, reserved, w.relayGone)
		}()
		select {
		case <-reserved:
		case <-ctx.Done():
			return nil
		}
	}

	hpOK, ok := p.waitHolepunch(ctx, w.hpReady)
	if !ok {
		return nil
	}
	p.out.emit(ev{Event: "ready", ID: p.h.ID().String(), Addrs: addrStrings(p.h.Addrs()), Holepunch: ptr(hpOK)})

	if target != "" {
		circuit, err := ma.NewMultiaddr(p.cfg.relay + "/p2p-circuit")
		if err != nil {
			return fmt.Errorf("circuit address: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.keepConnected(ctx, peer.AddrInfo{ID: target, Addrs: []ma.Multiaddr{circuit}}, w.targetGone)
		}()
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		p.readCommands(ctx, target)
	}()
	<-ctx.Done()
	return nil
}

// parseTargets reads -relay and -connect (the relay's ID is kept for the
// event watcher).
func (p *peerNode) parseTargets() (*peer.AddrInfo, peer.ID, error) {
	var relayInfo *peer.AddrInfo
	if p.cfg.relay != "" {
		ai, err := peer.AddrInfoFromString(p.cfg.relay)
		if err != nil {
			return nil, "", fmt.Errorf("parse -relay %q: %w", p.cfg.relay, err)
		}
		relayInfo = ai
		p.mu.Lock()
		p.relayID = ai.ID
		p.mu.Unlock()
	}
	var target peer.ID
	if p.cfg.connect != "" {
		if relayInfo == nil {
			return nil, "", errors.New("-connect needs -relay")
		}
		id, err := peer.Decode(p.cfg.connect)
		if err != nil {
			return nil, "", fmt.Errorf("parse -connect %q: %w", p.cfg.connect, err)
		}
		target = id
	}
	return relayInfo, target, nil
}

// peerWatch is what watchEvents reports: the relay or the target gone,
// and the hole-punch service up (closed once).
type peerWatch struct {
	sub                   event.Subscription
	relayGone, targetGone chan struct{}
	hpReady               chan struct{}
}

// watchEvents subscribes to connectedness and local protocol changes and
// turns them into peerWatch's signals, on a goroutine wg counts that ends
// when the subscription is closed.
func (p *peerNode) watchEvents(wg *sync.WaitGroup, relayInfo *peer.AddrInfo, target peer.ID) (*peerWatch, error) {
	sub, err := p.h.EventBus().Subscribe([]any{new(event.EvtPeerConnectednessChanged), new(event.EvtLocalProtocolsUpdated)})
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	w := &peerWatch{sub: sub, relayGone: make(chan struct{}, 1), targetGone: make(chan struct{}, 1), hpReady: make(chan struct{})}
	var hpOnce sync.Once
	checkHP := func() {
		if slices.Contains(p.h.Mux().Protocols(), holepunch.Protocol) {
			hpOnce.Do(func() { close(w.hpReady) })
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for e := range sub.Out() {
			switch e := e.(type) {
			case event.EvtPeerConnectednessChanged:
				if e.Connectedness != network.Connected {
					if relayInfo != nil && e.Peer == relayInfo.ID {
						notify(w.relayGone)
					}
					if e.Peer == target {
						notify(w.targetGone)
					}
				}
			case event.EvtLocalProtocolsUpdated:
				checkHP()
			}
		}
	}()
	checkHP()
	return w, nil
}

// waitHolepunch waits up to -holepunch-wait for the hole-punch service
// (not at all without it) and reports whether it is up; ok is false when
// ctx ended first.
func (p *peerNode) waitHolepunch(ctx context.Context, hpReady <-chan struct{}) (hpOK, ok bool) {
	if p.cfg.holepunchWait <= 0 {
		select {
		case <-hpReady:
			return true, true
		default:
			return false, true
		}
	}
	t := time.NewTimer(p.cfg.holepunchWait)
	defer t.Stop()
	select {
	case <-hpReady:
		return true, true
	case <-t.C:
		return false, true
	case <-ctx.Done():
		return false, false
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// keepReservation reserves a slot on the relay and renews it before it
// expires or as soon as the relay connection goes away (a relay restart).
func (p *peerNode) keepReservation(ctx context.Context, relay peer.AddrInfo, first chan struct{}, gone <-chan struct{}) {
	backoff := 250 * time.Millisecond
	var once sync.Once
	for {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := p.h.Connect(rctx, relay)
		var rsvp *client.Reservation
		if err == nil {
			rsvp, err = client.Reserve(rctx, p.h, relay)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		if err != nil {
			p.out.emit(ev{Event: "reserve_failed", Peer: relay.ID.String(), Err: err.Error()})
			wait = backoff
			backoff = min(2*backoff, 5*time.Second)
		} else {
			backoff = 250 * time.Millisecond
			p.out.emit(ev{Event: "reserved", Peer: relay.ID.String(), Addr: relay.Addrs[0].String()})
			once.Do(func() { close(first) })
			wait = time.Until(rsvp.Expiration) - time.Minute
			if wait < time.Second {
				wait = time.Second
			}
		}
		// Drain a stale "gone" from before this reservation.
		if err == nil && p.h.Network().Connectedness(relay.ID) == network.Connected {
			select {
			case <-gone:
			default:
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-gone:
			t.Stop()
		case <-t.C:
		}
	}
}

// keepConnected dials the target through the relay whenever we have no
// connection to it.
func (p *peerNode) keepConnected(ctx context.Context, target peer.AddrInfo, gone <-chan struct{}) {
	backoff := 250 * time.Millisecond
	for {
		if p.h.Network().Connectedness(target.ID) != network.Connected {
			dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := p.h.Connect(network.WithAllowLimitedConn(dctx, "natlab"), target)
			cancel()
			if ctx.Err() != nil {
				return
			}
			e := ev{Event: "dial", Peer: target.ID.String(), Addr: target.Addrs[0].String()}
			if err != nil {
				e.Err = err.Error()
				p.out.emit(e)
				t := time.NewTimer(backoff)
				backoff = min(2*backoff, 5*time.Second)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				continue
			}
			p.out.emit(e)
			backoff = 250 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-gone:
		}
	}
}

type mdnsNotifee struct {
	ctx context.Context
	p   *peerNode
	wg  *sync.WaitGroup
}

func (n *mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == n.p.h.ID() || n.ctx.Err() != nil {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, 15*time.Second)
		defer cancel()
		e := ev{Event: "dial", Peer: ai.ID.String(), Type: "mdns", Addrs: addrStrings(ai.Addrs)}
		if err := n.p.h.Connect(ctx, ai); err != nil {
			e.Err = err.Error()
		}
		n.p.out.emit(e)
	}()
}

func (p *peerNode) readCommands(ctx context.Context, target peer.ID) {
	lines := make(chan string)
	// The stdin reader cannot be interrupted; it ends at EOF, which the
	// harness gives when it stops the process.
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		var line string
		var ok bool
		select {
		case <-ctx.Done():
			return
		case line, ok = <-lines:
			if !ok {
				return
			}
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "echo":
			n, err := strconv.Atoi(f[1])
			if err != nil || target == "" {
				p.out.emit(ev{Event: "error", Err: fmt.Sprintf("bad command %q (needs -connect and a byte count)", line)})
				continue
			}
			p.echo(ctx, target, n)
		default:
			p.out.emit(ev{Event: "error", Err: fmt.Sprintf("unknown command %q", line)})
		}
	}
}

func (p *peerNode) echo(ctx context.Context, target peer.ID, n int) {
	start := time.Now()
	e := ev{Event: "echo", Peer: target.String(), Bytes: n}
	err := func() error {
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		s, err := p.h.NewStream(network.WithAllowLimitedConn(ctx, "natlab echo"), target, echoProtocol)
		if err != nil {
			return fmt.Errorf("open echo stream: %w", err)
		}
		defer s.Close()
		e.Addr = s.Conn().RemoteMultiaddr().String()
		e.Relayed = ptr(isRelayed(s.Conn().RemoteMultiaddr()))
		if dl, ok := ctx.Deadline(); ok {
			_ = s.SetDeadline(dl)
		}
		werr := make(chan error, 1)
		go func() {
			buf := make([]byte, 32<<10)
			left := n
			for left > 0 {
				k := min(left, len(buf))
				if _, err := s.Write(buf[:k]); err != nil {
					werr <- err
					return
				}
				left -= k
			}
			werr <- s.CloseWrite()
		}()
		got, rerr := io.Copy(io.Discard, s)
		if err := <-werr; err != nil {
			return fmt.Errorf("write echo: %w", err)
		}
		if rerr != nil {
			return fmt.Errorf("read echo: %w", rerr)
		}
		if int(got) != n {
			return fmt.Errorf("echo returned %d bytes, want %d", got, n)
		}
		return nil
	}()
	e.MS = ms(time.Since(start))
	if err != nil {
		e.Err = err.Error()
	}
	p.out.emit(e)
}

func handleEcho(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := io.Copy(s, s); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.CloseWrite()
}

// tracer turns DCUtR tracer events into hp lines.
type tracer struct{ out *emitter }

func (t tracer) Trace(e *holepunch.Event) {
	o := ev{Event: "hp", Type: e.Type, Peer: e.Remote.String()}
	switch x := e.Evt.(type) {
	case *holepunch.DirectDialEvt:
		o.Success, o.MS, o.Err = ptr(x.Success), ms(x.EllapsedTime), x.Error
	case *holepunch.EndHolePunchEvt:
		o.Success, o.MS, o.Err = ptr(x.Success), ms(x.EllapsedTime), x.Error
	case *holepunch.ProtocolErrorEvt:
		o.Err = x.Error
	case *holepunch.StartHolePunchEvt:
		o.Addrs, o.MS = x.RemoteAddrs, ms(x.RTT)
	case *holepunch.HolePunchAttemptEvt:
		o.Bytes = x.Attempt
	}
	t.out.emit(o)
}
