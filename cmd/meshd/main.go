// Command meshd runs a Meshwork device: the libp2p node, membership,
// discovery and the local control API used by the mesh CLI.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/meshwork/meshwork/node"
)

func main() {
	var cfg node.Config
	var logLevel, maxSend string
	cmd := &cobra.Command{
		Use:           "meshd",
		Short:         "Run a Meshwork device",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			if maxSend != "" {
				n, err := humanize.ParseBytes(maxSend)
				if err != nil {
					return fmt.Errorf("--max-send-rate %q: want a size per second such as 20MB or 5MiB", maxSend)
				}
				cfg.MaxSendRate = int64(n)
			}
			if cfg.Home == "" {
				h, err := node.DefaultHome()
				if err != nil {
					return err
				}
				cfg.Home = h
			}
			n, err := node.New(cfg, logger)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return n.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Home, "home", "", "home directory: key, database, control socket (default $MESH_HOME, else $XDG_DATA_HOME/meshwork)")
	f.StringArrayVar(&cfg.ListenAddrs, "listen", nil, "libp2p listen multiaddr, repeatable (default TCP and QUIC on port 4001, or an OS-chosen port if taken)")
	f.StringArrayVar(&cfg.Relays, "relay", nil, "meshrelay multiaddr with /p2p/ID, repeatable")
	f.BoolVar(&cfg.NoMDNS, "no-mdns", false, "turn off LAN discovery")
	f.StringVar(&cfg.HTTPAddr, "http", node.DefaultHTTPAddr, "address of the HTTP API and web desktop (another port if taken; \"off\" turns it off)")
	f.StringArrayVar(&cfg.HTTPHosts, "http-host", nil, "extra host name the HTTP API answers to (besides localhost), repeatable")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&maxSend, "max-send-rate", "", "cap on the blob data this device serves, per second, all peers together (e.g. 20MB); default no cap")
	if err := cmd.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "meshd: error: %v\n", err)
		os.Exit(1)
	}
}
