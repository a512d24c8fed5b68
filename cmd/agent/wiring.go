package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/model-provisioner/model-provisioner/catalog"
	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/fetch/download"
	filefetch "github.com/model-provisioner/model-provisioner/fetch/file"
	"github.com/model-provisioner/model-provisioner/fetch/hf"
	"github.com/model-provisioner/model-provisioner/fetch/https"
	"github.com/model-provisioner/model-provisioner/fetch/oci"
	"github.com/model-provisioner/model-provisioner/fetch/s3"
	"github.com/model-provisioner/model-provisioner/redact"
)

// openCatalog opens the catalog in stateDir. An index that does not parse
// is moved aside and the catalog starts empty: every model is then hashed
// and registered again by its next ensure, and nothing is handed out from
// the broken file.
func openCatalog(stateDir string, log *slog.Logger) (*catalog.Store, error) {
	cat, err := catalog.Open(stateDir)
	if !errors.Is(err, catalog.ErrCorruptIndex) {
		return cat, err
	}
	aside, serr := catalog.Salvage(stateDir)
	if serr != nil {
		return nil, errors.Join(err, serr)
	}
	log.Error("catalog index was corrupt; moved it aside and started an empty catalog: every model is verified again", "moved_to", aside, "err", err)
	return catalog.Open(stateDir)
}

// buildSchemes are the reference schemes this build fetches; newFetchers
// registers exactly these.
var buildSchemes = []fetch.Scheme{fetch.SchemeFile, fetch.SchemeHTTPS, fetch.SchemeHTTP, fetch.SchemeHF, fetch.SchemeS3, fetch.SchemeOCI}

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

	// A scheme whose set-up fails (an unreadable token file, a broken
	// AWS_CA_BUNDLE) fails its own models with the reason; it never stops
	// the agent or the models of other schemes.
	token, from, err := hf.Token()
	if err != nil {
		register(r, log, fetch.SchemeHF, nil, err)
	} else {
		if token != "" {
			secrets.Add(token)
			log.Debug("Hugging Face token loaded", "from", string(from))
		}
		hub, err := hf.New(store, hf.Config{Token: token, Client: https.ClientConfig{}, Download: dl, Offline: cfg.Offline, UserAgent: ua})
		register(r, log, fetch.SchemeHF, hub, err)
	}

	reg, err := oci.New(store, oci.Config{DockerConfig: cfg.DockerConfig, Insecure: cfg.InsecureRegistries, Download: dl, Offline: cfg.Offline, UserAgent: ua})
	register(r, log, fetch.SchemeOCI, reg, err)

	sc := s3.ConfigFromEnv()
	if cfg.S3Endpoint != "" {
		sc.Endpoint = cfg.S3Endpoint
	}
	if cfg.S3Region != "" {
		sc.Region = cfg.S3Region
	}
	if cfg.S3Profile != "" {
		sc.Profile = cfg.S3Profile
	}
	if cfg.S3PathStyle != "" {
		ps := strings.EqualFold(cfg.S3PathStyle, "true")
		sc.PathStyle = &ps
	}
	sc.Download, sc.Offline, sc.UserAgent = dl, cfg.Offline, ua
	bucket, err := s3.New(store, sc)
	if err == nil {
		log.Debug("s3 credentials", "source", bucket.CredentialSource())
	}
	register(r, log, fetch.SchemeS3, bucket, err)
	return r, nil
}

// register adds f for scheme, or, when its set-up failed, a fetcher that
// reports that failure for every model of the scheme.
func register(r *fetch.Registry, log *slog.Logger, scheme fetch.Scheme, f fetch.Fetcher, err error) {
	if err != nil {
		log.Warn("fetcher unavailable: its models will fail until this is fixed", "scheme", string(scheme), "err", err.Error())
		f = unavailable{scheme: scheme, err: err}
	}
	r.Register(scheme, f)
}

// unavailable is the fetcher of a scheme whose set-up failed.
type unavailable struct {
	scheme fetch.Scheme
	err    error
}

func (u unavailable) Fetch(context.Context, fetch.Request) (fetch.Result, error) {
	return fetch.Result{}, fetch.Permanent(fmt.Errorf("%s models cannot be fetched: %w", u.scheme, u.err))
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
