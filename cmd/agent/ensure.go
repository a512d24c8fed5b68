package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/modelinfo"
	"github.com/model-provisioner/model-provisioner/reconcile"
	"github.com/model-provisioner/model-provisioner/redact"
	"github.com/model-provisioner/model-provisioner/verify"
)

// ensureCommand makes one model present and verified: the call an engine
// launcher makes before starting an engine.
type ensureCommand struct {
	stdout, stderr io.Writer
	secrets        *redact.Secrets
}

func (c *ensureCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ensure", flag.ContinueOnError)
	cf := bindConfig(fs, "state_dir", "handoff_dir")
	digest := fs.String("digest", "", "expected digest, sha256:HEX (either case)")
	strict := fs.Bool("strict", false, "require verification; without --digest this warns and records the outcome as warn")
	handoffPath := fs.String("handoff", "", "write the handoff file here instead of <handoff-dir>/<name>.json")
	name := fs.String("name", "", "model name (default: the file name without extension)")
	reverify := fs.Bool("reverify", false, "hash the bytes even if they are unchanged since the last verification")
	engine := fs.String("engine", "", "handoff form: llamacpp, vllm or generic (default: from the model's format)")
	logFormat := fs.String("log-format", "text", "log format on stderr: text or json")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn or error")
	fs.Usage = func() {
		io.WriteString(fs.Output(), "Usage: model-provisioner ensure <model_ref> [flags]\n\n"+
			"Makes the model present and verified, registers it in the catalog, writes its\n"+
			"handoff file and prints the resolved model as JSON on stdout. Relative paths\n"+
			"resolve against the working directory.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args, c.stderr)
	if err != nil {
		return err
	}
	if err := exactArgs(pos, 1, "one <model_ref>"); err != nil {
		return err
	}
	lv, err := parseLevelFlag(*logLevel)
	if err != nil {
		return err
	}
	if f := strings.ToLower(*logFormat); f != "text" && f != "json" {
		return &usageError{msg: fmt.Sprintf("--log-format %q: want text or json", *logFormat)}
	}
	log := newLogger(c.stderr, *logFormat, lv, c.secrets)
	spec := reconcile.Spec{Name: *name, Strict: *strict, Reverify: *reverify}
	if *digest != "" {
		if spec.Expected, err = verify.ParseDigest(*digest); err != nil {
			return &usageError{msg: "--digest: " + err.Error()}
		}
	}
	if spec.Engine, err = modelinfo.ParseEngine(*engine); err != nil {
		return &usageError{msg: "--engine: " + err.Error()}
	}
	if *name != "" && reconcile.SanitizeName(*name) != *name {
		return &usageError{msg: "--name: use letters, digits, '.', '_' and '-', not starting with '.' or '-'"}
	}
	if *handoffPath != "" {
		if spec.HandoffPath, err = filepath.Abs(*handoffPath); err != nil {
			return err
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if spec.Ref, err = fetch.ParseRef(pos[0], wd); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	cat, err := openCatalog(cfg.StateDir, log)
	if err != nil {
		return err
	}
	store, err := content.Open(cfg.StateDir)
	if err != nil {
		return err
	}
	defer store.Close()
	fetchers, err := newFetchers(cfg, store, c.secrets, log)
	if err != nil {
		return err
	}
	p, err := reconcile.NewProvisioner(reconcile.ProvisionerConfig{
		Catalog: cat, Fetchers: fetchers, HandoffDir: cfg.Handoff(), Logger: log,
	})
	if err != nil {
		return err
	}
	bar := newProgressBar(c.stderr, spec.Ref.ID())
	spec.Progress = bar.update
	m, err := p.Ensure(ctx, spec)
	bar.finish(err == nil)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}
