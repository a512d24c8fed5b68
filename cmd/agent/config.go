package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/model-provisioner/model-provisioner/watch"
)

// DefaultConfigPath is where the agent looks for its configuration.
const DefaultConfigPath = "/etc/model-provisioner/agent.yaml"

// envPrefix prefixes the environment variables that override configuration
// keys: MODEL_PROVISIONER_STATE_DIR sets state_dir.
const envPrefix = "MODEL_PROVISIONER_"

// Config is the agent's configuration. It is loaded once by loadConfig from
// defaults, the YAML file, the environment and flags, in that order, and then
// passed as plain values to the packages that need them.
type Config struct {
	// ModelsDir holds one spec file per model.
	ModelsDir string `koanf:"models_dir"`
	// StateDir holds the catalog and downloaded content.
	StateDir string `koanf:"state_dir"`
	// HandoffDir receives <name>.json handoff files. Default <state_dir>/handoff.
	HandoffDir string `koanf:"handoff_dir"`
	// Resync is the cron spec of the periodic full pass.
	Resync string `koanf:"resync"`
	// Reverify is the cron spec of the full re-hash of every model.
	Reverify string `koanf:"reverify"`
	// Concurrency bounds how many models are worked on at once.
	Concurrency int `koanf:"concurrency"`
	// Listen is the address of /metrics, /healthz, /readyz and /status.
	Listen string `koanf:"listen"`
	// LogFormat is text or json; LogLevel is debug, info, warn or error.
	LogFormat string `koanf:"log_format"`
	LogLevel  string `koanf:"log_level"`
	// RetiredRetention is how long retired models stay in the catalog.
	RetiredRetention time.Duration `koanf:"retired_retention"`
	// Offline serves only models already present; nothing touches the
	// network. HF_HUB_OFFLINE=1 also turns it on for hf: models.
	Offline bool `koanf:"offline"`
	// AllowHTTP permits plain http:// model references.
	AllowHTTP bool `koanf:"allow_http"`
	// DownloadParts and DownloadPartSize shape parallel ranged downloads.
	DownloadParts    int   `koanf:"download_parts"`
	DownloadPartSize int64 `koanf:"download_part_size"`
	// StallTimeout drops and resumes a download stream that delivers no
	// byte for this long.
	StallTimeout time.Duration `koanf:"stall_timeout"`
	// FreeSpaceHeadroom is the free space a download must leave on the
	// state directory's filesystem.
	FreeSpaceHeadroom int64 `koanf:"free_space_headroom"`
	// DockerConfig is the registry credentials file for oci:// models
	// (default $DOCKER_CONFIG/config.json or ~/.docker/config.json, after
	// $CREDENTIALS_DIRECTORY/docker-config.json).
	DockerConfig string `koanf:"docker_config"`
	// InsecureRegistries may be reached over plain HTTP (loopback
	// registries always may).
	InsecureRegistries []string `koanf:"insecure_registries"`
	// S3Endpoint, S3Region and S3Profile override AWS_ENDPOINT_URL_S3 /
	// AWS_ENDPOINT_URL, AWS_REGION and AWS_PROFILE for s3:// models.
	// Credentials never go here: they come from the environment,
	// $CREDENTIALS_DIRECTORY or the shared credentials file.
	S3Endpoint string `koanf:"s3_endpoint"`
	S3Region   string `koanf:"s3_region"`
	S3Profile  string `koanf:"s3_profile"`
	// S3PathStyle forces path-style ("true") or virtual-host ("false")
	// addressing; empty chooses path style for every endpoint but AWS.
	S3PathStyle string `koanf:"s3_path_style"`
}

// Default returns the configuration used where nothing else is given.
func Default() Config {
	return Config{
		ModelsDir:         "/etc/model-provisioner/models.d",
		StateDir:          "/var/lib/model-provisioner",
		Resync:            "@every 5m",
		Reverify:          "@weekly",
		Concurrency:       2,
		Listen:            "127.0.0.1:9464",
		LogFormat:         "text",
		LogLevel:          "info",
		RetiredRetention:  7 * 24 * time.Hour,
		DownloadParts:     4,
		DownloadPartSize:  64 << 20,
		StallTimeout:      30 * time.Second,
		FreeSpaceHeadroom: 1 << 30,
	}
}

// configKeys are the keys a configuration file may hold.
var configKeys = []string{"models_dir", "state_dir", "handoff_dir", "resync", "reverify", "concurrency", "listen", "log_format", "log_level", "retired_retention",
	"offline", "allow_http", "download_parts", "download_part_size", "stall_timeout", "free_space_headroom",
	"docker_config", "insecure_registries", "s3_endpoint", "s3_region", "s3_profile", "s3_path_style"}

// Handoff returns the effective handoff directory.
func (c Config) Handoff() string {
	if c.HandoffDir != "" {
		return c.HandoffDir
	}
	return filepath.Join(c.StateDir, "handoff")
}

