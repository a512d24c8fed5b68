package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/fetch/download"
	filefetch "github.com/model-provisioner/model-provisioner/fetch/file"
	"github.com/model-provisioner/model-provisioner/fetch/hf"
	"github.com/model-provisioner/model-provisioner/fetch/https"
	"github.com/model-provisioner/model-provisioner/fetch/oci"
	"github.com/model-provisioner/model-provisioner/redact"
)

// buildSchemes are the reference schemes this build fetches; newFetchers
// registers exactly these.
var buildSchemes = []fetch.Scheme{fetch.SchemeFile, fetch.SchemeHTTPS, fetch.SchemeHTTP, fetch.SchemeHF, fetch.SchemeOCI}

// schemeRegistry answers "is this scheme supported" without building any
// fetcher, for validate.
func schemeRegistry() *fetch.Registry {
	r := fetch.NewRegistry()
	for _, s := range buildSchemes {
		r.Register(s, nil)
	}
	return r
}

// newFetchers builds and registers every fetcher of this build. Remote
// fetchers write into store. Secrets they load (the Hub token) are added to
// secrets so that the logger redacts them wherever they might surface.
func newFetchers(cfg Config, store *content.Store, secrets *redact.Secrets, log *slog.Logger) (*fetch.Registry, error) {
	r := fetch.NewRegistry()
	r.Register(fetch.SchemeFile, filefetch.New())

	dl := download.Options{
		Parts:    cfg.DownloadParts,
		PartSize: cfg.DownloadPartSize,
		Stall:    cfg.StallTimeout,
		Headroom: cfg.FreeSpaceHeadroom,
		Logger:   log,
	}
	ua := "model-provisioner/" + versionString()
	hc := https.ClientConfig{AllowHTTP: cfg.AllowHTTP}
	hf1, err := https.New(store, https.Config{Client: hc, Download: dl, Offline: cfg.Offline, UserAgent: ua})
	if err != nil {
		return nil, err
	}
	r.Register(fetch.SchemeHTTPS, hf1)
	r.Register(fetch.SchemeHTTP, hf1)

	token, from, err := hf.Token()
	if err != nil {
		return nil, err
	}
	if token != "" {
		secrets.Add(token)
		log.Debug("Hugging Face token loaded", "from", string(from))
	}
	hub, err := hf.New(store, hf.Config{Token: token, Client: https.ClientConfig{}, Download: dl, Offline: cfg.Offline, UserAgent: ua})
	if err != nil {
		return nil, err
	}
	r.Register(fetch.SchemeHF, hub)

	reg, err := oci.New(store, oci.Config{DockerConfig: cfg.DockerConfig, Insecure: cfg.InsecureRegistries, Download: dl, Offline: cfg.Offline, UserAgent: ua})
	if err != nil {
		return nil, err
	}
	r.Register(fetch.SchemeOCI, reg)
	return r, nil
}

// newLogger returns a slog logger writing text or JSON at level, through the
// redacting handler: no token, password or signed URL reaches a log line.
func newLogger(w io.Writer, format string, level slog.Leveler, secrets *redact.Secrets) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if strings.EqualFold(format, "json") {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(redact.NewHandler(h, secrets))
}

// parseLevelFlag parses a --log-level value.
func parseLevelFlag(level string) (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return 0, &usageError{msg: fmt.Sprintf("--log-level %q: want debug, info, warn or error", level)}
	}
	return lv, nil
}
