package modelinfo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Formats reported in Info.Format.
const (
	// FormatGGUF is a GGUF file or a split GGUF set.
	FormatGGUF = "gguf"
	// FormatSafetensors is a Transformers-style directory with
	// .safetensors weights.
	FormatSafetensors = "safetensors"
	// FormatDirectory is any other directory.
	FormatDirectory = "directory"
	// FormatUnknown is a file in no format this package reads.
	FormatUnknown = "unknown"
)

// Sentinel errors. Each means the model as found on disk is not complete or
// not what its name says, so an engine would fail to load it: callers must
// not hand it to an engine.
var (
	// ErrMissingShard: a shard of a split GGUF set, or a weights file
	// named by a safetensors index or shard name, is absent.
	ErrMissingShard = errors.New("model shard missing")
	// ErrNotFirstShard: the path names a shard of a split GGUF other than
	// the first, which is the one engines are given.
	ErrNotFirstShard = errors.New("not the first shard of a split GGUF")
	// ErrShardMismatch: the shards of a split GGUF disagree with their
	// names or with each other, as when shards of two sets are mixed.
	ErrShardMismatch = errors.New("split GGUF shards do not belong together")
	// ErrTruncated: a GGUF file is shorter than its header says its tensor
	// data is, as after an interrupted copy.
	ErrTruncated = errors.New("model file truncated")
)

// Info describes a model as found on disk. It is a plain value, safe to copy
// and to store as JSON.
type Info struct {
	// Format is FormatGGUF, FormatSafetensors, FormatDirectory or
	// FormatUnknown.
	Format string `json:"format"`
	// Path is what an engine loads: the GGUF file (the first shard of a
	// split set, also when the inspected path was a directory holding
	// it), or the directory of a directory model; for FormatUnknown, the
	// inspected file. Always absolute.
	Path string `json:"path"`
	// Architecture is general.architecture for GGUF, and the first of
	// "architectures" (else "model_type") in config.json for a directory.
	Architecture string `json:"architecture,omitempty"`
	// CtxMax is the trained context length: <arch>.context_length for
	// GGUF, max_position_embeddings (or an equivalent) in config.json for
	// a directory; 0 when unknown.
	CtxMax int64 `json:"ctx_max,omitempty"`
	// FileType is the llama.cpp name of general.file_type, such as
	// "Q4_K_M"; "" when absent or not a known id.
	FileType string `json:"file_type,omitempty"`
	// FileTypeID is general.file_type, or -1 when the model has none.
	FileTypeID int64 `json:"file_type_id"`
	// ParameterCount is the number of weights: the elements of every
	// tensor of a GGUF model, or metadata.total_parameters of a
	// safetensors index; 0 when unknown.
	ParameterCount uint64 `json:"parameter_count,omitempty"`
	// TensorCount is the number of tensors over all shards (GGUF), or the
	// number of entries in a safetensors index.
	TensorCount uint64 `json:"tensor_count,omitempty"`
	// TokenizerModel is tokenizer.ggml.model of a GGUF model, such as
	// "llama" or "gpt2".
	TokenizerModel string `json:"tokenizer_model,omitempty"`
	// ChatTemplate reports whether the model carries a chat template:
	// tokenizer.chat_template in GGUF; chat_template.jinja,
	// chat_template.json or a chat_template in tokenizer_config.json in a
	// directory.
	ChatTemplate bool `json:"chat_template,omitempty"`
	// GGUFVersion is the GGUF format version (2 or 3); 0 for other
	// formats.
	GGUFVersion uint32 `json:"gguf_version,omitempty"`
	// Shards lists the weights files in load order: the GGUF file or every
	// shard of a split set, or the .safetensors files of a directory.
	Shards []Shard `json:"shards,omitempty"`
	// Tokenizer is a directory with Hugging Face tokenizer files
	// (tokenizer.json, tokenizer_config.json or tokenizer.model): the
	// model directory itself, or for a GGUF model the directory it lies
	// in when that has them. "" when there is none.
	Tokenizer string `json:"tokenizer,omitempty"`
	// Memory estimates the memory the model needs; nil when nothing could
	// be estimated. See the package documentation for the formula.
	Memory *MemoryHint `json:"memory,omitempty"`
	// SizeBytes is the size of the model on disk: every shard of a GGUF
	// model, every file of a directory model, or the inspected file.
	SizeBytes int64 `json:"size_bytes"`
}