// FieldError names the configuration key that is wrong.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return "config: " + e.Field + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// Validate checks every field and returns all problems, each a *FieldError.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf(format, args...)})
	}
	for field, dir := range map[string]string{"models_dir": c.ModelsDir, "state_dir": c.StateDir, "handoff_dir": c.HandoffDir} {
		if dir == "" && field != "handoff_dir" {
			bad(field, "must be set")
		} else if dir != "" && !filepath.IsAbs(dir) {
			bad(field, "%q must be an absolute path", dir)
		}
	}
	if err := watch.ValidateSchedule(c.Resync); err != nil {
		bad("resync", "%v", err)
	}
	if err := watch.ValidateSchedule(c.Reverify); err != nil {
		bad("reverify", "%v", err)
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		bad("concurrency", "%d is out of range: want 1 to 64", c.Concurrency)
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			bad("listen", "%q: want HOST:PORT, e.g. 127.0.0.1:9464 (empty disables the endpoints)", c.Listen)
		}
	}
	if f := strings.ToLower(c.LogFormat); f != "text" && f != "json" {
		bad("log_format", "%q: want text or json", c.LogFormat)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(c.LogLevel)); err != nil {
		bad("log_level", "%q: want debug, info, warn or error", c.LogLevel)
	}
	if c.RetiredRetention < 0 {
		bad("retired_retention", "must not be negative")
	}
	if c.DownloadParts < 1 || c.DownloadParts > 32 {
		bad("download_parts", "%d is out of range: want 1 to 32", c.DownloadParts)
	}
	if c.DownloadPartSize < 1<<20 {
		bad("download_part_size", "%d bytes is too small: want at least 1048576 (1 MiB)", c.DownloadPartSize)
	}
	if c.StallTimeout < time.Second {
		bad("stall_timeout", "%s is too short: want at least 1s", c.StallTimeout)
	}
	if c.FreeSpaceHeadroom < 0 {
		bad("free_space_headroom", "must not be negative")
	}
	if c.StateDir != "" && filepath.Clean(c.Handoff()) == filepath.Clean(c.StateDir) {
		// Handoff writers sweep their directory for killed writers' temp
		// files, which would include the catalog's.
		bad("handoff_dir", "%s is the state directory: give handoff files a directory of their own", c.Handoff())
	}
	switch strings.ToLower(c.S3PathStyle) {
	case "", "true", "false":
	default:
		bad("s3_path_style", "%q: want true, false or empty", c.S3PathStyle)
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// loadConfig builds the configuration from defaults, the YAML file at path,
// MODEL_PROVISIONER_* environment variables and the flags in overrides, each
// overriding the one before. explicit says whether path was asked for; a
// missing file at the default path just means "use the defaults". Relative
// paths in the file resolve against the file's directory; relative paths
// from the environment or flags resolve against the working directory.
func loadConfig(path string, explicit bool, overrides map[string]any) (Config, error) {
	cfg := Default()
	k := koanf.New(".")
	if path != "" {
		_, err := os.Stat(path)
		switch {
		case err == nil:
			if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
				return Config{}, fmt.Errorf("config %s: %w", path, err)
			}
			for _, key := range k.Keys() {
				if !slices.Contains(configKeys, key) {
					return Config{}, fmt.Errorf("config %s: unknown key %q; known keys: %s", path, key, strings.Join(configKeys, ", "))
				}
			}
			if err := unmarshal(k, &cfg); err != nil {
				return Config{}, fmt.Errorf("config %s: %w", path, err)
			}
			base, err := filepath.Abs(filepath.Dir(path))
			if err != nil {
				return Config{}, err
			}
			resolveDirs(&cfg, base)
		case errors.Is(err, fs.ErrNotExist) && !explicit:
		default:
			return Config{}, fmt.Errorf("config: %w", err)
		}
	}

	k = koanf.New(".")
	if err := k.Load(env.Provider(".", env.Opt{
		Prefix: envPrefix,
		TransformFunc: func(key, v string) (string, any) {
			key = strings.ToLower(strings.TrimPrefix(key, envPrefix))
			if !slices.Contains(configKeys, key) {
				return "", nil // other MODEL_PROVISIONER_ variables are not config
			}
			return key, v
		},
	}), nil); err != nil {
		return Config{}, fmt.Errorf("config from environment: %w", err)
	}
	if err := k.Load(confmap.Provider(overrides, "."), nil); err != nil {
		return Config{}, fmt.Errorf("config from flags: %w", err)
	}
	if err := unmarshal(k, &cfg); err != nil {
		return Config{}, fmt.Errorf("config from environment or flags: %w", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return Config{}, err
	}
	resolveDirs(&cfg, wd)
	return cfg, cfg.Validate()
}

func unmarshal(k *koanf.Koanf, cfg *Config) error {
	return k.UnmarshalWithConf("", cfg, koanf.UnmarshalConf{Tag: "koanf"})
}

func resolveDirs(cfg *Config, base string) {
	for _, p := range []*string{&cfg.ModelsDir, &cfg.StateDir, &cfg.HandoffDir} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
}
