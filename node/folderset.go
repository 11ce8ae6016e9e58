package node

import (
	"sync"

	"github.com/meshwork/meshwork/syncproto"
)

// folderSet is the registry of the folders this device syncs (localFolder,
// folders.go): which are running, the goroutines that run them, and the
// lock that serialises adding one. It owns its locks; nothing outside its
// methods touches its fields.
//
// mu is a leaf lock: no method calls into a folder or the Node while
// holding it, and the match funcs of find and take, which run under it,
// must only read lf.conf (fixed when the folder starts). A folder's scan
// holds the folder's own lock and then asks for its name (folderNews, via
// get), so calling into a folder with mu held could deadlock.
type folderSet struct {
	// addMu serialises AddFolder and JoinFolderMode, so that the overlap
	// check (refuseOverlap) and the start of the folder are one step. It
	// is held across disk and network work; mu may be taken under it,
	// never the reverse.
	addMu sync.Mutex

	mu    sync.Mutex
	m     map[syncproto.ObjectID]*localFolder
	added chan struct{}  // closed (and replaced) when a folder is added
	wg    sync.WaitGroup // the folders' goroutines (add's run)
}

func newFolderSet() *folderSet {
	return &folderSet{m: map[syncproto.ObjectID]*localFolder{}, added: make(chan struct{})}
}

// addedCh returns a channel closed when a folder is next added (take it
// before looking, so that no addition is missed).
func (s *folderSet) addedCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.added
}

// lockAdds takes the add-serialisation lock and returns its unlock.
func (s *folderSet) lockAdds() (unlock func()) {
	s.addMu.Lock()
	return s.addMu.Unlock
}

// get returns the folder of object id, nil if it is not synced here.
func (s *folderSet) get(id syncproto.ObjectID) *localFolder {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id]
}

// add registers lf (replacing a folder of the same ID) and runs run in a
// goroutine that wait waits for. The goroutine is counted before lf is
// visible, so that a stopAll that cancels lf also waits for it.
func (s *folderSet) add(lf *localFolder, run func()) {
	s.mu.Lock()
	s.m[lf.conf.ID] = lf
	s.wg.Add(1)
	close(s.added)
	s.added = make(chan struct{})
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		run()
	}()
}

// find returns a folder match accepts (any one, if several do), or nil.
// match runs with the set's lock held: it must only read lf.conf.
func (s *folderSet) find(match func(lf *localFolder) bool) *localFolder {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, lf := range s.m {
		if match(lf) {
			return lf
		}
	}
	return nil
}

// take is find that also removes the folder found from the set, in the
// same step (its goroutine keeps running: the caller stops it).
func (s *folderSet) take(match func(lf *localFolder) bool) *localFolder {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, lf := range s.m {
		if match(lf) {
			delete(s.m, id)
			return lf
		}
	}
	return nil
}

// list returns the folders synced here, in no order (a copy: call into
// them freely).
func (s *folderSet) list() []*localFolder {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*localFolder, 0, len(s.m))
	for _, lf := range s.m {
		out = append(out, lf)
	}
	return out
}

// stopAll cancels every folder and waits for the goroutines of all the
// folders ever added (those removed earlier included) to return.
func (s *folderSet) stopAll() {
	s.mu.Lock()
	for _, lf := range s.m {
		lf.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
