package feeds

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/feeds/feedstest"
)

// TestFeedSyncRoundTrip: a feed exported from device A is edited by an
// outside client, as a FeedSync endpoint would edit it (text edits of the
// XML, no use of this package), while A changes one of the same items;
// the edited feed, parsed and merged into A (Object.Apply), converges to
// what the FeedSync rules give: the later `when` wins at equal updates and
// the other version is kept, exactly, as a conflict.
func TestFeedSyncRoundTrip(t *testing.T) {
	fc := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	a := newDevice(t, "devA", syncproto.TypeList, fc, map[syncproto.DeviceID]syncproto.Role{
		"devA": syncproto.RoleOwner, "outside-client": syncproto.RoleEditor,
	})
	update(t, a, "milk", syncproto.Content{Title: "Milk", Body: syncproto.Text("1 litre")})
	update(t, a, "bread", syncproto.Content{Title: "Bread", Body: syncproto.Text("rye")})
	var exported bytes.Buffer
	if err := WriteAtom(&exported, FeedInfo{Object: a.ID(), Type: a.Type()}, a.Items(), nil); err != nil {
		t.Fatal(err)
	}

	// A edits milk at 12:00:05 ...
	fc.advance(5 * time.Second)
	aMilk := update(t, a, "milk", syncproto.Content{Title: "Milk", Body: syncproto.Text("2 litres (A)")})
	// ... while the outside client edits milk and bread at 12:00:10.
	feed := exported.String()
	feed = feedstest.OutsideEdit(t, feed, "milk", "Oat milk", "3 litres (outside)", "outside-client", "2026-03-01T12:00:10.000Z")
	feed = feedstest.OutsideEdit(t, feed, "bread", "Bread", "sourdough", "outside-client", "2026-03-01T12:00:10.000Z")

	items, err := ParseAtom(strings.NewReader(feed))
	if err != nil {
		t.Fatalf("%v\n%s", err, feed)
	}
	for _, it := range items {
		if _, _, err := a.Apply(it); err != nil {
			t.Fatal(err)
		}
	}

	milk, _ := a.Item("milk")
	top := milk.Sync.Top()
	if milk.Sync.Updates != 2 || top.By != "outside-client" || top.Sequence != 2 || top.When.Time() != time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC) {
		t.Fatalf("milk winner: updates %d, top %+v", milk.Sync.Updates, top)
	}
	if milk.Title != "Oat milk" || milk.Body != syncproto.Text("3 litres (outside)") {
		t.Errorf("milk winner content %q %v", milk.Title, milk.Body)
	}
	if len(milk.Sync.Conflicts) != 1 || !milk.Sync.Conflicts[0].Equal(aMilk) {
		t.Fatalf("milk conflicts %+v, want A's version %+v", milk.Sync.Conflicts, aMilk)
	}
	if h := milk.Sync.History; len(h) != 2 || h[1].By != "devA" || h[1].Sequence != 1 {
		t.Errorf("milk history %+v", h)
	}
	bread, _ := a.Item("bread")
	if bread.Sync.Updates != 2 || bread.Sync.Top().By != "outside-client" || bread.Body != syncproto.Text("sourdough") || len(bread.Sync.Conflicts) != 0 {
		t.Errorf("bread %+v", bread)
	}

	// Posting the same feed again changes nothing; the merged object
	// exports and reads back with its conflict.
	for _, it := range items {
		if changed, _, err := a.Apply(it); err != nil || changed {
			t.Fatalf("re-apply %q: changed %v, %v", it.Sync.ID, changed, err)
		}
	}
	var again bytes.Buffer
	if err := WriteAtom(&again, FeedInfo{Object: a.ID(), Type: a.Type()}, a.Items(), nil); err != nil {
		t.Fatal(err)
	}
	back, err := ParseAtom(&again)
	if err != nil {
		t.Fatal(err)
	}
	equalItems(t, back, a.Items())

	// Resolving on A folds the outside client's history in (FeedSync
	// "resolving conflicts") and makes update 3.
	resolved, err := a.Resolve("milk")
	if err != nil {
		t.Fatal(err)
	}
	if resolved.Sync.Updates != 3 || len(resolved.Sync.Conflicts) != 0 || len(resolved.Sync.History) != 4 {
		t.Errorf("resolved %+v", resolved.Sync)
	}
}
