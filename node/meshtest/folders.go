package meshtest

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/meshwork/meshwork/node"
)

// FolderPath is where d keeps folder name: a directory of the mesh's root
// beside (not inside) d's home.
func (d *Device) FolderPath(name string) string {
	return filepath.Join(d.m.root, "folders", d.Name, name)
}

// AddFolder shares d's FolderPath(name) as a new folder of the mesh, as
// 'mesh folder add PATH --name NAME' does, and returns the path.
func (d *Device) AddFolder(name string) string {
	d.m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d.m.opts.wait)
	defer cancel()
	conf, err := d.Node().AddFolder(ctx, d.FolderPath(name), name)
	if err != nil {
		d.m.t.Fatalf("meshtest: %s adds folder %q: %v", d.Name, name, err)
	}
	return conf.Path
}

// JoinFolder materialises folder name at d's FolderPath(name), as 'mesh
// folder join NAME PATH' does, and returns the path. A device learns the
// mesh's folders from the others: until it has, the join is retried
// (within the mesh's bound).
func (d *Device) JoinFolder(name string) string {
	d.m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d.m.opts.wait)
	defer cancel()
	var path string
	var last error
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		conf, err := d.Node().JoinFolder(ctx, name, d.FolderPath(name))
		if err == nil {
			path = conf.Path
			break
		}
		last = err
		select {
		case <-ctx.Done():
			d.m.t.Fatalf("meshtest: %s joins folder %q: %v", d.Name, name, last)
		case <-poll.C:
		}
	}
	return path
}

// WaitFolder returns once d's copy of folder name holds every change
// written on an online member before the call, as 'mesh wait NAME' does
// (node.Node.WaitFolder), within the mesh's bound.
func (d *Device) WaitFolder(name string) node.WaitResult {
	d.m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d.m.opts.wait)
	defer cancel()
	res, err := d.Node().WaitFolder(ctx, name)
	if err != nil {
		d.m.t.Fatalf("meshtest: %s waits for folder %q: %v", d.Name, name, err)
	}
	return res
}

// WriteFile writes data to rel (slash-separated) in d's copy of folder,
// creating its directories, through the file system as a user would.
func (d *Device) WriteFile(folder, rel string, data []byte) {
	d.m.t.Helper()
	p := filepath.Join(d.FolderPath(folder), filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		d.m.t.Fatalf("meshtest: %s writes %s/%s: %v", d.Name, folder, rel, err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		d.m.t.Fatalf("meshtest: %s writes %s/%s: %v", d.Name, folder, rel, err)
	}
}

// ReadFile reads rel (slash-separated) from d's copy of folder.
func (d *Device) ReadFile(folder, rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join(d.FolderPath(folder), filepath.FromSlash(rel)))
}
