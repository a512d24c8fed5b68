package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/model-provisioner/model-provisioner/reconcile"
)

// statusCommand prints the running agent's /status.
type statusCommand struct {
	stdout, stderr io.Writer
}

func (c *statusCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	cf := bindConfig(fs, "listen")
	asJSON := fs.Bool("json", false, "print the raw JSON")
	pos, err := parseFlags(fs, args, c.stderr)
	if err != nil {
		return err
	}
	if err := exactArgs(pos, 0, "no arguments"); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if cfg.Listen == "" {
		return fmt.Errorf("listen is empty in the configuration: the agent serves no status")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+cfg.Listen+"/status", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("read status from the agent at %s: %w; is \"model-provisioner run\" running with this listen address?", cfg.Listen, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("agent at %s answered %s: %s", cfg.Listen, resp.Status, strings.TrimSpace(string(body)))
	}
	if *asJSON {
		_, err := c.stdout.Write(body)
		return err
	}
	var rep reconcile.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return fmt.Errorf("agent at %s sent a status this build cannot read: %w", cfg.Listen, err)
	}
	return printReport(c.stdout, rep)
}

func printReport(w io.Writer, rep reconcile.Report) error {
	ready := "no (first pass running)"
	if rep.Ready {
		ready = "yes"
	}
	fmt.Fprintf(w, "ready: %s   models dir: %s", ready, rep.ModelsDir)
	if !rep.LastResync.IsZero() {
		fmt.Fprintf(w, "   last good resync: %s", rep.LastResync.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPHASE\tVERIFY\tSIZE\tATTEMPTS\tSINCE\tREASON\tLAST ERROR")
	for _, m := range rep.Models {
		reason := m.Reason
		if m.SpecError != "" {
			reason = "spec file error, last good version in force: " + m.SpecError
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", m.Name, m.Phase, dash(m.Verification), progressText(m), m.Attempts,
			m.LastTransition.Format(time.RFC3339), dash(reason), dash(m.LastError))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range rep.SpecErrors {
		fmt.Fprintf(w, "spec error: %s\n", e.Error)
	}
	return nil
}

// progressText is the size of a present model, or the progress of one
// being downloaded.
func progressText(m reconcile.ModelStatus) string {
	switch {
	case m.Phase == reconcile.PhaseFetching && m.BytesTotal > 0:
		return fmt.Sprintf("%.0f%% of %s, %s/s", 100*float64(m.BytesDone)/float64(m.BytesTotal), humanBytes(m.BytesTotal), humanBytes(int64(m.RateBytesPerSec)))
	case m.Phase == reconcile.PhaseFetching:
		return humanBytes(m.BytesDone)
	case m.BytesTotal > 0:
		return humanBytes(m.BytesTotal)
	}
	return "-"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
