package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/model-provisioner/model-provisioner/catalog"
	"github.com/model-provisioner/model-provisioner/fetch"
)

// catalogCommand reads the catalog: "catalog list" and "catalog show".
// It never writes.
type catalogCommand struct {
	stdout, stderr io.Writer
}

func (c *catalogCommand) Run(_ context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "show") {
		return &usageError{msg: "want \"catalog list\" or \"catalog show <id|name>\""}
	}
	fs := flag.NewFlagSet("catalog "+args[0], flag.ContinueOnError)
	cf := bindConfig(fs, "state_dir", "handoff_dir")
	asJSON := fs.Bool("json", false, "print JSON (list only; show always prints JSON)")
	pos, err := parseFlags(fs, args[1:], c.stderr)
	if err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	cat, err := catalog.Open(cfg.StateDir)
	if err != nil {
		return err
	}
	entries, err := cat.List()
	if err != nil {
		return err
	}
	if args[0] == "list" {
		if err := exactArgs(pos, 0, "no arguments"); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c.stdout, entries)
		}
		return printEntries(c.stdout, entries)
	}
	if err := exactArgs(pos, 1, "one <id|name>"); err != nil {
		return err
	}
	e, err := findEntry(entries, pos[0])
	if err != nil {
		return err
	}
	return writeJSON(c.stdout, e)
}

// findEntry finds an entry by id, by reference written any way that
// normalizes to its id, or by name.
func findEntry(entries []catalog.Entry, q string) (catalog.Entry, error) {
	ids := []string{q}
	if wd, err := os.Getwd(); err == nil {
		if ref, err := fetch.ParseRef(q, wd); err == nil {
			ids = append(ids, ref.ID())
		}
	}
	var byName []catalog.Entry
	for _, e := range entries {
		for _, id := range ids {
			if e.ID == id {
				return e, nil
			}
		}
		if e.Name == q {
			byName = append(byName, e)
		}
	}
	switch len(byName) {
	case 1:
		return byName[0], nil
	case 0:
		return catalog.Entry{}, fmt.Errorf("%w: no model with id or name %q; see \"model-provisioner catalog list\"", catalog.ErrNotFound, q)
	}
	return catalog.Entry{}, errors.New("several models are named " + q + "; give the id")
}

func printEntries(w io.Writer, entries []catalog.Entry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLIFECYCLE\tVERIFY\tSIZE\tID\tPATH")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Lifecycle, e.Verification.Result, humanBytes(e.SizeBytes), e.ID, e.LocalPath)
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
