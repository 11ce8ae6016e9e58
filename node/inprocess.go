package node

import (
	"context"
	"time"

	"github.com/meshwork/meshwork/identity"
)

// The Go calls behind two control API routes, for programs that hold a
// *Node in-process (node/meshtest) rather than talk to its socket.

// Invite makes an invite code for role valid for ttl, as POST /v1/invite
// does; forStorage leaves the mesh content key out of the code (for a
// storage peer, see storage.go).
func (n *Node) Invite(role identity.Role, ttl time.Duration, forStorage bool) (InviteResponse, error) {
	inv, err := n.NewInvite(role, ttl)
	if err != nil {
		return InviteResponse{}, err
	}
	out := InviteResponse{
		Code: n.inviteCode(inv.Code(), forStorage), MeshID: inv.Grant.Mesh.String(), Role: string(inv.Grant.Role), Expires: inv.Grant.Expires.UTC(),
	}
	for _, r := range inv.Grant.Redeemers {
		out.Redeemer = n.deviceName(r)
	}
	return out, nil
}

// Devices lists the mesh's devices with their connections, pinging the
// online ones for their round-trip time, as GET /v1/devices does; it fails
// with the no-mesh error before the device is in a mesh.
func (n *Node) Devices(ctx context.Context) ([]Device, error) {
	if n.membership() == nil {
		return nil, errNoMesh
	}
	return n.deviceList(ctx, true), nil
}
