package handoff

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/model-provisioner/model-provisioner/atomicfile"
)

// LockFile is the hidden lock file that serializes the writers of a handoff
// directory.
const LockFile = ".model-provisioner.lock"

// SchemaVersion is the version of the handoff document this package
// writes, recorded in File.SchemaVersion. Documents without one predate
// versioning and hold only the seed's fields. schema.json describes the
// document.
const SchemaVersion = 1

// File is the handoff document. The fields model.id, model.path,
// metadata.size_bytes and metadata.ctx_max are the stable contract every
// engine integration relies on and are always present; the rest are
// additions an engine may ignore.
type File struct {
	// SchemaVersion is SchemaVersion for documents made by Build; zero
	// (omitted) in documents that predate versioning.
	SchemaVersion int `json:"schema_version,omitempty"`
	// Engine is the engine the document is shaped for: "llamacpp",
	// "vllm" or "generic".
	Engine   string   `json:"engine,omitempty"`
	Model    Model    `json:"model"`
	Metadata Metadata `json:"metadata"`
}

// Model says which model this is and where its bytes are.
type Model struct {
	// ID is the normalized model reference.
	ID string `json:"id"`
	// Path is the file (or directory) to load: for llama.cpp the GGUF
	// file (the first shard of a split model), for vLLM the model
	// directory or GGUF file, for generic the path as registered.
	Path string `json:"path"`
	// Name is the model's name from its spec.
	Name string `json:"name,omitempty"`
	// Tokenizer is a directory of Hugging Face tokenizer files to give
	// the engine (vLLM's --tokenizer) when it is not Path itself.
	Tokenizer string `json:"tokenizer,omitempty"`
}

// Metadata describes the model.
type Metadata struct {
	// SizeBytes is the size of the model on disk: the file, every shard
	// of a split model, or every file of a directory.
	SizeBytes int64 `json:"size_bytes"`
	// CtxMax is the trained context length from the GGUF header or
	// config.json, null when unknown.
	CtxMax *int64 `json:"ctx_max"`
	// Format is "gguf", "safetensors", "directory" or "unknown".
	Format string `json:"format,omitempty"`
	// Architecture is the GGUF general.architecture, or the first
	// config.json architecture, when known.
	Architecture string `json:"architecture,omitempty"`
	// Digest is "sha256:<hex>" of the file as verified, when it is one file.
	Digest string `json:"digest,omitempty"`
	// Verification is "pass" (matched the expected digest) or "warn" (no
	// digest was given, so nothing was proven).
	Verification string `json:"verification,omitempty"`
	// FileType is the quantization named by general.file_type, such as
	// "Q4_K_M".
	FileType string `json:"file_type,omitempty"`
	// FileTypeID is general.file_type as stored, when present.
	FileTypeID *int64 `json:"file_type_id,omitempty"`
	// ParameterCount is the number of weights, when known.
	ParameterCount uint64 `json:"parameter_count,omitempty"`
	// TensorCount is the number of tensors over all files, when known.
	TensorCount uint64 `json:"tensor_count,omitempty"`
	// TokenizerModel is the GGUF tokenizer.ggml.model, such as "gpt2".
	TokenizerModel string `json:"tokenizer_model,omitempty"`
	// ChatTemplate reports whether the model carries a chat template;
	// absent when the format does not say.
	ChatTemplate *bool `json:"chat_template,omitempty"`
	// GGUFVersion is the GGUF format version of a GGUF model.
	GGUFVersion uint32 `json:"gguf_version,omitempty"`
	// Shards lists the weights files in load order: the GGUF file or every
	// shard of a split GGUF, or the .safetensors files of a directory.
	Shards []Shard `json:"shards,omitempty"`
	// Memory estimates the memory the model needs.
	Memory *Memory `json:"memory,omitempty"`
}

// Shard is one weights file of a model.
type Shard struct {
	Path      string `json:"path"`
	SizeBytes int64  `json:"size_bytes"`
}

