package cli

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mdp/qrterminal/v3"
	"github.com/spf13/cobra"

	"github.com/meshwork/meshwork/node"
)

// Main runs the mesh command with args (without the program name) and
// returns the process exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	ran := false
	markRun(root, &ran)
	cmd, err := root.ExecuteC()
	if err != nil {
		fmt.Fprintf(stderr, "mesh: error: %v\n", err)
		var h *hintError
		if errors.As(err, &h) {
			fmt.Fprintf(stderr, "mesh: hint: %s\n", h.hint)
		} else if !ran && cmd != nil {
			// Refused before it ran: a command, argument or flag that
			// does not fit; its help says what does.
			fmt.Fprintf(stderr, "mesh: hint: see '%s --help'\n", cmd.CommandPath())
		}
		return 1
	}
	return 0
}

// markRun makes every command of the tree under c set *ran when its body
// starts, so that Main tells a usage error from a failed command.
func markRun(c *cobra.Command, ran *bool) {
	if f := c.RunE; f != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			*ran = true
			return f(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		markRun(sub, ran)
	}
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	var home string
	root := &cobra.Command{
		Use:           "mesh",
		Short:         "Control a Meshwork device (talks to the local meshd)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&home, "home", "", "meshd home directory (default $MESH_HOME or the XDG data dir)")
	cl := func() (*client, error) {
		h := home
		if h == "" {
			var err error
			if h, err = node.DefaultHome(); err != nil {
				return nil, err
			}
		}
		return newClient(h), nil
	}

	root.AddCommand(tunnelCmds(cl, stdout)...)
	root.AddCommand(folderCmds(cl, stdout, stderr)...)
	root.AddCommand(feedCmds(cl, stdout)...)
	root.AddCommand(storageCmd(cl, stdout))
	root.AddCommand(blobCmd(cl, stdout, stderr), pingCmd(cl, stdout), initCmd(cl, stdout), inviteCmd(cl, stdout, stderr),
		joinCmd(cl, stdout), devicesCmd(cl, stdout), revokeCmd(cl, stdout), statusCmd(cl, stdout), versionCmd(cl, stdout))
	return root
}

// initCmd is 'mesh init --name NAME'.
func initCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var initName string
	cmd := &cobra.Command{
		Use:   "init --name NAME",
		Short: "Create a new mesh with this device as its owner",
		Args:  cobra.NoArgs,
		RunE: withClient(cl, func(c *client, args []string) error {
			var out struct {
				MeshID string `json:"mesh_id"`
			}
			if err := c.call("POST", "/v1/init", map[string]string{"name": initName}, &out, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "created mesh %s with this device (%s) as owner\n", out.MeshID, initName)
			return nil
		}),
	}
	cmd.Flags().StringVar(&initName, "name", "", "this device's name in the mesh")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// inviteCmd is 'mesh invite'.
func inviteCmd(cl func() (*client, error), stdout, stderr io.Writer) *cobra.Command {
	var role, ttl string
	var qr, forStorage bool
	cmd := &cobra.Command{
		Use:   "invite [--role member|admin] [--ttl 24h] [--qr] [--storage]",
		Short: "Print a single-use invite code for a new device (the code is on the last line)",
		Args:  cobra.NoArgs,
		RunE: withClient(cl, func(c *client, args []string) error {
			var out node.InviteResponse
			if err := c.call("POST", "/v1/invite", map[string]any{"role": role, "ttl": ttl, "storage": forStorage}, &out, nil); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "invite for a %s of mesh %s, valid until %s, usable once:\n", out.Role, out.MeshID, out.Expires.Local().Format("2006-01-02 15:04 MST"))
			if out.Redeemer != "" {
				fmt.Fprintf(stderr, "redeemed only at %s, which must be online when the new device joins\n", out.Redeemer)
			}
			fmt.Fprintf(stderr, "on the new device run: mesh join CODE --name NAME\n")
			if qr {
				qrterminal.GenerateWithConfig(out.Code, qrterminal.Config{
					Level: qrterminal.L, Writer: stdout, HalfBlocks: true,
					BlackChar: qrterminal.BLACK_BLACK, WhiteChar: qrterminal.WHITE_WHITE,
					BlackWhiteChar: qrterminal.BLACK_WHITE, WhiteBlackChar: qrterminal.WHITE_BLACK, QuietZone: 1,
				})
			}
			fmt.Fprintln(stdout, out.Code)
			return nil
		}),
	}
	cmd.Flags().StringVar(&role, "role", "member", "role of the new device: member or admin")
	cmd.Flags().StringVar(&ttl, "ttl", "24h", "how long the code stays valid")
	cmd.Flags().BoolVar(&qr, "qr", false, "also print the code as a QR code")
	cmd.Flags().BoolVar(&forStorage, "storage", false, "for a storage peer: the code leaves out the mesh content key")
	return cmd
}

// joinCmd is 'mesh join CODE --name NAME'.
func joinCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var joinName string
	cmd := &cobra.Command{
		Use:   "join CODE --name NAME",
		Short: "Join the mesh of an invite code",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(cl, func(c *client, args []string) error {
			var out struct {
				MeshID string `json:"mesh_id"`
			}
			body := map[string]string{"code": strings.TrimSpace(args[0]), "name": joinName}
			if err := c.call("POST", "/v1/join", body, &out, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "joined mesh %s as %s\n", out.MeshID, joinName)
			return nil
		}),
	}
	cmd.Flags().StringVar(&joinName, "name", "", "this device's name in the mesh")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// devicesCmd is 'mesh devices'.
func devicesCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var devJSON bool
	cmd := &cobra.Command{
		Use:   "devices [--json]",
		Short: "List the mesh's devices, online state and connection",
		Args:  cobra.NoArgs,
		RunE: withClient(cl, func(c *client, args []string) error {
			var devs []node.Device
			if done, err := c.getJSON("/v1/devices", &devs, devJSON, stdout); done || err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tID\tROLE\tSTATUS\tCONNECTION\tRTT")
			for _, d := range devs {
				status, conn, rtt := "offline", "-", "-"
				if d.Self {
					status = "this device"
				} else if d.Online {
					status = "online"
				}
				if d.Connection != nil {
					conn = *d.Connection + " " + deref(d.Transport) + " " + deref(d.RemoteAddr)
				}
				if d.RTTMillis != nil {
					rtt = fmt.Sprintf("%.1fms", *d.RTTMillis)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.ID, d.Role, status, conn, rtt)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&devJSON, "json", false, "print JSON")
	return cmd
}

// revokeCmd is 'mesh revoke DEVICE'.
func revokeCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke DEVICE",
		Short: "Revoke a device (name or ID): it is disconnected and refused by every member",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(cl, func(c *client, args []string) error {
			var out struct{ ID, Name string }
			if err := c.call("POST", "/v1/revoke", map[string]string{"device": args[0]}, &out, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked %s (%s)\n", out.Name, out.ID)
			return nil
		}),
	}
}

// statusCmd is 'mesh status'.
func statusCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var stJSON bool
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show this device and its mesh",
		Args:  cobra.NoArgs,
		RunE: withClient(cl, func(c *client, args []string) error {
			var st node.Status
			if done, err := c.getJSON("/v1/status", &st, stJSON, stdout); done || err != nil {
				return err
			}
			fmt.Fprintf(stdout, "device:  %s (%s)\n", deref(st.Name), st.DeviceID)
			if st.MeshID == nil {
				fmt.Fprintf(stdout, "mesh:    none yet (mesh init --name NAME, or mesh join CODE --name NAME)\n")
			} else {
				fmt.Fprintf(stdout, "mesh:    %s (role %s, %d devices, %d online)\n", *st.MeshID, deref(st.Role), st.Members, st.Online)
			}
			fmt.Fprintf(stdout, "listen:  %s\n", strings.Join(st.ListenAddrs, " "))
			fmt.Fprintf(stdout, "version: %s\n", st.Version)
			if st.Sync.ItemsRefused+st.Sync.ItemsUnsendable > 0 {
				fmt.Fprintf(stdout, "sync:    %d items refused, %d too large to send (see the log)\n", st.Sync.ItemsRefused, st.Sync.ItemsUnsendable)
			}
			if st.HTTP != nil {
				fmt.Fprintf(stdout, "web:     http://%s/ (log in with the URL 'mesh web' prints)\n", *st.HTTP)
			}
			if st.StoreErr != nil {
				since := ""
				if st.StoreSince != nil {
					since = " (since " + st.StoreSince.Local().Format(time.DateTime) + ")"
				}
				fmt.Fprintf(stdout, "store error: %s%s\n", *st.StoreErr, since)
			}
			if st.FolderErrs > 0 {
				fmt.Fprintf(stdout, "errors:  %d folder(s) cannot write changes here (see below)\n", st.FolderErrs)
			}
			if len(st.Folders) > 0 {
				fmt.Fprintln(stdout)
				printFolders(stdout, st.Folders)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&stJSON, "json", false, "print JSON")
	return cmd
}

// versionCmd is 'mesh version'.
func versionCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the CLI version (and the daemon's, if it runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(stdout, "mesh %s\n", node.Version)
			if c, err := cl(); err == nil {
				var st node.Status
				if c.call("GET", "/v1/status", nil, &st, nil) == nil {
					fmt.Fprintf(stdout, "meshd %s\n", st.Version)
				}
			}
			return nil
		},
	}
}

// pingCmd is 'mesh ping DEVICE'.
func pingCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var pingCount int
	var pingJSON bool
	cmd := &cobra.Command{
		Use:   "ping DEVICE [--count N] [--json]",
		Short: "Measure the round-trip time to a device, and show the path in use",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(cl, func(c *client, args []string) error {
			var res []node.PingResult
			q := url.Values{"device": {args[0]}, "count": {fmt.Sprint(pingCount)}}
			if done, err := c.getJSON("/v1/ping?"+q.Encode(), &res, pingJSON, stdout); done || err != nil {
				return err
			}
			for _, r := range res {
				if r.Error != nil {
					return fmt.Errorf("ping %s: seq %d: %s", args[0], r.Seq, *r.Error)
				}
				fmt.Fprintf(stdout, "pong from %s: seq=%d time=%.2fms via %s %s %s\n", args[0], r.Seq, *r.RTTMillis,
					deref(r.Connection), deref(r.Transport), deref(r.RemoteAddr))
			}
			return nil
		}),
	}
	cmd.Flags().IntVar(&pingCount, "count", 3, "number of pings (1 to 100)")
	cmd.Flags().BoolVar(&pingJSON, "json", false, "print JSON")
	return cmd
}

// withClient adapts a command body that needs the daemon's client.
func withClient(cl func() (*client, error), f func(c *client, args []string) error) func(*cobra.Command, []string) error {
	return func(_ *cobra.Command, args []string) error {
		c, err := cl()
		if err != nil {
			return err
		}
		return f(c, args)
	}
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}
