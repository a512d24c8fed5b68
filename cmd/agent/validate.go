package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/model-provisioner/model-provisioner/desired"
	"github.com/model-provisioner/model-provisioner/fetch"
)

// validateCommand checks spec files without touching the catalog, the
// network or any model: the check a config-management tool runs before it
// installs a file ("validate: model-provisioner validate %s").
type validateCommand struct {
	stdout, stderr io.Writer
}

func (c *validateCommand) Run(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	quiet := fs.Bool("q", false, "print only errors")
	fs.Usage = func() {
		io.WriteString(fs.Output(), "Usage: model-provisioner validate <file|dir>...\n\n"+
			"Checks model spec files. A directory is read as models.d is (same ignore\n"+
			"rules, duplicate names across files reported). A single file is checked\n"+
			"whatever its extension, so temporary copies can be validated.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args, c.stderr)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return &usageError{msg: "want at least one <file|dir>"}
	}
	fetchers := schemeRegistry()
	failed := 0
	for _, p := range pos {
		models, errs := validatePath(p)
		for _, m := range models {
			if err := checkRef(m, fetchers); err != nil {
				errs = append(errs, err)
			}
		}
		for _, err := range errs {
			fmt.Fprintln(c.stderr, oneLine(err.Error()))
		}
		failed += len(errs)
		if !*quiet && len(errs) == 0 {
			fmt.Fprintf(c.stdout, "%s: ok (%d model%s)\n", p, len(models), plural(len(models)))
		}
	}
	if failed > 0 {
		fmt.Fprintf(c.stderr, "%d error%s\n", failed, plural(failed))
		return errReported
	}
	return nil
}

func validatePath(p string) ([]desired.Model, []error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", p, err)}
	}
	if !fi.IsDir() {
		m, err := desired.ParseFile(p)
		if err != nil {
			return nil, []error{err}
		}
		return []desired.Model{m}, nil
	}
	res, err := desired.ReadDir(p)
	if err != nil {
		return nil, []error{err}
	}
	return res.Models, res.Errors
}

// checkRef parses the model's reference the way the agent will and checks
// that this build can fetch it. It does not check that the model exists:
// validation runs where the model may not be yet.
func checkRef(m desired.Model, fetchers *fetch.Registry) error {
	ref, err := fetch.ParseRef(m.Ref, m.BaseDir)
	if err == nil {
		_, err = fetchers.Lookup(ref.Scheme)
	}
	if err != nil {
		var se *desired.SpecError
		if errors.As(err, &se) {
			return err
		}
		return &desired.SpecError{File: m.File, Field: "model_ref", Err: err}
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
