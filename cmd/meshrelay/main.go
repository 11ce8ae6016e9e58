package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/relay"
)

// version is set at release time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// hinted is an error with advice for the operator.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }

func hint(err error, format string, args ...any) error {
	return &hinted{err: err, hint: fmt.Sprintf(format, args...)}
}

// run executes the command line args and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := newRootCmd(stdout, stderr)
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "meshrelay: error: %v\n", err)
	if h := (*hinted)(nil); errors.As(err, &h) {
		fmt.Fprintf(stderr, "meshrelay: hint: %s\n", h.hint)
	}
	return 1
}

// flags are the command line settings; fields bound to flags override the
// config file's only when the flag was given.
type flags struct {
	state      string
	configPath string
	file       relay.File
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	var fl flags
	root := &cobra.Command{
		Use:   "meshrelay --state DIR [flags]",
		Short: "Run a Meshwork relay (circuit relay v2, AutoNAT, DHT bootstrap)",
		Long: `meshrelay relays connections between Meshwork devices that cannot reach each
other directly, for the meshes and devices its operator allows. It also tells
devices their public addresses (identify, AutoNAT) and bootstraps Meshwork's
DHT. Its key lives in DIR/relay.key; DIR/meshrelay.json, if present, holds
settings that flags override.`,
		Version:       version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, cmd, &fl, stderr)
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&fl.state, "state", os.Getenv("STATE_DIRECTORY"), "state `DIR` holding the relay key and config (default $STATE_DIRECTORY)")

	f := root.Flags()
	f.StringVar(&fl.configPath, "config", "", "config `FILE` (default DIR/meshrelay.json, optional)")
	f.StringArrayVar(&fl.file.Listen, "listen", nil, "listen on `MULTIADDR` (repeatable; default TCP and QUIC port 4001, IPv4 and IPv6)")
	f.StringArrayVar(&fl.file.Announce, "announce", nil, "also advertise `MULTIADDR` (repeatable; e.g. /dns4/relay.example.org/tcp/4001)")
	f.StringArrayVar(&fl.file.AllowMesh, "allow-mesh", nil, "let members of `MESH_ID` reserve, once they prove membership (repeatable)")
	f.StringArrayVar(&fl.file.AllowDevice, "allow-device", nil, "let `DEVICE_ID` reserve (repeatable)")
	f.BoolVar(&fl.file.Open, "open", false, "let every peer reserve and relay (no ACL)")
	f.StringVar(&fl.file.Metrics, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics (e.g. 127.0.0.1:9464)")
	f.StringVar(&fl.file.LogLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	f.StringVar(&fl.file.LogFormat, "log-format", "text", "log `FORMAT`: text or json")
	f.StringArrayVar(&fl.file.DHTPeers, "dht-peer", nil, "another DHT server, `MULTIADDR`/p2p/ID (repeatable)")
	def := relay.DefaultLimits()
	fl.file.Limits.Data = relay.ByteSize(def.Data)
	fl.file.Limits.Duration = relay.Duration(def.Duration)
	f.Var(&fl.file.Limits.Data, "limit-data", "bytes relayed each way per relayed connection")
	f.Var(&fl.file.Limits.Duration, "limit-duration", "lifetime of a relayed connection")
	f.IntVar(&fl.file.Limits.MaxReservations, "max-reservations", def.MaxReservations, "reservations held at once")
	f.IntVar(&fl.file.Limits.MaxCircuits, "max-circuits", def.MaxCircuits, "relayed connections per peer")

	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(newIDCmd(stdout, &fl))
	return root
}

func newIDCmd(stdout io.Writer, fl *flags) *cobra.Command {
	return &cobra.Command{
		Use:   "id --state DIR",
		Short: "Print the relay's peer ID, creating its key if needed",
		Long: `id prints the relay's peer ID, creating DIR/relay.key if needed, so that the
relay's address (/ip4/IP/tcp/4001/p2p/ID) can be given to devices before the
relay first starts.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			key, _, err := loadKey(fl.state)
			if err != nil {
				return err
			}
			id, err := peer.IDFromPrivateKey(key)
			if err != nil {
				return fmt.Errorf("derive peer id from relay key: %w", err)
			}
			fmt.Fprintln(stdout, id)
			return nil
		},
	}
}

// loadKey loads or creates the relay key in state.
func loadKey(state string) (crypto.PrivKey, bool, error) {
	if state == "" {
		return nil, false, hint(errors.New("no state directory"), "pass --state DIR (it holds the relay's key, so its address stays the same)")
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return nil, false, hint(fmt.Errorf("create state directory: %w", err), "check that the user running meshrelay may write %s", state)
	}
	path := filepath.Join(state, relay.KeyFile)
	key, created, err := identity.LoadOrCreateKey(path)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, false, hint(fmt.Errorf("load relay key %s: %w", path, err), "run meshrelay as the user that owns %s", state)
		}
		return nil, false, fmt.Errorf("load relay key %s: %w", path, err)
	}
	return key, created, nil
}

// serve runs the relay until ctx is done.
func serve(ctx context.Context, cmd *cobra.Command, fl *flags, stderr io.Writer) error {
	if fl.state == "" {
		return hint(errors.New("no state directory"), "pass --state DIR (it holds the relay's key, so its address stays the same)")
	}
	file, err := readConfig(fl)
	if err != nil {
		return err
	}
	overlayFlags(cmd.Flags(), file, &fl.file)

	logger, err := newLogger(stderr, file.LogLevel, file.LogFormat)
	if err != nil {
		return err
	}
	key, created, err := loadKey(fl.state)
	if err != nil {
		return err
	}
	if created {
		logger.Info("created relay key", "path", filepath.Join(fl.state, relay.KeyFile))
	}
	cfg, err := file.Config(key)
	if err != nil {
		return hint(err, "mesh IDs start with \"mesh\", device IDs with \"12D3KooW\"; addresses are multiaddrs like /ip4/0.0.0.0/tcp/4001")
	}
	logger.Debug("relay settings", "state", fl.state, "listen", cfg.ListenAddrs, "announce", cfg.AnnounceAddrs,
		"limits", fmt.Sprintf("%+v", cfg.Limits), "resource_memory", cfg.ResourceMemory, "resource_fds", cfg.ResourceFDs)
	if !cfg.Open && len(cfg.AllowMeshes) == 0 && len(cfg.AllowDevices) == 0 {
		logger.Warn("no peer may reserve: pass --allow-mesh, --allow-device or --open; serving DHT and AutoNAT only")
	}
	srv, err := relay.New(cfg, logger)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
			if strings.HasPrefix(err.Error(), "listen for metrics") {
				return hint(err, "another process uses the metrics port; pick another with --metrics")
			}
			return hint(err, "another process uses that port (an IPFS node also uses 4001); pick another with --listen")
		}
		return err
	}
	for _, a := range srv.Addrs() {
		logger.Info("relay address", "addr", fmt.Sprintf("%s/p2p/%s", a, srv.ID()))
	}
	return srv.Run(ctx)
}

// readConfig reads the config file: --config must exist, the default may not.
func readConfig(fl *flags) (*relay.File, error) {
	if fl.configPath != "" {
		f, err := relay.ReadFile(fl.configPath)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	return relay.ReadFileIfExists(filepath.Join(fl.state, relay.ConfigFile))
}

// overlayFlags copies the fields of the flags that were given into file.
func overlayFlags(fs *pflag.FlagSet, file, fromFlags *relay.File) {
	set := map[string]func(){
		"listen":           func() { file.Listen = fromFlags.Listen },
		"announce":         func() { file.Announce = fromFlags.Announce },
		"allow-mesh":       func() { file.AllowMesh = fromFlags.AllowMesh },
		"allow-device":     func() { file.AllowDevice = fromFlags.AllowDevice },
		"open":             func() { file.Open = fromFlags.Open },
		"metrics":          func() { file.Metrics = fromFlags.Metrics },
		"log-level":        func() { file.LogLevel = fromFlags.LogLevel },
		"log-format":       func() { file.LogFormat = fromFlags.LogFormat },
		"dht-peer":         func() { file.DHTPeers = fromFlags.DHTPeers },
		"limit-data":       func() { file.Limits.Data = fromFlags.Limits.Data },
		"limit-duration":   func() { file.Limits.Duration = fromFlags.Limits.Duration },
		"max-reservations": func() { file.Limits.MaxReservations = fromFlags.Limits.MaxReservations },
		"max-circuits":     func() { file.Limits.MaxCircuits = fromFlags.Limits.MaxCircuits },
	}
	fs.Visit(func(f *pflag.Flag) {
		if apply, ok := set[f.Name]; ok {
			apply()
		}
	})
}

// newLogger returns a structured logger writing to w.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if level == "" {
		level = "info"
	}
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, hint(fmt.Errorf("log level %q: %w", level, err), "use debug, info, warn or error")
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, hint(fmt.Errorf("log format %q", format), "use text or json")
	}
}
