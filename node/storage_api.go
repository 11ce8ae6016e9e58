package node

import (
	"context"
	"time"

	"github.com/meshwork/meshwork/node/vault"
)

// StorageStatus is GET /v1/storage: on a storage peer, its own usage; on a
// device, the online storage peers' usage and, per folder, what they hold.
type StorageStatus struct {
	Role    string              `json:"role"` // "storage" or "device"
	Usage   *vault.Usage        `json:"usage,omitempty"`
	Peers   []StoragePeerStatus `json:"peers"`
	Folders []FolderInfo        `json:"folders"`
}

// StoragePeerStatus is one online storage peer as a device sees it.
type StoragePeerStatus struct {
	Name  string       `json:"name"`
	ID    string       `json:"id"`
	Usage *vault.Usage `json:"usage"`
	Error string       `json:"error,omitempty"`
}

// StorageStatus is GET /v1/storage.
func (n *Node) StorageStatus(ctx context.Context) StorageStatus {
	out := StorageStatus{Role: "device", Peers: []StoragePeerStatus{}, Folders: []FolderInfo{}}
	if n.isStorage() {
		out.Role = RoleStorage
		u := n.st.st.srv.Usage()
		out.Usage = &u
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, p := range n.st.storagePeers() {
		ps := StoragePeerStatus{Name: n.deviceName(p), ID: p.String()}
		if u, err := n.st.st.cl.Usage(ctx, p); err != nil {
			ps.Error = err.Error()
		} else {
			ps.Usage = &u
		}
		out.Peers = append(out.Peers, ps)
	}
	out.Folders = n.folderInfos()
	return out
}
