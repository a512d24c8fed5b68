package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// errHelp means --help was asked for and printed.
var errHelp = errors.New("help requested")

// parseFlags parses args with fs, allowing flags after positional arguments
// ("ensure model.gguf --digest sha256:..."), which is how people type them.
// It returns the positional arguments.
func parseFlags(fs *flag.FlagSet, args []string, out io.Writer) ([]string, error) {
	fs.SetOutput(out)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, &usageError{msg: err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// configFlags are the flags that locate and override the configuration,
// shared by every subcommand that reads it.
type configFlags struct {
	fs     *flag.FlagSet
	path   string
	values map[string]*string
}

// bindConfig registers --config and one flag per configuration key in keys
// (--state-dir for state_dir, and so on).
func bindConfig(fs *flag.FlagSet, keys ...string) *configFlags {
	cf := &configFlags{fs: fs, values: map[string]*string{}}
	fs.StringVar(&cf.path, "config", "", "agent configuration file (default "+DefaultConfigPath+" if it exists; env MODEL_PROVISIONER_CONFIG)")
	help := map[string]string{
		"models_dir":          "directory of model spec files",
		"state_dir":           "state directory holding the catalog",
		"handoff_dir":         "directory for <name>.json handoff files (default <state-dir>/handoff)",
		"listen":              "address of /metrics, /healthz, /readyz and /status",
		"log_format":          "log format: text or json",
		"log_level":           "log level: debug, info, warn or error",
		"concurrency":         "models worked on at once",
		"resync":              "cron spec of the periodic resync",
		"reverify":            "cron spec of the full re-hash",
		"retired_retention":   "how long retired models stay in the catalog",
		"offline":             "serve only models already present; no network access",
		"allow_http":          "allow plain http:// model references",
		"download_parts":      "parallel ranged parts per download",
		"download_part_size":  "smallest part of a parallel download, in bytes",
		"stall_timeout":       "resume a download stream idle for this long",
		"free_space_headroom": "free bytes a download must leave on the state filesystem",
		"docker_config":       "registry credentials file for oci:// models",
		"insecure_registries": "registries reachable over plain HTTP, comma-separated",
		"s3_endpoint":         "S3 endpoint URL for s3:// models",
		"s3_region":           "S3 region",
		"s3_profile":          "profile of the shared AWS credentials file",
		"s3_path_style":       "S3 path-style addressing: true, false or empty (auto)",
	}
	for _, k := range keys {
		name := strings.ReplaceAll(k, "_", "-")
		cf.values[k] = fs.String(name, "", help[k]+" (config key "+k+"; env "+envPrefix+strings.ToUpper(k)+")")
	}
	return cf
}

// load reads the configuration with the flags that were set on top.
func (cf *configFlags) load() (Config, error) {
	path, explicit := cf.path, cf.path != ""
	if !explicit {
		if env := os.Getenv(envPrefix + "CONFIG"); env != "" {
			path, explicit = env, true
		} else {
			path = DefaultConfigPath
		}
	}
	overrides := map[string]any{}
	cf.fs.Visit(func(f *flag.Flag) {
		k := strings.ReplaceAll(f.Name, "-", "_")
		if v, ok := cf.values[k]; ok {
			overrides[k] = *v
		}
	})
	return loadConfig(path, explicit, overrides)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func exactArgs(pos []string, n int, what string) error {
	if len(pos) != n {
		return &usageError{msg: fmt.Sprintf("want %s, got %d arguments", what, len(pos))}
	}
	return nil
}
