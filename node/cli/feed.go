package cli

import (
	"fmt"
	"io"
	"net/url"

	"github.com/spf13/cobra"
)

// feedCmds: mesh feed NAME --format atom|rss|json, and mesh web.
func feedCmds(cl func() (*client, error), stdout io.Writer) []*cobra.Command {
	var format string
	feed := &cobra.Command{
		Use:   "feed NAME [--format atom|rss|json]",
		Short: "Print a mesh object (folder, list, news, devices, presence, membership) as a feed with FeedSync metadata",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(cl, func(c *client, args []string) error {
			switch format {
			case "atom", "rss", "json":
			default:
				return fmt.Errorf("--format %q: want atom, rss or json", format)
			}
			var raw []byte
			path := "/api/v1/objects/" + url.PathEscape(args[0]) + "/feed?format=" + format
			if err := c.call("GET", path, nil, nil, &raw); err != nil {
				return fmt.Errorf("feed %q: %w", args[0], err)
			}
			_, err := stdout.Write(raw)
			return err
		}),
	}
	feed.Flags().StringVar(&format, "format", "atom", "atom, rss or json (JSON Feed 1.1)")
	web := &cobra.Command{
		Use:   "web",
		Short: "Print the web desktop's URL, with a login token",
		Args:  cobra.NoArgs,
		RunE: withClient(cl, func(c *client, _ []string) error {
			var out struct {
				URL string `json:"url"`
			}
			if err := c.call("GET", "/v1/web", nil, &out, nil); err != nil {
				return err
			}
			fmt.Fprintln(stdout, out.URL)
			return nil
		}),
	}
	return []*cobra.Command{feed, web}
}
