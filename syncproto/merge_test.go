package syncproto

import (
	"testing"
)

type mergeCase struct {
	Name     string    `json:"name"`
	Why      string    `json:"why"`
	Local    *jsonItem `json:"local"`
	Incoming jsonItem  `json:"incoming"`
	Want     jsonItem  `json:"want"`
}

func TestMergeGolden(t *testing.T) {
	var cases []mergeCase
	loadJSON(t, "merge.json", &cases)
	if len(cases) < 10 {
		t.Fatalf("only %d merge cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			want := c.Want.item()
			in := c.Incoming.item()
			var local *Item
			if c.Local != nil {
				l := c.Local.item()
				local = &l
			}
			if got := Merge(local, in); !got.Equal(want) {
				t.Errorf("%s\nMerge(local, incoming) =\n%s\nwant\n%s", c.Why, show(got), show(want))
			}
			if local != nil {
				if got := Merge(&in, *local); !got.Equal(want) {
					t.Errorf("%s\nMerge(incoming, local) =\n%s\nwant\n%s", c.Why, show(got), show(want))
				}
			}
			// Idempotent: merging the result again changes nothing.
			if got := Merge(&want, in); !got.Equal(want) {
				t.Errorf("merge of the result with the incoming item =\n%s\nwant\n%s", show(got), show(want))
			}
		})
	}
}

type resolveCase struct {
	Name   string   `json:"name"`
	Why    string   `json:"why"`
	Item   jsonItem `json:"item"`
	By     DeviceID `json:"by"`
	When   string   `json:"when"`
	Delete bool     `json:"delete"`
	Want   jsonItem `json:"want"`
}

func TestResolveGolden(t *testing.T) {
	var cases []resolveCase
	loadJSON(t, "resolve.json", &cases)
	if len(cases) < 4 {
		t.Fatalf("only %d resolve cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			it := c.Item.item()
			if err := it.Validate(); err != nil {
				t.Fatalf("input: %v", err)
			}
			got, err := UpdateItem(FoldConflicts(it, nil), c.By, ts(t, c.When), c.Delete)
			if err != nil {
				t.Fatal(err)
			}
			want := c.Want.item()
			if !got.Equal(want) {
				t.Errorf("%s\ngot\n%s\nwant\n%s", c.Why, show(got), show(want))
			}
			// The resolution supersedes every version it resolved.
			for _, v := range appendVersions(nil, it) {
				if !v.SubsumedBy(got) {
					t.Errorf("version %v not subsumed by the resolution", v.Sync.Top())
				}
			}
		})
	}
}

func TestCompareWinner(t *testing.T) {
	mk := func(updates uint32, when string, by DeviceID) Item {
		var w = ts(t, "")
		if when != "" {
			w = ts(t, when)
		}
		return Item{Sync: Sync{ID: "x", Updates: updates, History: []History{{Sequence: updates, When: w, By: by}}}}
	}
	const t1, t2 = "2026-01-10T10:00:00.000Z", "2026-01-10T10:00:00.000Z+1"
	tests := []struct {
		name string
		a, b Item
		want int
	}{
		{"more updates", mk(5, t1, "A"), mk(4, t2, "Z"), 1},
		{"fewer updates", mk(3, t2, "Z"), mk(4, t1, "A"), -1},
		{"later when (HLC counter)", mk(4, t2, "A"), mk(4, t1, "Z"), 1},
		{"present when beats absent", mk(4, t1, "A"), mk(4, "", "Z"), 1},
		{"greater by", mk(4, t1, "B"), mk(4, t1, "AAAA"), 1},
		{"smaller by", mk(4, t1, "AAAA"), mk(4, t1, "B"), -1},
		{"present by beats absent", mk(4, t1, "A"), mk(4, t1, ""), 1},
		{"byte-wise, upper before lower", mk(4, t1, "a"), mk(4, t1, "Z"), 1},
		{"tie", mk(4, t1, "A"), mk(4, t1, "A"), 0},
	}
	for _, tt := range tests {
		if got := CompareWinner(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: CompareWinner = %d, want %d", tt.name, got, tt.want)
		}
		if got := CompareWinner(tt.b, tt.a); got != -tt.want {
			t.Errorf("%s: reversed CompareWinner = %d, want %d", tt.name, got, -tt.want)
		}
	}
}

func TestHistorySubsumedBy(t *testing.T) {
	w := ts(t, "2026-01-10T10:00:00.000Z")
	tests := []struct {
		x, y History
		want bool
	}{
		{History{Sequence: 3, By: "A"}, History{Sequence: 3, By: "A"}, true},
		{History{Sequence: 3, By: "A"}, History{Sequence: 5, By: "A"}, true},
		{History{Sequence: 5, By: "A"}, History{Sequence: 3, By: "A"}, false},
		{History{Sequence: 3, By: "A"}, History{Sequence: 9, By: "B"}, false},
		{History{Sequence: 3, When: w}, History{Sequence: 3, When: w}, true},
		{History{Sequence: 3, When: w}, History{Sequence: 4, When: w}, false},
		{History{Sequence: 3, When: w}, History{Sequence: 3, When: w, By: "A"}, true},
		{History{Sequence: 3}, History{Sequence: 3}, false},
	}
	for _, tt := range tests {
		if got := tt.x.SubsumedBy(tt.y); got != tt.want {
			t.Errorf("%+v.SubsumedBy(%+v) = %v, want %v", tt.x, tt.y, got, tt.want)
		}
	}
}