// Shard is one weights file of a model.
type Shard struct {
	// Path is the absolute path of the file.
	Path string `json:"path"`
	// SizeBytes is the file's size.
	SizeBytes int64 `json:"size_bytes"`
}

// MemoryHint is an estimate of the memory an engine needs for a model, for a
// launcher choosing a context size that fits a GPU:
//
//	memory(ctx) ≈ WeightsBytes + ctx × KVBytesPerToken
//
// plus the engine's compute buffers, which are not estimated.
type MemoryHint struct {
	// WeightsBytes is the memory the weights take once loaded; 0 when
	// unknown.
	WeightsBytes int64 `json:"weights_bytes,omitempty"`
	// KVBytesPerToken is the KV-cache memory per token of context; 0 when
	// the model's metadata does not give the attention shape.
	KVBytesPerToken int64 `json:"kv_bytes_per_token,omitempty"`
	// KVCacheType is the cache element type KVBytesPerToken assumes:
	// "f16" for GGUF models (llama.cpp's default), the model's dtype
	// ("bf16", "f16", "f32") for safetensors models (vLLM's "auto").
	KVCacheType string `json:"kv_cache_type,omitempty"`
}

// Inspect describes the model at path, a file or a directory, reading only
// headers and small metadata files: a multi-gigabyte GGUF costs a few
// kilobytes of reads (the header, vocabulary included) and a directory one
// walk of its entries plus config.json and the safetensors index.
//
//   - A GGUF file is described from its header. A file named like
//     NAME-00001-of-00003.gguf is the first shard of a split set: every
//     shard must be present beside it, and the header of each is read.
//   - A directory with config.json or .safetensors files is a Transformers
//     model directory: config.json gives architecture and context length,
//     and every file named by model.safetensors.index.json (or by
//     -NNNNN-of-NNNNN shard names) must be present.
//   - Any other directory holding one GGUF model (one file, or one split
//     set; mmproj projector files aside) is that GGUF model.
//   - Other files are FormatUnknown and other directories FormatDirectory,
//     without error.
//
// An error means the model cannot be used as it is: a missing or mixed-up
// shard (ErrMissingShard, ErrNotFirstShard, ErrShardMismatch), a truncated
// GGUF (ErrTruncated), a malformed GGUF header (a *gguf.FormatError), an
// unreadable or malformed config.json or index, or an I/O error. The Info
// returned with an error holds what was learned before it, at least Format
// and Path once the path could be read.
//
// Memory use is bounded whatever the files hold (see the gguf package's
// limits, MaxJSONBytes and MaxDirEntries). Inspect is safe for concurrent
// use; it honors ctx between file operations.
func Inspect(ctx context.Context, path string) (Info, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Info{}, fmt.Errorf("inspect %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return Info{}, fmt.Errorf("inspect %s: %w", abs, err)
	}
	var info Info
	switch {
	case fi.IsDir():
		info, err = inspectDir(ctx, abs)
	case fi.Mode().IsRegular():
		info, err = inspectFile(ctx, abs, fi.Size())
	default:
		return Info{}, fmt.Errorf("inspect %s: a %s is not a model file or directory", abs, fi.Mode().Type())
	}
	if err != nil {
		return info, fmt.Errorf("inspect %s: %w", abs, err)
	}
	return info, nil
}

// Engine selects the form of the handoff file written for a model.
type Engine string

// Engines.
const (
	// EngineLlamaCPP: llama.cpp loads a GGUF file (the first shard of a
	// split set).
	EngineLlamaCPP Engine = "llamacpp"
	// EngineVLLM: vLLM loads a model directory (or a GGUF file) and may
	// need a separate tokenizer.
	EngineVLLM Engine = "vllm"
	// EngineGeneric: the path as registered, with every known fact.
	EngineGeneric Engine = "generic"
)

// ParseEngine parses an engine name from a spec. An empty name returns ""
// with no error: the engine is then chosen from the model's format (see
// DefaultEngine).
func ParseEngine(s string) (Engine, error) {
	switch e := Engine(s); e {
	case "", EngineLlamaCPP, EngineVLLM, EngineGeneric:
		return e, nil
	}
	return "", fmt.Errorf("unknown engine %q: want llamacpp, vllm or generic", s)
}

// DefaultEngine is the engine used when a spec names none: llama.cpp for
// GGUF, vLLM for safetensors, generic for anything else.
func DefaultEngine(info Info) Engine {
	switch info.Format {
	case FormatGGUF:
		return EngineLlamaCPP
	case FormatSafetensors:
		return EngineVLLM
	}
	return EngineGeneric
}
