package node

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/meshwork/meshwork/syncproto"
)

// TestObjectSetBeforeMesh: the objects part stands alone, without a Node
// or a sync engine; before the device is in a mesh every API call fails
// with ErrNoMesh (the kinds the API maps stay those of before the split)
// and touches no engine (it has none: a call would panic).
func TestObjectSetBeforeMesh(t *testing.T) {
	var logs bytes.Buffer
	s := &objectSet{self: "12D3KooWtest", members: newMemberState(), folders: newFolderSet(),
		log: slog.New(slog.NewTextHandler(&logs, nil))}
	errs := map[string]error{}
	_, errs["list"] = s.list()
	_, errs["create"] = s.create("groceries", "list")
	_, _, errs["feed"] = s.feed("groceries", "atom", "")
	errs["feedWritable"] = s.feedWritable("groceries")
	_, errs["mergeFeed"] = s.mergeFeed("groceries", "json", strings.NewReader("{}"))
	_, errs["objectItems"] = s.objectItems("devices")
	errs["itemsWritable"] = s.itemsWritable("groceries")
	_, errs["putItem"] = s.putItem("groceries", "", "milk", "")
	_, errs["deleteItem"] = s.deleteItem("groceries", "1")
	_, errs["resolveItem"] = s.resolveItem("groceries", "1", -1)
	for call, err := range errs {
		if !errors.Is(err, ErrNoMesh) {
			t.Errorf("%s before a mesh: err %v, want ErrNoMesh", call, err)
		}
	}
	for _, call := range []string{"feed", "feedWritable", "mergeFeed", "objectItems", "itemsWritable", "putItem"} {
		if !errors.Is(errs[call], ErrNotFound) {
			t.Errorf("%s before a mesh: err %v, want ErrNotFound too", call, errs[call])
		}
	}
	for id, want := range map[syncproto.ObjectID]string{newsID: "news", presenceID: "presence", catalogID: ""} {
		if name, folder := s.nameOf(id); name != want || folder {
			t.Errorf("nameOf(%s) = %q, %v; want %q, false", id, name, folder, want)
		}
	}
}

// TestObjectSetNewsWithoutEngine: before openSync gives the part the
// engine, news only logs; the news's waiters wake on a merge.
func TestObjectSetNewsWithoutEngine(t *testing.T) {
	var logs bytes.Buffer
	s := &objectSet{members: newMemberState(), log: slog.New(slog.NewTextHandler(&logs, nil))}
	ch := s.newsChanged()
	s.news("joined", "", "device a joined as member")
	if !strings.Contains(logs.String(), "msg=news kind=joined") {
		t.Errorf("news logged %q", logs.String())
	}
	select {
	case <-ch:
		t.Fatal("news without an engine woke the waiters: it wrote nothing")
	default:
	}
	s.newsMerged()
	select {
	case <-ch:
	default:
		t.Fatal("newsMerged did not wake the waiters")
	}
	if got := s.newsChanged(); got == ch {
		t.Error("newsChanged after a wake returned the closed channel")
	}
}
