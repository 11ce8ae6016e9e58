package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshwork/meshwork/node"
)

// tunnelCmds: expose, unexpose, exposed, tunnel (open / close), tunnels.
func tunnelCmds(cl func() (*client, error), stdout io.Writer) []*cobra.Command {
	return []*cobra.Command{exposeCmd(cl, stdout), unexposeCmd(cl, stdout), exposedCmd(cl, stdout), tunnelCmd(cl, stdout), tunnelsCmd(cl, stdout)}
}

// exposeCmd is 'mesh expose NAME ADDR'.
func exposeCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var allow []string
	cmd := &cobra.Command{
		Use:   "expose NAME ADDR [--allow DEVICE]...",
		Short: "Publish a local TCP service (e.g. ssh 127.0.0.1:22) to the mesh's devices",
		Args:  cobra.ExactArgs(2),
		RunE: withClient(cl, func(c *client, args []string) error {
			var out node.ExposedService
			if err := c.call("POST", "/v1/expose", node.ExposedService{Name: args[0], Addr: args[1], Allow: allow}, &out, nil); err != nil {
				return err
			}
			who := "every member"
			if len(out.Allow) > 0 {
				who = fmt.Sprintf("%d allowed device(s)", len(out.Allow))
			}
			fmt.Fprintf(stdout, "exposed %s (%s) to %s\n", out.Name, out.Addr, who)
			return nil
		}),
	}
	cmd.Flags().StringArrayVar(&allow, "allow", nil, "only this device (name or ID) may connect; repeatable")
	return cmd
}

// unexposeCmd is 'mesh unexpose NAME'.
func unexposeCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "unexpose NAME",
		Short: "Stop publishing a service",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(cl, func(c *client, args []string) error {
			if err := c.call("POST", "/v1/unexpose", map[string]string{"name": args[0]}, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "unexposed %s\n", args[0])
			return nil
		}),
	}
}

// exposedCmd is 'mesh exposed'.
func exposedCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var exposedJSON bool
	cmd := &cobra.Command{
		Use:   "exposed [--json]",
		Short: "List the services this device publishes",
		Args:  cobra.NoArgs,
		RunE: withClient(cl, func(c *client, args []string) error {
			var list []node.ExposedService
			if done, err := c.getJSON("/v1/exposed", &list, exposedJSON, stdout); done || err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tADDRESS\tALLOWED")
			for _, s := range list {
				who := "all members"
				if len(s.Allow) > 0 {
					who = fmt.Sprint(s.Allow)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.Addr, who)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&exposedJSON, "json", false, "print JSON")
	return cmd
}

// tunnelCmd is 'mesh tunnel DEVICE NAME' and 'mesh tunnel close ID'.
func tunnelCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var local string
	var background bool
	cmd := &cobra.Command{
		Use:   "tunnel DEVICE NAME [--local 127.0.0.1:PORT] [--background]",
		Short: "Forward a local port to a service another device exposes (until stopped)",
		Long: "Listens locally and forwards each connection to the service NAME on DEVICE.\n" +
			"Without --local a free port is chosen and printed. Without --background the\n" +
			"tunnel lasts until this command is stopped (Ctrl-C); with it, the daemon keeps\n" +
			"it open until 'mesh tunnel close ID'.",
		Args: cobra.ExactArgs(2),
		RunE: withClient(cl, func(c *client, args []string) error {
			body := map[string]any{"device": args[0], "service": args[1], "local": local, "follow": !background}
			if background {
				var info node.TunnelInfo
				if err := c.call("POST", "/v1/tunnels", body, &info, nil); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "tunnel %d: %s → %s on %s (close with: mesh tunnel close %d)\n", info.ID, info.LocalAddr, args[1], args[0], info.ID)
				return nil
			}
			return tunnelForeground(c, body, args[0], args[1], stdout)
		}),
	}
	cmd.Flags().StringVar(&local, "local", "", "local address to listen on (default 127.0.0.1 and a free port)")
	cmd.Flags().BoolVar(&background, "background", false, "let the daemon keep the tunnel open")
	cmd.AddCommand(tunnelCloseCmd(cl, stdout))
	return cmd
}

// tunnelForeground opens the tunnel of body in the foreground: it lives as
// long as this request, which SIGINT/SIGTERM stop by closing it.
func tunnelForeground(c *client, body map[string]any, device, service string, stdout io.Writer) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	done := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		done <- c.streamUntil("POST", "/v1/tunnels", body, stop, func(line []byte) error {
			var info node.TunnelInfo
			if err := json.Unmarshal(line, &info); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "listening on %s → %s on %s (Ctrl-C to stop)\n", info.LocalAddr, service, device)
			return nil
		})
	}()
	select {
	case err := <-done:
		return err
	case <-sig:
		close(stop)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return nil
	}
}

// tunnelCloseCmd is 'mesh tunnel close ID'.
func tunnelCloseCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "close ID",
		Short: "Close a background tunnel",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(cl, func(c *client, args []string) error {
			if err := c.call("DELETE", "/v1/tunnels/"+args[0], nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "closed tunnel %s\n", args[0])
			return nil
		}),
	}
}

// tunnelsCmd is 'mesh tunnels'.
func tunnelsCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var tunnelsJSON bool
	cmd := &cobra.Command{
		Use:   "tunnels [--json]",
		Short: "List the tunnels this daemon holds open",
		Args:  cobra.NoArgs,
		RunE: withClient(cl, func(c *client, args []string) error {
			var list []node.TunnelInfo
			if done, err := c.getJSON("/v1/tunnels", &list, tunnelsJSON, stdout); done || err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tLOCAL\tDEVICE\tSERVICE\tCONNS\tDIRECT\tRELAYED")
			for _, t := range list {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\n", t.ID, t.LocalAddr, t.Device, t.Service, t.Stats.Conns, t.Stats.Direct, t.Stats.Relayed)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&tunnelsJSON, "json", false, "print JSON")
	return cmd
}
