package cli

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/meshwork/meshwork/node"
)

// pathsCmd is 'mesh fetch PATH...' or 'mesh evict PATH...' (metadata mode).
func pathsCmd(cl func() (*client, error), stdout io.Writer, op string) *cobra.Command {
	short := "Bring the content of files of a metadata-mode folder to this device"
	if op == "evict" {
		short = "Drop the local content of files of a metadata-mode folder (their names stay)"
	}
	return &cobra.Command{
		Use:   op + " PATH...",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: withClient(cl, func(c *client, args []string) error {
			paths := make([]string, len(args))
			for i, p := range args {
				abs, err := filepath.Abs(p)
				if err != nil {
					return err
				}
				paths[i] = abs
			}
			var res []node.PathResult
			if err := c.callNoTimeout("POST", "/v1/"+op, map[string]any{"paths": paths}, &res); err != nil {
				return err
			}
			var errs []error
			for _, r := range res {
				if r.Error != "" {
					errs = append(errs, errors.New(r.Error))
					continue
				}
				fmt.Fprintf(stdout, "%s %s\n", map[string]string{"fetch": "fetched", "evict": "evicted"}[op], r.Path)
			}
			return errors.Join(errs...)
		}),
	}
}

// filesCmd is 'mesh folder files NAME': every file and whether it is here.
func filesCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "files NAME [--json]",
		Short: "List a folder's files and whether their content is on this device",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(cl, func(c *client, args []string) error {
			var files []node.FileInfo
			if done, err := c.getJSON("/v1/folders/"+url.PathEscape(args[0])+"/files", &files, asJSON, stdout); done || err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PATH\tSIZE\tHERE")
			for _, f := range files {
				here := "no"
				if f.Local {
					here = "yes"
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\n", f.Path, f.Size, here)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
