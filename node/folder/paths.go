package folder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/meshwork/meshwork/syncproto"
)

// internalDir is the folder's own directory at the root: version history and
// nothing else the user should see. It is never scanned and never written
// by a remote item.
const internalDir = ".meshwork"

// tmpPrefix starts the names of temporary files: the store's partial files
// (".meshwork-<blob>-<target>.partial") and this package's own
// (".meshwork-tmp-*"). Such names are never scanned and never accepted from
// a remote item.
const (
	tmpPrefix   = ".meshwork-"
	ownTmpPrefx = ".meshwork-tmp-"
)

// checkRel checks that rel is a path this package may write: relative,
// slash-separated, NFC-normalised, without empty, "." or ".." components,
// NUL, backslashes or control characters, not inside .meshwork/ and not a
// temporary-file name. The error wraps ErrUnsafePath and names rel.
func checkRel(rel string) error {
	bad := func(why string) error {
		return fmt.Errorf("path %q: %s: %w", rel, why, ErrUnsafePath)
	}
	switch {
	case rel == "":
		return bad("empty")
	case !utf8.ValidString(rel):
		return bad("not UTF-8")
	case strings.ContainsRune(rel, 0):
		return bad("contains NUL")
	case strings.ContainsRune(rel, '\\'):
		return bad("contains a backslash")
	case strings.HasPrefix(rel, "/") || filepath.IsAbs(rel) || filepath.VolumeName(rel) != "":
		return bad("absolute")
	case !norm.NFC.IsNormalString(rel):
		return bad("not NFC-normalised")
	}
	for _, r := range rel {
		if r < 0x20 || r == 0x7f {
			return bad("contains a control character")
		}
	}
	for i, c := range strings.Split(rel, "/") {
		switch {
		case c == "":
			return bad("empty component")
		case c == "." || c == "..":
			return bad("contains " + c)
		case i == 0 && strings.EqualFold(c, internalDir):
			return bad("inside " + internalDir)
		case strings.HasPrefix(strings.ToLower(c), tmpPrefix):
			return bad("reserved temporary-file name")
		}
	}
	return nil
}

// checkSymlinkTarget refuses a link target that is absolute or that, read
// from the link's directory, leaves the folder.
func checkSymlinkTarget(rel, target string) error {
	bad := func(why string) error {
		return fmt.Errorf("symlink %q -> %q: %s: %w", rel, target, why, ErrUnsafePath)
	}
	switch {
	case target == "":
		return bad("empty target")
	case strings.ContainsRune(target, 0):
		return bad("target contains NUL")
	case strings.ContainsRune(target, '\\'):
		return bad("target contains a backslash")
	case path.IsAbs(target) || filepath.IsAbs(target):
		return bad("absolute target")
	}
	j := path.Join(path.Dir(rel), target)
	if j == ".." || strings.HasPrefix(j, "../") {
		return bad("target escapes the folder")
	}
	// A target through .meshwork/ would expose the version history.
	if first, _, _ := strings.Cut(j, "/"); strings.EqualFold(first, internalDir) {
		return bad("target inside " + internalDir)
	}
	return nil
}

// abs returns the absolute path of a checked rel.
func (f *Folder) abs(rel string) string {
	return filepath.Join(f.root, filepath.FromSlash(rel))
}

// checkParents verifies that every parent directory of rel is a real
// directory inside the root (never a symlink); with create, missing ones are
// created. It also refuses a component that collides case-insensitively with
// a different existing name when the filesystem folds case.
func (f *Folder) checkParents(rel string, create bool) error {
	comps := strings.Split(rel, "/")
	cur := ""
	for i, c := range comps {
		if cur == "" {
			cur = c
		} else {
			cur = cur + "/" + c
		}
		if err := f.checkCase(cur); err != nil {
			return err
		}
		if i == len(comps)-1 {
			break
		}
		// A plain lstat is enough here: every component above cur was just
		// checked to be a real directory, so resolving cur follows no
		// symlink (through os.Root, each check re-walked every component,
		// a dozen system calls per file applied).
		fi, err := os.Lstat(f.abs(cur))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if !create {
				return nil
			}
			if err := f.rootFS.Mkdir(filepath.FromSlash(cur), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("path %q: create parent %q: %w", rel, cur, err)
			}
			fi, err = f.rootFS.Lstat(filepath.FromSlash(cur))
			if err != nil {
				return fmt.Errorf("path %q: parent %q: %w", rel, cur, err)
			}
			if fi.IsDir() {
				f.noteDirCreated(cur, fi)
			}
		case err != nil:
			return fmt.Errorf("path %q: parent %q: %w", rel, cur, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("path %q: parent %q is a symlink: %w", rel, cur, ErrUnsafePath)
		}
		if !fi.IsDir() {
			return fmt.Errorf("path %q: parent %q is not a directory: %w", rel, cur, ErrUnsafePath)
		}
	}
	return nil
}

// checkCase refuses rel when the filesystem folds case (or FoldCase is set)
// and rel's directory holds a different name equal to rel's base under case
// folding: writing rel would overwrite or merge with that other file.
func (f *Folder) checkCase(rel string) error {
	if !f.foldCase {
		return nil
	}
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	ents, err := os.ReadDir(filepath.Join(f.root, filepath.FromSlash(dir)))
	if err != nil {
		return nil // missing directory: nothing collides
	}
	for _, e := range ents {
		n := e.Name()
		if n != base && strings.EqualFold(norm.NFC.String(n), base) {
			return fmt.Errorf("path %q: collides with existing %q on a case-insensitive filesystem: %w", rel, path.Join(dir, n), ErrCaseCollision)
		}
	}
	return nil
}

// probeFoldCase reports whether the filesystem under dir treats names that
// differ only in case as the same file.
func probeFoldCase(dir string) bool {
	f, err := os.CreateTemp(dir, ".meshwork-tmp-CaseProbe-*")
	if err != nil {
		return false
	}
	name := f.Name()
	f.Close()
	defer os.Remove(name)
	base := filepath.Base(name)
	_, err = os.Lstat(filepath.Join(dir, strings.ToLower(base[:len(ownTmpPrefx)])+strings.ToUpper(base[len(ownTmpPrefx):])))
	return err == nil
}

// conflictName returns the name under which a losing version of the item at
// rel is kept: NAME.conflict-<device>-<YYYYMMDD-HHMMSS>.EXT, from the
// loser's topmost history record, so that every device picks the same name.
func conflictName(rel string, loser syncproto.Item) string {
	top := loser.Sync.Top()
	dir, base := path.Split(rel)
	ext := path.Ext(base)
	if ext == base { // ".bashrc": no extension
		ext = ""
	}
	stem := strings.TrimSuffix(base, ext)
	when := time.UnixMilli(top.When.Wall).UTC().Format("20060102-150405")
	return dir + stem + ".conflict-" + shortDevice(top.By) + "-" + when + ext
}

// shortDevice shortens a device ID for a file name: libp2p Ed25519 peer IDs
// all start with "12D3KooW", so the seven characters after that prefix.
// Characters unsafe in file names are replaced by '_'.
func shortDevice(d syncproto.DeviceID) string {
	s := strings.TrimPrefix(string(d), "12D3KooW")
	if len(s) > 7 {
		s = s[:7]
	}
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "unknown"
	}
	return string(b)
}

// ConflictName is the name of the conflict copy of the item at rel for
// its losing version loser (see "Conflicts" in doc.go).
func ConflictName(rel string, loser syncproto.Item) string { return conflictName(rel, loser) }
