package relay_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	dhtpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/relay"
)

// findNode sends one FIND_NODE for target to the relay's DHT over the
// real kad protocol (varint-framed protobuf, as kad-dht frames it) and
// returns the peers of the answer.
func findNode(ctx context.Context, h host.Host, srv *relay.Server, target peer.ID) ([]*peer.AddrInfo, error) {
	s, err := h.NewStream(ctx, srv.ID(), relay.DHTProtocolPrefix+"/kad/1.0.0")
	if err != nil {
		return nil, fmt.Errorf("open DHT stream: %w", err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	req, err := proto.Marshal(dhtpb.NewMessage(dhtpb.Message_FIND_NODE, []byte(target), 0))
	if err != nil {
		return nil, err
	}
	if _, err := s.Write(append(binary.AppendUvarint(nil, uint64(len(req))), req...)); err != nil {
		return nil, fmt.Errorf("send FIND_NODE: %w", err)
	}
	br := bufio.NewReader(s)
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("read FIND_NODE answer: %w", err)
	}
	if n > 1<<20 {
		return nil, fmt.Errorf("FIND_NODE answer of %d bytes", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, fmt.Errorf("read FIND_NODE answer: %w", err)
	}
	var resp dhtpb.Message
	if err := proto.Unmarshal(buf, &resp); err != nil {
		return nil, fmt.Errorf("decode FIND_NODE answer: %w", err)
	}
	return dhtpb.PBPeersToPeerInfos(resp.GetCloserPeers()), nil
}

func addrsOf(infos []*peer.AddrInfo, p peer.ID) int {
	for _, ai := range infos {
		if ai.ID == p {
			return len(ai.Addrs)
		}
	}
	return 0
}

// TestDHTRefusesStrangers (issue 14, row 10): a stranger with a fresh key
// asks the relay's DHT for a member's addresses and gets its stream reset,
// by raw FIND_NODE and through kad-dht as a client; a member asking the
// same gets them.
func TestDHTRefusesStrangers(t *testing.T) {
	m := newTestMesh(t)
	srv := startRelay(t, func(c *relay.Config) { c.AllowMeshes = []identity.MeshID{m.log.MeshID()} })
	owner := newClient(t, m.ownerKey, srv, true)
	if err := authenticate(t, owner, srv, m.log); err != nil {
		t.Fatalf("authenticate owner: %v", err)
	}
	member := newClient(t, m.memberKey, srv, true)
	if err := authenticate(t, member, srv, m.log); err != nil {
		t.Fatalf("authenticate member: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The member: the relay answers with the owner's addresses (identify
	// has told the relay the owner's listen addresses; poll for it).
	var got []*peer.AddrInfo
	waitFor(t, "the relay's DHT to answer the member with the owner's addresses", func() bool {
		var err error
		got, err = findNode(ctx, member, srv, owner.ID())
		return err == nil && addrsOf(got, owner.ID()) > 0
	})

	// The stranger: a fresh key, connected to the relay, not authorised.
	stranger := newClient(t, newKey(t), srv, true)
	got, err := findNode(ctx, stranger, srv, owner.ID())
	if err == nil {
		t.Fatalf("stranger's FIND_NODE for the owner answered: %v", got)
	}
	t.Logf("stranger's FIND_NODE: %v", err)

	// The same through kad-dht as a client with the relay's prefix.
	d, err := dht.New(stranger, dht.Mode(dht.ModeClient), dht.ProtocolPrefix(relay.DHTProtocolPrefix),
		dht.BootstrapPeers(srv.AddrInfo()))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_ = d.Bootstrap(ctx)
	fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
	defer fcancel()
	if ai, err := d.FindPeer(fctx, owner.ID()); err == nil && len(ai.Addrs) > 0 {
		t.Fatalf("stranger found the owner through the relay's DHT: %v", ai)
	}

	// After proving membership the same host is answered.
	if err := authenticate(t, stranger, srv, m.log); err == nil {
		t.Fatalf("a stranger authenticated with the mesh's log")
	}
	got, err = findNode(ctx, stranger, srv, owner.ID())
	if err == nil {
		t.Fatalf("stranger's FIND_NODE after a refused proof answered: %v", got)
	}
	if got, err := findNode(ctx, member, srv, owner.ID()); err != nil || addrsOf(got, owner.ID()) == 0 {
		t.Fatalf("member's FIND_NODE after the stranger: %v, %v", got, err)
	}
}
