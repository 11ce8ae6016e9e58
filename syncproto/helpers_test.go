package syncproto

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshwork/meshwork/syncproto/hlc"
)

// jsonItem is the JSON form of an Item in testdata.
type jsonItem struct {
	ID          ItemID        `json:"id"`
	Updates     uint32        `json:"updates"`
	Deleted     bool          `json:"deleted,omitempty"`
	NoConflicts bool          `json:"noconflicts,omitempty"`
	History     []jsonHistory `json:"history"`
	Conflicts   []jsonItem    `json:"conflicts,omitempty"`
	Title       string        `json:"title,omitempty"`
	Text        *string       `json:"text,omitempty"`
}

type jsonHistory struct {
	Sequence uint32        `json:"sequence"`
	When     hlc.Timestamp `json:"when,omitzero"`
	By       string        `json:"by,omitempty"`
}

func (j jsonItem) item() Item {
	it := Item{Sync: Sync{ID: j.ID, Updates: j.Updates, Deleted: j.Deleted, NoConflicts: j.NoConflicts}}
	for _, h := range j.History {
		it.Sync.History = append(it.Sync.History, History{Sequence: h.Sequence, When: h.When, By: DeviceID(h.By)})
	}
	for _, c := range j.Conflicts {
		it.Sync.Conflicts = append(it.Sync.Conflicts, c.item())
	}
	it.Title = j.Title
	if j.Text != nil {
		it.Body = Text(*j.Text)
	}
	return it
}

func toJSON(it Item) jsonItem {
	j := jsonItem{ID: it.Sync.ID, Updates: it.Sync.Updates, Deleted: it.Sync.Deleted, NoConflicts: it.Sync.NoConflicts, Title: it.Title}
	for _, h := range it.Sync.History {
		j.History = append(j.History, jsonHistory{Sequence: h.Sequence, When: h.When, By: string(h.By)})
	}
	for _, c := range it.Sync.Conflicts {
		j.Conflicts = append(j.Conflicts, toJSON(c))
	}
	if t, ok := it.Body.(Text); ok {
		s := string(t)
		j.Text = &s
	}
	return j
}

// show renders it for failure messages.
func show(it Item) string {
	b, err := json.MarshalIndent(toJSON(it), "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func loadJSON(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "feedsync", name))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func ts(t testing.TB, s string) hlc.Timestamp {
	t.Helper()
	v, err := hlc.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustRef(t testing.TB, s string) BlobRef {
	t.Helper()
	r, err := ParseBlobRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
