package localapi

import (
	"context"
	"net/http"

	"github.com/meshwork/meshwork/node"
)

// storageCore is what the storage handler asks of the core.
type storageCore interface {
	StorageStatus(ctx context.Context) node.StorageStatus
}

type storageAPI struct{ c storageCore }

// status is GET /v1/storage: on a storage peer its own usage; on a device
// the online storage peers' usage and, per folder, what they hold.
func (a *storageAPI) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.c.StorageStatus(r.Context()))
}
