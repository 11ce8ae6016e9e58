package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/dustin/go-humanize"

	"github.com/meshwork/meshwork/blobs/s3store"
)

// ConfigFileName is the optional config file inside the home directory.
const ConfigFileName = "meshd.json"

// ConfigFile is meshd's JSON config file (meshd --config FILE, else
// HOME/meshd.json if it exists). Command-line flags given explicitly win.
// Unknown fields are an error. Sizes are strings such as "50GiB".
//
//	{"listen": ["/ip4/0.0.0.0/tcp/4001"], "relay": ["/ip4/…/p2p/ID"],
//	 "no_mdns": false, "max_send_rate": "20MB", "log_level": "info",
//	 "role": "storage", "quota": "50GiB", "store": "s3://bucket/prefix",
//	 "s3": {"endpoint": "https://s3.example.net", "access_key": "…",
//	        "secret_key": "…", "region": "us-east-1", "insecure": false}}
//
// MESH_S3_* environment variables override the "s3" fields they set. A file
// holding a secret key must not be readable by group or others.
type ConfigFile struct {
	Listen      []string      `json:"listen,omitempty"`
	Relay       []string      `json:"relay,omitempty"`
	NoMDNS      bool          `json:"no_mdns,omitempty"`
	MaxSendRate string        `json:"max_send_rate,omitempty"`
	LogLevel    string        `json:"log_level,omitempty"`
	Role        string        `json:"role,omitempty"`
	Quota       string        `json:"quota,omitempty"`
	Store       string        `json:"store,omitempty"`
	S3          *S3ConfigFile `json:"s3,omitempty"`
}

// S3ConfigFile is the "s3" object of ConfigFile.
type S3ConfigFile struct {
	Endpoint  string `json:"endpoint,omitempty"`
	AccessKey string `json:"access_key,omitempty"`
	SecretKey string `json:"secret_key,omitempty"`
	Region    string `json:"region,omitempty"`
	Insecure  bool   `json:"insecure,omitempty"`
}

// ReadConfigFile reads a config file; with optional, a missing file is an
// empty config.
func ReadConfigFile(path string, optional bool) (ConfigFile, error) {
	var f ConfigFile
	b, err := os.ReadFile(path)
	if optional && errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("parse config %s: %w", path, err)
	}
	if f.S3 != nil && f.S3.SecretKey != "" {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return f, fmt.Errorf("config %s holds an S3 secret key and is readable by others (mode %v): chmod 600 %s", path, fi.Mode().Perm(), filepath.Base(path))
		}
	}
	return f, nil
}

// Apply fills cfg from the file where set takes no value from a flag
// (set(name) reports whether flag --name was given); it returns the log
// level ("" if the file has none).
func (f ConfigFile) Apply(cfg *Config, set func(flag string) bool) (logLevel string, err error) {
	if len(f.Listen) > 0 && !set("listen") {
		cfg.ListenAddrs = f.Listen
	}
	if len(f.Relay) > 0 && !set("relay") {
		cfg.Relays = f.Relay
	}
	if f.NoMDNS && !set("no-mdns") {
		cfg.NoMDNS = true
	}
	if f.MaxSendRate != "" && !set("max-send-rate") {
		n, err := humanize.ParseBytes(f.MaxSendRate)
		if err != nil {
			return "", fmt.Errorf("config max_send_rate %q: want a size per second such as 20MB", f.MaxSendRate)
		}
		cfg.MaxSendRate = int64(n)
	}
	if f.Role != "" && !set("role") {
		cfg.Role = f.Role
	}
	if f.Quota != "" && !set("quota") {
		n, err := humanize.ParseBytes(f.Quota)
		if err != nil {
			return "", fmt.Errorf("config quota %q: want a size such as 50GiB", f.Quota)
		}
		cfg.Quota = int64(n)
	}
	if f.Store != "" && !set("store") {
		cfg.Store = f.Store
	}
	if f.S3 != nil {
		cfg.S3 = &s3store.Config{Endpoint: f.S3.Endpoint, AccessKey: f.S3.AccessKey, SecretKey: f.S3.SecretKey,
			Region: f.S3.Region, Insecure: f.S3.Insecure}
	}
	if !set("log-level") {
		logLevel = f.LogLevel
	}
	return logLevel, nil
}

// ApplyEnv fills cfg from the environment variables meshd honours, read
// through getenv (os.Getenv in cmd/meshd: the library never reads the
// environment itself, fenced by TestLibraryReadsNoEnv). Call it after
// ConfigFile.Apply: MESHWORK_DIRECT_WRITES=0 sets NoDirectWrites, and for a
// storage peer with an S3 store the MESH_S3_* variables that are set
// override the config file's "s3" fields (an S3 config without an endpoint
// is an error when the store opens).
func (cfg *Config) ApplyEnv(getenv func(string) string) error {
	if getenv("MESHWORK_DIRECT_WRITES") == "0" {
		cfg.NoDirectWrites = true
	}
	if cfg.Role != RoleStorage || cfg.Store == "" {
		return nil // S3 is read only by a storage peer's S3 store (openStorage)
	}
	c, err := s3Env(cfg.S3, getenv)
	if err != nil {
		return err
	}
	cfg.S3 = &c
	return nil
}

// s3Config is the S3 settings of a storage peer's S3 store: the config
// file's with the MESH_S3_* variables over them (Config.ApplyEnv).
func s3Config(c *s3store.Config) (s3store.Config, error) {
	var out s3store.Config
	if c != nil {
		out = *c
	}
	if out.Endpoint == "" {
		return out, fmt.Errorf("s3 config: no endpoint: set %s, or \"s3\": {\"endpoint\": …} in the config file", s3store.EnvEndpoint)
	}
	return out, nil
}

// s3Env is the S3 settings: the config file's, overridden by the
// MESH_S3_* variables that are set.
func s3Env(fromFile *s3store.Config, getenv func(string) string) (s3store.Config, error) {
	var c s3store.Config
	if fromFile != nil {
		c = *fromFile
	}
	for _, kv := range []struct {
		dst *string
		env string
	}{{&c.Endpoint, s3store.EnvEndpoint}, {&c.AccessKey, s3store.EnvAccessKey}, {&c.SecretKey, s3store.EnvSecretKey}, {&c.Region, s3store.EnvRegion}} {
		if v := getenv(kv.env); v != "" {
			*kv.dst = v
		}
	}
	if v := getenv(s3store.EnvInsecure); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("s3 config: %s=%q: want true or false", s3store.EnvInsecure, v)
		}
		c.Insecure = b
	}
	return c, nil
}
