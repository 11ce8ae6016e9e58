package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/meshwork/meshwork/node"
)

// storageCmd is 'mesh storage': a storage peer's usage, or on a device what
// the online storage peers hold.
func storageCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "storage [--json]",
		Short: "Show what storage peers hold (on a storage peer: its quota and usage)",
		Args:  cobra.NoArgs,
		RunE: withClient(cl, func(c *client, args []string) error {
			var st node.StorageStatus
			if done, err := c.getJSON("/v1/storage", &st, asJSON, stdout); done || err != nil {
				return err
			}
			if u := st.Usage; u != nil {
				q := "no quota"
				if u.Quota > 0 {
					q = fmt.Sprintf("quota %d bytes", u.Quota)
				}
				fmt.Fprintf(stdout, "storage peer: %d bytes in %d sealed chunks, %d records (%s) in %s\n", u.Used, u.Chunks, u.Records, q, u.Backend)
				return nil
			}
			if len(st.Peers) == 0 {
				fmt.Fprintln(stdout, "no storage peer online")
			}
			for _, p := range st.Peers {
				if p.Usage == nil {
					fmt.Fprintf(stdout, "storage peer %s (%s): %s\n", p.Name, p.ID, p.Error)
					continue
				}
				fmt.Fprintf(stdout, "storage peer %s (%s): %d bytes used, quota %d (0: none)\n", p.Name, p.ID, p.Usage.Used, p.Usage.Quota)
			}
			for _, f := range st.Folders {
				if s := f.Storage; s != nil {
					fmt.Fprintf(stdout, "  folder %s: %s holds %d of %d files (%d of %d bytes)\n", f.Name, s.Peer, s.HeldFiles, s.Files, s.HeldBytes, s.Bytes)
				}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
