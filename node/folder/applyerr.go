package folder

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/meshwork/meshwork/syncproto"
)

// Kinds of apply error (ErrorKind): short words for what went wrong where
// the folder is, shown beside the error text.
const (
	KindDiskFull     = "disk full"
	KindQuota        = "quota exceeded"
	KindPermission   = "permission denied"
	KindReadOnly     = "read-only filesystem"
	KindIO           = "i/o error"
	KindTooManyFiles = "too many open files"
	KindNameTooLong  = "name too long"
	KindBlocked      = "blocked" // refused here: unsafe path, case collision, malformed item
	// KindUnavailable is content no peer could provide (none online, a
	// transfer cut): passing, and not a failure of this folder, so it is not
	// kept as the folder's error.
	KindUnavailable = "unavailable"
	KindOther       = "error"
)

// maxErrText bounds the error text kept per failing path.
const maxErrText = 1024

// ApplyError is a folder's last failure to write a remote change here.
type ApplyError struct {
	Time  time.Time // when it last failed
	Path  string    // the item it concerned (slash-separated, relative)
	Kind  string    // KindDiskFull, KindPermission, ...
	Err   string    // the error's text
	Files int       // paths failing now (this one among them)
}

// ErrorKind classifies an apply error: a filesystem condition found
// anywhere in its chain (ENOSPC, EDQUOT, EACCES/EPERM, EROFS, EIO,
// EMFILE/ENFILE, ENAMETOOLONG) first, then a refused item (KindBlocked),
// then content not available from any peer (KindUnavailable); "" for nil,
// for cancellation and for ErrLocalChange (not a failure).
func ErrorKind(err error) string {
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, ErrClosed), errors.Is(err, ErrLocalChange):
		return ""
	case errors.Is(err, syscall.ENOSPC):
		return KindDiskFull
	case errors.Is(err, syscall.EDQUOT):
		return KindQuota
	case errors.Is(err, syscall.EROFS):
		return KindReadOnly
	case errors.Is(err, os.ErrPermission): // EACCES, EPERM
		return KindPermission
	case errors.Is(err, syscall.EIO):
		return KindIO
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return KindTooManyFiles
	case errors.Is(err, syscall.ENAMETOOLONG):
		return KindNameTooLong
	case errors.Is(err, ErrUnsafePath), errors.Is(err, ErrCaseCollision), errors.Is(err, ErrMalformedItem):
		return KindBlocked
	case errors.Is(err, errUnavailable):
		return KindUnavailable
	}
	return KindOther
}

// errUnavailable marks errors of getting content from peers (fetchErr).
var errUnavailable = errors.New("content unavailable")

// fetchErr wraps an error of the Fetcher: ErrorKind sees it as
// KindUnavailable unless a local filesystem condition is in its chain (a
// chunk that could not be written here fails the fetch too). Its text is
// err's.
type fetchErr struct{ err error }

func (e fetchErr) Error() string   { return e.err.Error() }
func (e fetchErr) Unwrap() []error { return []error{e.err, errUnavailable} }

// unavailable marks err as a failure to get content from peers.
func unavailable(err error) error { return fetchErr{err} }

// failure is a path's last apply failure (under Folder.tmu).
type failure struct {
	e   ApplyError // Files unused
	gen uint64     // the apply run that last failed the path
}

// beginFailures starts an apply run: failures noted from now on belong to
// it.
func (f *Folder) beginFailures() {
	f.tmu.Lock()
	f.applyGen++
	f.tmu.Unlock()
}

// noteFailure records that writing the item at rel failed with err in the
// current apply run. A failure to get content from peers is not kept as an
// error of its own, but keeps an earlier failure of rel (still not
// written).
func (f *Folder) noteFailure(rel string, err error) {
	kind := ErrorKind(err)
	if kind == "" {
		return
	}
	f.tmu.Lock()
	defer f.tmu.Unlock()
	fl := f.failing[rel]
	if kind == KindUnavailable {
		f.noteUnavailLocked(rel, "")
		if fl != nil {
			fl.gen = f.applyGen
		}
		return
	}
	if fl == nil {
		fl = &failure{}
		f.failing[rel] = fl
	}
	text := err.Error()
	if len(text) > maxErrText {
		text = strings.ToValidUTF8(text[:maxErrText], "") + "…"
	}
	fl.e = ApplyError{Time: f.now(), Path: rel, Kind: kind, Err: text}
	fl.gen = f.applyGen
}

// settleFailures ends an apply run of items: the failures of their paths
// that this run did not see again are gone (written, superseded, or no
// longer to be written here). Config.OnError learns when the folder's
// error appears or clears. Called without the folder's locks but f.applyMu.
func (f *Folder) settleFailures(items []syncproto.Item) {
	f.tmu.Lock()
	f.settleUnavailLocked(items)
	if len(f.failing) > 0 {
		for _, it := range items {
			if fe, ok := it.Body.(*syncproto.FileEntry); ok && fe != nil {
				if fl := f.failing[fe.Path]; fl != nil && fl.gen != f.applyGen {
					delete(f.failing, fe.Path)
				}
			}
		}
	}
	has := len(f.failing) > 0
	changed := has != f.hadErr
	f.hadErr = has
	e := f.lastErrorLocked()
	f.tmu.Unlock()
	if changed && f.cfg.OnError != nil {
		f.cfg.OnError(e)
	}
}

// lastErrorLocked returns the most recent failure of the paths failing
// now, nil if none. Callers hold f.tmu.
func (f *Folder) lastErrorLocked() *ApplyError {
	var last *failure
	for _, fl := range f.failing {
		if last == nil || fl.e.Time.After(last.e.Time) || (fl.e.Time.Equal(last.e.Time) && fl.e.Path < last.e.Path) {
			last = fl
		}
	}
	if last == nil {
		return nil
	}
	e := last.e
	e.Files = len(f.failing)
	return &e
}

// LastError returns the folder's last apply error while some path fails to
// be written here, nil once none does.
func (f *Folder) LastError() *ApplyError {
	f.tmu.Lock()
	defer f.tmu.Unlock()
	return f.lastErrorLocked()
}
