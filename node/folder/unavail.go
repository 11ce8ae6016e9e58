package folder

import (
	"context"
	"sort"

	"github.com/meshwork/meshwork/blobs/store"

	"github.com/meshwork/meshwork/syncproto"
)

// unavail is an item whose content the last apply run that wrote it could
// not get from any peer (KindUnavailable): its current version (file), or
// conflict copies of it (copies, by name). Under Folder.tmu.
type unavail struct {
	gen    uint64
	file   bool
	copies []string
}

// Unavailable is what Apply could not get from any peer and is still to
// be written here: Files are paths of current versions (the folder is not
// in sync without them), Copies the names of conflict copies (losing
// versions, kept only where some device still holds their content).
type Unavailable struct {
	Files  []string
	Copies []string
}

// unavailLocked returns rel's entry for the current apply run. Callers hold
// f.tmu.
func (f *Folder) unavailLocked(rel string) *unavail {
	u := f.unavail[rel]
	if u == nil || u.gen != f.applyGen {
		u = &unavail{gen: f.applyGen}
		f.unavail[rel] = u
	}
	return u
}

// noteUnavailLocked records that the content of item rel's current
// version (copy "") or of its conflict copy named copy was unavailable in
// this apply run. Callers hold f.tmu.
func (f *Folder) noteUnavailLocked(rel, copy string) {
	u := f.unavailLocked(rel)
	if copy == "" {
		u.file = true
		return
	}
	u.copies = append(u.copies, copy)
}

// noteUnavailCopy records that the content of the conflict copy named copy
// of item rel was unavailable; an earlier failure of rel stays (rel is not
// fully written).
func (f *Folder) noteUnavailCopy(rel, copy string) {
	f.tmu.Lock()
	defer f.tmu.Unlock()
	f.noteUnavailLocked(rel, copy)
	if fl := f.failing[rel]; fl != nil {
		fl.gen = f.applyGen
	}
}

// settleUnavailLocked drops the entries of items this run wrote without an
// unavailable content. Callers hold f.tmu.
func (f *Folder) settleUnavailLocked(items []syncproto.Item) {
	if len(f.unavail) == 0 {
		return
	}
	for _, it := range items {
		if fe, ok := it.Body.(*syncproto.FileEntry); ok && fe != nil {
			if u := f.unavail[fe.Path]; u != nil && u.gen != f.applyGen {
				delete(f.unavail, fe.Path)
			}
		}
	}
}

// Unavailable lists the content Apply could not get from any peer (none
// online had it) and that is still to be written here, sorted: an item
// deleted since, a file whose current version is here (a local edit
// superseded it) and a conflict resolved since are left out.
func (f *Folder) Unavailable() Unavailable {
	type entry struct {
		rel    string
		file   bool
		copies []string
	}
	f.tmu.Lock()
	es := make([]entry, 0, len(f.unavail))
	for rel, e := range f.unavail {
		es = append(es, entry{rel, e.file, append([]string(nil), e.copies...)})
	}
	f.tmu.Unlock()
	var u Unavailable
	for _, e := range es { // the feed's lock is not taken under f.tmu
		it, ok := f.feed.Item(syncproto.ItemID(e.rel))
		fe, _ := it.Body.(*syncproto.FileEntry)
		if !ok || it.Sync.Deleted || fe == nil {
			continue
		}
		if e.file {
			f.mu.Lock()
			st := f.states[e.rel]
			here := st != nil && f.matches(st, fe) // superseded since by content here
			f.mu.Unlock()
			if !here {
				u.Files = append(u.Files, e.rel)
			}
		}
		for _, name := range e.copies {
			for _, c := range it.Sync.Conflicts {
				if hasCopy(c) && conflictName(e.rel, c) == name { // still a conflict of the item
					u.Copies = append(u.Copies, name)
					break
				}
			}
		}
	}
	sort.Strings(u.Files)
	sort.Strings(u.Copies)
	return u
}

// UnavailableItems returns the item IDs of Unavailable's files and copies.
func (f *Folder) UnavailableItems() map[syncproto.ItemID]bool {
	f.tmu.Lock()
	defer f.tmu.Unlock()
	ids := make(map[syncproto.ItemID]bool, len(f.unavail))
	for rel := range f.unavail {
		ids[syncproto.ItemID(rel)] = true
	}
	return ids
}

// OnlyUnavailable reports whether err (an error of Apply) is made only of
// failures to get content from peers (KindUnavailable) and of what is not
// a failure: retrying it helps only once a peer that has the content is
// online, or a new version arrives.
func OnlyUnavailable(err error) bool {
	return everyFailure(err, func(k string) bool { return k == "" || k == KindUnavailable })
}

// OnlyRefused reports whether err (an error of Apply) is made only of
// refused items (KindBlocked: an unsafe path, a case collision, a
// malformed item) and of what is not a failure: applying the same
// versions again fails the same way, so only a new version is worth a
// try. With unavailable content besides, see AwaitsNews.
func OnlyRefused(err error) bool {
	return everyFailure(err, func(k string) bool { return k == "" || k == KindBlocked })
}

// AwaitsNews reports whether err is made only of unavailable content,
// refused items and what is not a failure: a retry helps only once a peer
// that has the content is online, or a new version arrives.
func AwaitsNews(err error) bool {
	return everyFailure(err, func(k string) bool { return k == "" || k == KindUnavailable || k == KindBlocked })
}

// everyFailure reports whether ok holds for the kind (ErrorKind) of every
// error err joins (errors.Join, Apply's error), nested joins included; a
// fetchErr is one error. True for nil.
func everyFailure(err error, ok func(kind string) bool) bool {
	if err == nil {
		return true
	}
	_, fetch := err.(fetchErr)
	if j, isJoin := err.(interface{ Unwrap() []error }); isJoin && !fetch {
		for _, e := range j.Unwrap() {
			if !everyFailure(e, ok) {
				return false
			}
		}
		return true
	}
	return ok(ErrorKind(err))
}

// abortPartial removes the partial file p of rel and its records: a
// conflict copy whose content no peer could provide would otherwise leave
// it in the user's tree (its transfer is not worth resuming: it is a
// losing version, most likely gone everywhere).
func (f *Folder) abortPartial(ctx context.Context, rel string, p *store.Partial) {
	path := p.Path()
	if err := p.Abort(ctx); err != nil {
		f.log.Warn("remove partial of unavailable content", "path", rel, "err", err)
		return
	}
	if err := f.deleteRecord(f.key(kPartial, []byte(rel), []byte{0}, []byte(path))); err != nil {
		f.log.Warn("forget partial record", "path", rel, "err", err)
	}
	if err := f.deleteRecord(f.key(kIntent, []byte(rel))); err != nil {
		f.log.Warn("forget intent", "path", rel, "err", err)
	}
	f.mu.Lock()
	f.pruneDeletedParentsLocked(rel)
	f.mu.Unlock()
}
