package handoff

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ProvenanceFile is the name of the provenance log written beside handoff
// files.
const ProvenanceFile = "provenance.jsonl"

// Record is one line of the provenance log: a change in what a model's
// handoff says or in how it was verified.
type Record struct {
	Time         time.Time `json:"time"`
	Event        string    `json:"event"`
	ModelID      string    `json:"model_id"`
	Name         string    `json:"name,omitempty"`
	Path         string    `json:"path,omitempty"`
	SizeBytes    int64     `json:"size_bytes"`
	Digest       string    `json:"digest,omitempty"`
	Verification string    `json:"verification,omitempty"`
	Reason       string    `json:"reason,omitempty"`
}

// Provenance events.
const (
	EventActive  = "active"
	EventFailed  = "failed"
	EventRetired = "retired"
)

// AppendProvenance appends rec as one JSON line to the provenance log in dir.
//
// The line is written with a single write on an O_APPEND descriptor, which
// the kernel positions atomically, so lines from concurrent processes never
// interleave. It is fsynced because provenance is an audit trail: a record of
// what was handed to an engine must not vanish in a crash that kept the
// handoff itself.
func AppendProvenance(dir string, rec Record) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("provenance: encode: %w", err)
	}
	line = append(line, '\n')
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("provenance: %w", err)
	}
	p := filepath.Join(dir, ProvenanceFile)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("provenance: %w", err)
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return fmt.Errorf("provenance %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("provenance %s: fsync: %w", p, err)
	}
	return f.Close()
}
