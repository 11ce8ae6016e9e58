// Command gofeedcheck parses a feed from stdin with
// github.com/mmcdole/gofeed, an independent feed reader, and prints what
// it found as JSON. The tests of package feeds run it; it lives under
// testdata so that syncproto's dependency fence (stdlib only) holds.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/mmcdole/gofeed"
	ext "github.com/mmcdole/gofeed/extensions"
)

type enclosure struct {
	URL, Length, Type string
}

type item struct {
	Title      string
	Content    string
	Enclosures []enclosure
	Sync       []ext.Extension // item.Extensions["sx"]["sync"]
	Meshwork   map[string][]ext.Extension
}

type out struct {
	FeedType, Title string
	Items           []item
}

func main() {
	f, err := gofeed.NewParser().Parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gofeedcheck:", err)
		os.Exit(1)
	}
	o := out{FeedType: f.FeedType, Title: f.Title}
	for _, it := range f.Items {
		i := item{Title: it.Title, Content: it.Content}
		if i.Content == "" {
			i.Content = it.Description
		}
		for _, e := range it.Enclosures {
			i.Enclosures = append(i.Enclosures, enclosure{e.URL, e.Length, e.Type})
		}
		if sx, ok := it.Extensions["sx"]; ok {
			i.Sync = sx["sync"]
		}
		i.Meshwork = it.Extensions["meshwork"]
		o.Items = append(o.Items, i)
	}
	if err := json.NewEncoder(os.Stdout).Encode(o); err != nil {
		fmt.Fprintln(os.Stderr, "gofeedcheck:", err)
		os.Exit(1)
	}
}
