package folder

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	gitignore "github.com/sabhiram/go-gitignore"
)

// IgnoreFile is the name of the ignore-pattern file at the folder's root
// (gitignore syntax). It is itself synced like any file.
const IgnoreFile = ".meshignore"

// ignorer holds the compiled .meshignore, reloaded when its size or mtime
// changes.
type ignorer struct {
	path string

	mu    sync.Mutex
	size  int64
	mtime int64
	gi    *gitignore.GitIgnore
}

// reload re-reads the pattern file when it changed and reports whether the
// patterns changed.
func (ig *ignorer) reload() (bool, error) {
	ig.mu.Lock()
	defer ig.mu.Unlock()
	fi, err := os.Stat(ig.path)
	if errors.Is(err, fs.ErrNotExist) {
		changed := ig.gi != nil
		ig.gi, ig.size, ig.mtime = nil, 0, 0
		return changed, nil
	}
	if err != nil {
		return false, err
	}
	if ig.gi != nil && fi.Size() == ig.size && fi.ModTime().UnixNano() == ig.mtime {
		return false, nil
	}
	data, err := os.ReadFile(ig.path)
	if err != nil {
		return false, err
	}
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	ig.gi = gitignore.CompileIgnoreLines(lines...)
	ig.size, ig.mtime = fi.Size(), fi.ModTime().UnixNano()
	return true, nil
}

// ignored reports whether rel (slash-separated) is ignored; dir says
// whether it is a directory, for patterns ending in "/". The internal
// directory and temporary files are always ignored.
func (ig *ignorer) ignored(rel string, dir bool) bool {
	first, _, _ := strings.Cut(rel, "/")
	if first == internalDir {
		return true
	}
	if strings.HasPrefix(filepath.Base(rel), tmpPrefix) {
		return true
	}
	ig.mu.Lock()
	gi := ig.gi
	ig.mu.Unlock()
	if gi == nil {
		return false
	}
	if dir && gi.MatchesPath(rel+"/") {
		return true
	}
	if gi.MatchesPath(rel) {
		return true
	}
	// A path under an ignored directory is ignored (gitignore cannot
	// re-include it either).
	for i := strings.IndexByte(rel, '/'); i >= 0; {
		if gi.MatchesPath(rel[:i+1]) || gi.MatchesPath(rel[:i]) {
			return true
		}
		j := strings.IndexByte(rel[i+1:], '/')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}
