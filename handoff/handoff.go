package handoff

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/model-provisioner/model-provisioner/atomicfile"
)

// LockFile is the hidden lock file that serializes the writers of a handoff
// directory.
const LockFile = ".model-provisioner.lock"

// File is the handoff document. The fields model.id, model.path,
// metadata.size_bytes and metadata.ctx_max are the stable contract every
// engine integration relies on; the rest are additions an engine may ignore.
type File struct {
	Model    Model    `json:"model"`
	Metadata Metadata `json:"metadata"`
}

// Model says which model this is and where its bytes are.
type Model struct {
	// ID is the normalized model reference.
	ID string `json:"id"`
	// Path is the file (or directory) to load.
	Path string `json:"path"`
	// Name is the model's name from its spec.
	Name string `json:"name,omitempty"`
}

// Metadata describes the model.
type Metadata struct {
	// SizeBytes is the size of the file, or of all files of a directory.
	SizeBytes int64 `json:"size_bytes"`
	// CtxMax is the trained context length from the GGUF header, null when
	// the model is not GGUF or does not say.
	CtxMax *int64 `json:"ctx_max"`
	// Format is "gguf", "directory" or "unknown".
	Format string `json:"format,omitempty"`
	// Architecture is the GGUF general.architecture, when known.
	Architecture string `json:"architecture,omitempty"`
	// Digest is "sha256:<hex>" of the file as verified, when it is one file.
	Digest string `json:"digest,omitempty"`
	// Verification is "pass" (matched the expected digest) or "warn" (no
	// digest was given, so nothing was proven).
	Verification string `json:"verification,omitempty"`
}

// Encode returns the canonical bytes of f: indented JSON and a final newline.
func Encode(f File) ([]byte, error) {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// Write writes f to path atomically, creating the directory if needed, and
// only when the file does not already hold exactly these bytes. It reports
// whether the file changed.
func Write(path string, f File) (bool, error) {
	data, err := Encode(f)
	if err != nil {
		return false, fmt.Errorf("handoff %s: encode: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, fmt.Errorf("handoff %s: create directory: %w", path, err)
	}
	// Writers of one handoff directory (the agent and one-shot ensures)
	// take turns. Holding the lock, no other writer is mid-write, so any
	// temp file left for this path is from a writer that was killed, and
	// can go.
	unlock, err := atomicfile.Lock(filepath.Join(filepath.Dir(path), LockFile))
	if err != nil {
		return false, fmt.Errorf("handoff %s: %w", path, err)
	}
	defer unlock()
	_ = atomicfile.RemoveStale(path)
	changed, err := atomicfile.WriteIfChanged(path, data, 0o644)
	if err != nil {
		return false, fmt.Errorf("handoff %s: %w", path, err)
	}
	return changed, nil
}

// Read parses the handoff file at path.
func Read(path string) (File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return File{}, err
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return File{}, fmt.Errorf("handoff %s: %w", path, err)
	}
	return f, nil
}

// Remove deletes the handoff file at path and makes the removal durable. A
// file that is already gone is not an error. It reports whether a file was
// removed.
func Remove(path string) (bool, error) {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove handoff %s: %w", path, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
		return true, fmt.Errorf("remove handoff %s: %w", path, err)
	}
	return true, nil
}
