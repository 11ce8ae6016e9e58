package node

import (
	"errors"
	"os"
	"path/filepath"
)

// This file holds the one place package node reads the environment: the
// default home directory, which both commands (cmd/meshd and the mesh CLI,
// node/cli) call before a Node exists. Nothing in the core calls it
// (TestLibraryReadsNoEnv allows os.Getenv in this file only).

// DefaultHome is $MESH_HOME, else $XDG_DATA_HOME/meshwork, else
// ~/.local/share/meshwork.
func DefaultHome() (string, error) {
	if h := os.Getenv("MESH_HOME"); h != "" {
		return h, nil
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "meshwork"), nil
	}
	u, err := os.UserHomeDir()
	if err != nil {
		return "", errors.New("cannot find a home directory: set --home or MESH_HOME")
	}
	return filepath.Join(u, ".local", "share", "meshwork"), nil
}
