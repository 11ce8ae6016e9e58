// Command meshd runs a Meshwork device: the libp2p node, membership and
// discovery (package node), and the local control API used by the mesh CLI
// (package node/localapi), which it wires to the node. With --role
// storage it runs a storage peer instead (see node/storage.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/node/localapi"
)

func main() {
	_, gogcSet := os.LookupEnv("GOGC")
	node.TuneRuntime(gogcSet)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is meshd with its arguments; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	var cfg node.Config
	var logLevel, maxSend, quota, configPath string
	cmd := &cobra.Command{
		Use:           "meshd",
		Short:         "Run a Meshwork device",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Home == "" {
				h, err := node.DefaultHome()
				if err != nil {
					return err
				}
				cfg.Home = h
			}
			path, optional := configPath, configPath == ""
			if optional {
				path = filepath.Join(cfg.Home, node.ConfigFileName)
			}
			file, err := node.ReadConfigFile(path, optional)
			if err != nil {
				return err
			}
			fileLevel, err := file.Apply(&cfg, cmd.Flags().Changed)
			if err != nil {
				return err
			}
			if err := cfg.ApplyEnv(os.Getenv); err != nil { // the library reads no environment
				return err
			}
			if fileLevel != "" {
				logLevel = fileLevel
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
			if maxSend != "" {
				n, err := humanize.ParseBytes(maxSend)
				if err != nil {
					return fmt.Errorf("--max-send-rate %q: want a size per second such as 20MB or 5MiB", maxSend)
				}
				cfg.MaxSendRate = int64(n)
			}
			if quota != "" {
				n, err := humanize.ParseBytes(quota)
				if err != nil {
					return fmt.Errorf("--quota %q: want a size such as 50GiB or 500MB", quota)
				}
				cfg.Quota = int64(n)
			}
			logger.Debug("go processors", "GOMAXPROCS", raiseProcs())
			n, err := node.New(cfg, logger)
			if err != nil {
				return err
			}
			api, err := localapi.Listen(n, localapi.Config{Home: cfg.Home, HTTPAddr: cfg.HTTPAddr, HTTPHosts: cfg.HTTPHosts, Log: n.Log()})
			if err != nil {
				n.Close()
				return err
			}
			defer api.Close() // when Run failed before serving it
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return n.Run(ctx, api.Serve)
		},
	}
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "JSON config file (default HOME/meshd.json if it exists; flags given win; see node.ConfigFile)")
	f.StringVar(&cfg.Home, "home", "", "home directory: key, database, control socket (default $MESH_HOME, else $XDG_DATA_HOME/meshwork)")
	f.StringArrayVar(&cfg.ListenAddrs, "listen", nil, "libp2p listen multiaddr, repeatable (default TCP and QUIC on port 4001, or an OS-chosen port if taken)")
	f.StringArrayVar(&cfg.Relays, "relay", nil, "meshrelay multiaddr with /p2p/ID, repeatable")
	f.BoolVar(&cfg.NoMDNS, "no-mdns", false, "turn off LAN discovery")
	f.StringVar(&cfg.HTTPAddr, "http", node.DefaultHTTPAddr, "address of the HTTP API and web desktop (another port if taken; \"off\" turns it off)")
	f.StringArrayVar(&cfg.HTTPHosts, "http-host", nil, "extra host name the HTTP API answers to (besides localhost), repeatable")
	f.StringVar(&cfg.Role, "role", "device", "device, or storage: a storage peer (no working tree; keeps sealed copies for the mesh's devices, never plaintext)")
	f.StringVar(&quota, "quota", "", "storage peer: most sealed content it keeps (e.g. 50GiB); default no limit")
	f.StringVar(&cfg.Store, "store", "", "storage peer: s3://bucket/prefix to keep chunks in an S3-compatible store (MESH_S3_ENDPOINT, MESH_S3_ACCESS_KEY, MESH_S3_SECRET_KEY); default HOME/vault")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&maxSend, "max-send-rate", "", "cap on the blob data this device serves, per second, all peers together (e.g. 20MB); default no cap")
	if err := cmd.Execute(); err != nil {
		if errors.Is(err, node.ErrShutdownTimeout) {
			return 1 // logged by Run: one line naming what did not stop
		}
		fmt.Fprintf(stderr, "meshd: error: %v\n", err)
		return 1
	}
	return 0
}
