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
	out := n.st.status(ctx)
	if out.Role != RoleStorage {
		out.Folders = n.folderInfos()
	}
	return out
}

// status is StorageStatus but for its folders: the vault's usage, or the
// online storage peers' usage.
func (c *storageClient) status(ctx context.Context) StorageStatus {
	out := StorageStatus{Role: "device", Peers: []StoragePeerStatus{}, Folders: []FolderInfo{}}
	if c.storage {
		out.Role = RoleStorage
		u := c.st.srv.Usage()
		out.Usage = &u
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, p := range c.storagePeers() {
		ps := StoragePeerStatus{Name: c.deviceName(p), ID: p.String()}
		if u, err := c.st.cl.Usage(ctx, p); err != nil {
			ps.Error = err.Error()
		} else {
			ps.Usage = &u
		}
		out.Peers = append(out.Peers, ps)
	}
	return out
}
