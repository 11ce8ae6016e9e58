package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A directory belongs to at most one folder on a device: a path equal to,
// inside or above a folder already synced here would be indexed (and its
// files served and fetched) twice, under two folders that fight over the
// same files. AddFolder and JoinFolderMode refuse it (refuseOverlap).

// resolvePath is path made absolute and clean, with symlinks resolved in
// the part of it that exists (the rest, which the folder's start creates,
// is appended as it is).
func resolvePath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	cur, rest := filepath.Clean(abs), ""
	for {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("resolve %s: %w", cur, err)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return filepath.Clean(abs), nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// pathOverlap says how the resolved, clean absolute path p lies to the
// folder path q: "same" (the same directory), "inside" (p is below q),
// "above" (q is below p), or "" when neither holds.
func pathOverlap(p, q string) string {
	within := func(a, b string) bool { // a is b or below it
		rel, err := filepath.Rel(b, a)
		return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(os.PathSeparator)) && !filepath.IsAbs(rel)
	}
	switch {
	case p == q:
		return "same"
	case within(p, q):
		return "inside"
	case within(q, p):
		return "above"
	}
	return ""
}

// refuseOverlap returns an error naming the folder synced here whose
// directory is path, contains it or lies inside it (verb is "add folder X"
// or "join folder X", for the message). Called with the folder set's add
// lock held (lockAdds).
func (n *Node) refuseOverlap(verb, path string) error {
	p, err := resolvePath(path)
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	for _, lf := range n.folders.list() {
		q, err := resolvePath(lf.conf.Path)
		if err != nil {
			q = filepath.Clean(lf.conf.Path)
		}
		var how string
		switch pathOverlap(p, q) {
		case "same":
			how = "is the directory of"
		case "inside":
			how = "is inside"
		case "above":
			how = "contains"
		default:
			continue
		}
		shown := path
		if p != filepath.Clean(path) {
			shown = fmt.Sprintf("%s (%s)", path, p)
		}
		return fmt.Errorf("%s: %s %s folder %q at %s, which this device already syncs; a directory can be in only one folder: pick one that neither is, contains nor lies inside %s, or stop syncing %q first with 'mesh folder remove %s'",
			verb, shown, how, lf.conf.Name, lf.conf.Path, lf.conf.Path, lf.conf.Name, lf.conf.Name)
	}
	return nil
}
