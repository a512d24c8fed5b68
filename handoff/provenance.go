package handoff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/model-provisioner/model-provisioner/atomicfile"
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
// Appenders of one directory (the agent and one-shot ensures) take turns
// under the directory's lock, so lines never interleave. A single write is
// not atomic against SIGKILL: the kernel copies it into the page cache one
// page at a time and stops at a page boundary when the writer is killed, so
// a killed appender can leave the first part of its line without the
// newline. A line counts only once its newline is written; holding the
// lock, the next appender cuts such a tail away before it writes, so that
// its own line is not glued onto the fragment. The line is fsynced because
// provenance is an audit trail: a record of what was handed to an engine
// must not vanish in a crash that kept the handoff itself.
func AppendProvenance(dir string, rec Record) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("provenance: encode: %w", err)
	}
	line = append(line, '\n')
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("provenance: %w", err)
	}
	unlock, err := atomicfile.Lock(filepath.Join(dir, LockFile))
	if err != nil {
		return fmt.Errorf("provenance: %w", err)
	}
	defer unlock()
	p := filepath.Join(dir, ProvenanceFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("provenance: %w", err)
	}
	if err := dropTornTail(f); err != nil {
		f.Close()
		return fmt.Errorf("provenance %s: %w", p, err)
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

// dropTornTail truncates f just after its last newline, removing the part
// of a line whose writer was killed before it finished.
func dropTornTail(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	end := fi.Size()
	buf := make([]byte, 4096)
	for end > 0 {
		start := max(0, end-int64(len(buf)))
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil {
			return err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			end = start + int64(i) + 1
			break
		}
		end = start
	}
	if end == fi.Size() {
		return nil
	}
	return f.Truncate(end)
}
