package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/model-provisioner/model-provisioner/fetch"
	filefetch "github.com/model-provisioner/model-provisioner/fetch/file"
)

// newFetchers registers every fetcher this build has. Schemes missing here
// are reported as "not supported yet" when a model uses them.
func newFetchers() *fetch.Registry {
	r := fetch.NewRegistry()
	r.Register(fetch.SchemeFile, filefetch.New())
	return r
}

// newLogger returns a slog logger writing text or JSON at the given level.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, &usageError{msg: fmt.Sprintf("--log-level %q: want debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, &usageError{msg: fmt.Sprintf("--log-format %q: want text or json", format)}
}
