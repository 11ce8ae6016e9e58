package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/meshwork/meshwork/node"
)

// blobCmd: content-addressed blobs, by hand (folders use them underneath).
func blobCmd(cl func() (*client, error), stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "blob", Short: "Add and fetch content-addressed blobs"}
	add := &cobra.Command{
		Use:   "add PATH...",
		Short: "Index files (or every file under a directory) in place and print their blob references",
		Args:  cobra.MinimumNArgs(1),
		RunE: withClient(cl, func(c *client, args []string) error {
			var err error
			abs := make([]string, len(args))
			for i, a := range args {
				if abs[i], err = filepath.Abs(a); err != nil {
					return err
				}
			}
			var res []struct{ Path, Ref, Error string }
			if err := c.call("POST", "/v1/blobs/add", map[string]any{"paths": abs}, &res, nil); err != nil {
				return err
			}
			failed := 0
			for _, r := range res {
				if r.Error != "" {
					fmt.Fprintf(stderr, "mesh: error: %s\n", r.Error)
					failed++
					continue
				}
				fmt.Fprintf(stdout, "%s %s\n", r.Ref, r.Path)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d paths failed", failed, len(res))
			}
			return nil
		}),
	}
	var out string
	var quiet bool
	get := &cobra.Command{
		Use:   "get REF... --out DIR",
		Short: "Fetch blobs from every online member that has them into DIR/REF (verified, atomic)",
		Args:  cobra.MinimumNArgs(1),
		RunE: withClient(cl, func(c *client, args []string) error {
			dir, err := filepath.Abs(out)
			if err != nil {
				return err
			}
			var bar *progressbar.ProgressBar
			var last node.BlobEvent
			err = c.stream("POST", "/v1/blobs/get", map[string]any{"refs": args, "out": dir}, func(line []byte) error {
				var ev node.BlobEvent
				if err := json.Unmarshal(line, &ev); err != nil {
					return fmt.Errorf("bad progress line from meshd: %w", err)
				}
				if ev.Ref != "" && ev.Error != "" {
					fmt.Fprintf(stderr, "mesh: error: %s\n", ev.Error)
				}
				if !quiet && ev.TotalBytes > 0 {
					if bar == nil {
						bar = progressbar.DefaultBytes(ev.TotalBytes, "fetching")
					}
					_ = bar.Set64(ev.DoneBytes)
				}
				last = ev
				return nil
			})
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(stderr)
			}
			if err != nil {
				return err
			}
			if !last.Done {
				return fmt.Errorf("meshd stopped answering before the transfer finished")
			}
			if last.Error != "" {
				return fmt.Errorf("%s", last.Error)
			}
			fmt.Fprintf(stdout, "fetched %d blobs, %d bytes, %.1f MB/s\n", len(args), last.DoneBytes, last.Rate/1e6)
			return nil
		}),
	}
	get.Flags().StringVar(&out, "out", ".", "directory to write the blobs into")
	get.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	cmd.AddCommand(add, get)
	return cmd
}