// Memory is an estimate of the memory an engine needs for the model:
// WeightsBytes + ctx × KVBytesPerToken for a context of ctx tokens, plus
// compute buffers. The modelinfo package documents the formula.
type Memory struct {
	WeightsBytes    int64  `json:"weights_bytes,omitempty"`
	KVBytesPerToken int64  `json:"kv_bytes_per_token,omitempty"`
	KVCacheType     string `json:"kv_cache_type,omitempty"`
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
	// The common case on a resync: the file already says this. Renames
	// are atomic, so a read without the lock sees a whole file, and equal
	// bytes need neither the lock nor a write. Unless this process has
	// not yet looked for killed writers' temp files here: after a crash,
	// the restarted agent may find every handoff already up to date, and
	// would otherwise never take the lock that makes removing them safe.
	dir := filepath.Dir(path)
	cur, err := os.ReadFile(path)
	if err == nil && bytes.Equal(cur, data) && !sweepDue(dir) {
		return false, nil
	}
	// Refused before anything (the lock file) is created beside it.
	if err := checkCurrent(path, cur, err); err != nil {
		return false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("handoff %s: create directory: %w", path, err)
	}
	// Writers of one handoff directory (the agent and one-shot ensures)
	// take turns. Holding the lock, no other writer is mid-write, so any
	// temp file in the directory is from a writer that was killed, and
	// can go.
	unlock, err := atomicfile.Lock(filepath.Join(dir, LockFile))
	if err != nil {
		return false, fmt.Errorf("handoff %s: %w", path, err)
	}
	defer unlock()
	sweepStale(dir)
	cur, err = os.ReadFile(path)
	if err == nil && bytes.Equal(cur, data) {
		return false, nil
	}
	if err := checkCurrent(path, cur, err); err != nil {
		return false, err
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return false, fmt.Errorf("handoff %s: %w", path, err)
	}
	return true, nil
}

// CheckPath returns an error wrapping ErrNotHandoff when something other
// than a handoff file (of any model) or an empty file is at path, which
// Write would refuse to replace.
func CheckPath(path string) error {
	cur, err := os.ReadFile(path)
	return checkCurrent(path, cur, err)
}

// checkCurrent judges what reading the file at path gave: nothing there,
// an empty file or a handoff may be replaced; anything else may not.
func checkCurrent(path string, cur []byte, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("handoff %s: %w", path, err)
	case len(bytes.TrimSpace(cur)) > 0 && !isHandoff(cur):
		return fmt.Errorf("handoff %s: %w; it was left alone: move it away, or give the model another handoff path", path, ErrNotHandoff)
	}
	return nil
}

// ErrNotHandoff: the file at a handoff path is something else, which is
// never overwritten or removed.
var ErrNotHandoff = errors.New("the file there is not a handoff file")

// isHandoff reports whether data is a handoff document (of any model).
func isHandoff(data []byte) bool {
	var probe struct {
		Model *struct {
			ID string `json:"id"`
		} `json:"model"`
	}
	return json.Unmarshal(data, &probe) == nil && probe.Model != nil && probe.Model.ID != ""
}

// sweepInterval is how often a process looks for killed writers' temp
// files in a handoff directory it writes to. Looking reads the whole
// directory, so doing it on every write would make a first pass over many
// models quadratic.
const sweepInterval = time.Minute

var lastSweep sync.Map // directory -> time.Time

// sweepStale removes killed writers' temp files from dir when this process
// has not looked for them in the last sweepInterval. The caller holds dir's
// lock.
func sweepStale(dir string) {
	if !sweepDue(dir) {
		return
	}
	_ = atomicfile.RemoveStaleIn(dir)
	lastSweep.Store(dir, time.Now())
}

// sweepDue reports whether this process has not looked for killed
// writers' temp files in dir in the last sweepInterval.
func sweepDue(dir string) bool {
	t, ok := lastSweep.Load(dir)
	return !ok || time.Since(t.(time.Time)) >= sweepInterval
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
