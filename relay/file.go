package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshwork/meshwork/identity"
)

// File is the relay's config file (JSON, usually STATE/meshrelay.json),
// in text form. Command-line flags override its fields. Example:
//
//	{
//	  "listen": ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"],
//	  "announce": ["/dns4/relay.example.org/tcp/4001"],
//	  "allow_mesh": ["mesh..."],
//	  "allow_device": ["12D3KooW..."],
//	  "open": false,
//	  "metrics": "127.0.0.1:9464",
//	  "log_level": "info",
//	  "limits": {"data": "16GiB", "duration": "12h", "max_reservations": 1024}
//	}
type File struct {
	Listen      []string   `json:"listen,omitempty"`
	Announce    []string   `json:"announce,omitempty"`
	AllowMesh   []string   `json:"allow_mesh,omitempty"`
	AllowDevice []string   `json:"allow_device,omitempty"`
	Open        bool       `json:"open,omitempty"`
	Metrics     string     `json:"metrics,omitempty"`
	LogLevel    string     `json:"log_level,omitempty"`  // debug, info, warn, error
	LogFormat   string     `json:"log_format,omitempty"` // text or json
	DHTPeers    []string   `json:"dht_peers,omitempty"`  // /ip4/.../p2p/ID of other DHT servers
	Limits      FileLimits `json:"limits"`
	Resources   struct {
		Memory ByteSize `json:"memory,omitempty"`
		FDs    int      `json:"fds,omitempty"`
	} `json:"resources"`
}

// FileLimits is the "limits" object of File; zero means the default.
type FileLimits struct {
	Data                  ByteSize `json:"data,omitempty"`
	Duration              Duration `json:"duration,omitempty"`
	ReservationTTL        Duration `json:"reservation_ttl,omitempty"`
	MaxReservations       int      `json:"max_reservations,omitempty"`
	MaxCircuits           int      `json:"max_circuits,omitempty"`
	MaxReservationsPerIP  int      `json:"max_reservations_per_ip,omitempty"`
	MaxReservationsPerASN int      `json:"max_reservations_per_asn,omitempty"`
	BufferSize            ByteSize `json:"buffer_size,omitempty"`
	MaxLogSize            ByteSize `json:"max_log_size,omitempty"`
}

// ReadFile reads a config file. A missing file is fs.ErrNotExist (wrapped);
// unknown fields are errors, so typos do not pass silently.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read relay config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse relay config %s: %w", path, err)
	}
	return &f, nil
}

// ReadFileIfExists is ReadFile, but a missing file gives an empty File.
func ReadFileIfExists(path string) (*File, error) {
	f, err := ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{}, nil
	}
	return f, err
}

// Config parses f into a Config using key. Every malformed value is
// reported with its field and input.
func (f *File) Config(key crypto.PrivKey) (Config, error) {
	c := Config{
		Key:            key,
		Open:           f.Open,
		MetricsAddr:    f.Metrics,
		ResourceMemory: int64(f.Resources.Memory),
		ResourceFDs:    f.Resources.FDs,
		Limits: Limits{
			Data:                  int64(f.Limits.Data),
			Duration:              time.Duration(f.Limits.Duration),
			ReservationTTL:        time.Duration(f.Limits.ReservationTTL),
			MaxReservations:       f.Limits.MaxReservations,
			MaxCircuits:           f.Limits.MaxCircuits,
			MaxReservationsPerIP:  f.Limits.MaxReservationsPerIP,
			MaxReservationsPerASN: f.Limits.MaxReservationsPerASN,
			BufferSize:            int(f.Limits.BufferSize),
			MaxLogSize:            int(f.Limits.MaxLogSize),
		},
	}
	var errs []error
	for _, s := range f.Listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("listen address %q: %w", s, err))
			continue
		}
		c.ListenAddrs = append(c.ListenAddrs, a)
	}
	for _, s := range f.Announce {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("announce address %q: %w", s, err))
			continue
		}
		c.AnnounceAddrs = append(c.AnnounceAddrs, a)
	}
	for _, s := range f.AllowMesh {
		m, err := identity.ParseMeshID(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("allowed mesh %q: %w", s, err))
			continue
		}
		c.AllowMeshes = append(c.AllowMeshes, m)
	}
	for _, s := range f.AllowDevice {
		d, err := peer.Decode(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("allowed device %q: %w", s, err))
			continue
		}
		c.AllowDevices = append(c.AllowDevices, d)
	}
	for _, s := range f.DHTPeers {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("dht peer %q: %w", s, err))
			continue
		}
		c.DHTBootstrapPeers = append(c.DHTBootstrapPeers, *ai)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ByteSize is a byte count whose text form is an integer with an optional
// binary unit: "1048576", "512KiB", "64MiB", "16GiB", "1TiB" (also "B").
// In JSON it may be a string or a number.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// ParseByteSize parses the text form of a ByteSize.
func ParseByteSize(s string) (ByteSize, error) {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("parse byte size %q: want a non-negative integer with an optional unit B, KiB, MiB, GiB or TiB", s)
	}
	if n > (1<<63-1)/mult {
		return 0, fmt.Errorf("parse byte size %q: too large", s)
	}
	return ByteSize(n * mult), nil
}

// String returns the shortest exact text form.
func (b ByteSize) String() string {
	for _, u := range byteUnits[:4] {
		if b != 0 && int64(b)%u.mult == 0 {
			return strconv.FormatInt(int64(b)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// Set implements pflag.Value.
func (b *ByteSize) Set(s string) error {
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// Type implements pflag.Value.
func (b *ByteSize) Type() string { return "size" }

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(t []byte) error { return b.Set(string(t)) }

// UnmarshalJSON accepts a JSON string (text form) or a number of bytes.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		return b.Set(s)
	}
	return b.Set(string(data))
}

// Duration is a time.Duration whose text form is time.ParseDuration's
// ("12h", "90m").
type Duration time.Duration

// String implements fmt.Stringer.
func (d Duration) String() string { return time.Duration(d).String() }

// Set implements pflag.Value.
func (d *Duration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("parse duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Type implements pflag.Value.
func (d *Duration) Type() string { return "duration" }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(t []byte) error { return d.Set(string(t)) }
