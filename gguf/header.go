package gguf

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
)

// Limits applied to every header. A header that exceeds a limit is rejected
// with a *FormatError, except where a limit only decides what is kept.
const (
	// MaxKeyLen is the longest metadata key or tensor name accepted, in bytes.
	MaxKeyLen = 64 << 10
	// MaxStringLen is the longest string value accepted, in bytes. Longer
	// declared lengths are treated as corruption.
	MaxStringLen = 64 << 20
	// MaxKeptStringLen is the longest string value kept in memory. Longer
	// strings (chat templates, for example) are skipped; only their length
	// is recorded.
	MaxKeptStringLen = 1 << 20
	// MaxKVCount is the largest metadata count accepted.
	MaxKVCount = 1 << 16
	// MaxArrayElems is the largest array whose elements are kept. Longer
	// arrays, such as a tokenizer's token list, are skipped without
	// allocating; only their element type and length are recorded.
	MaxArrayElems = 64
	// MaxArrayDepth is the deepest nesting of arrays accepted: an array of
	// arrays is depth 2.
	MaxArrayDepth = 2
	// MaxHeaderBytes is the most bytes read from the input for one header,
	// skipped values included. A header that needs more is rejected.
	MaxHeaderBytes = 256 << 20
	// MaxRetainedBytes caps the memory, approximately, that one Header holds
	// for keys, kept values and tensor infos. Once it is spent, further
	// strings and arrays are not kept, and further keys or tensor infos make
	// the header fail.
	MaxRetainedBytes = 64 << 20
	// MaxTensorCount is the largest tensor count accepted.
	MaxTensorCount = 1 << 20
	// MaxTensorDims is the largest number of dimensions accepted for a
	// tensor.
	MaxTensorDims = 8
	// DefaultAlignment is the alignment of the tensor data section when the
	// header has no general.alignment key.
	DefaultAlignment = 32
)

// readBufferSize bounds the read-ahead past the end of the header.
const readBufferSize = 64 << 10

// Magic is the four bytes every GGUF file starts with.
const Magic = "GGUF"

// Well-known metadata keys.
const (
	KeyArchitecture = "general.architecture"
	KeyAlignment    = "general.alignment"
	KeyName         = "general.name"
	KeyFileType     = "general.file_type"

	// KeyTokenizerModel names the tokenizer family, such as "llama"
	// (SentencePiece) or "gpt2" (byte-level BPE).
	KeyTokenizerModel = "tokenizer.ggml.model"
	// KeyChatTemplate holds the model's default chat template (Jinja).
	KeyChatTemplate = "tokenizer.chat_template"

	// KeySplitNo is the zero-based index of this file in a split model.
	KeySplitNo = "split.no"
	// KeySplitCount is the number of files a split model has.
	KeySplitCount = "split.count"
	// KeySplitTensorsCount is the number of tensors over all files of a
	// split model.
	KeySplitTensorsCount = "split.tensors.count"
)

// ErrNotGGUF is returned, possibly wrapped, when the input does not start
// with the GGUF magic. Callers should treat it as "this file has no GGUF
// metadata", not as a damaged model.
var ErrNotGGUF = errors.New("gguf: not a GGUF file")

// ErrUnsupportedVersion is wrapped by the *FormatError returned for a GGUF
// version other than 2 or 3.
var ErrUnsupportedVersion = errors.New("unsupported GGUF version")

// FormatError reports a malformed or truncated GGUF header.
type FormatError struct {
	// Offset is the byte offset in the input where the problem was found;
	// for a truncated header it is the length of the input.
	Offset int64
	// Reason says what is wrong, naming the key or tensor involved.
	Reason string
	// Err is an underlying cause such as io.ErrUnexpectedEOF or
	// ErrUnsupportedVersion; it may be nil.
	Err error
}

// Error implements error.
func (e *FormatError) Error() string {
	msg := fmt.Sprintf("gguf: offset %d: %s", e.Offset, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying cause, if any.
func (e *FormatError) Unwrap() error { return e.Err }

// KV is one metadata key/value pair.
type KV struct {
	// Key is the metadata key, such as "general.architecture".
	Key string
	// Value is the decoded value.
	Value Value
}

// TensorInfo describes one tensor as recorded in the header.
type TensorInfo struct {
	// Name is the tensor name, such as "token_embd.weight".
	Name string
	// Dims holds the size of each dimension, innermost first.
	Dims []uint64
	// Type is the ggml element type (0 F32, 1 F16, 8 Q8_0, 12 Q4_K, ...).
	// Types unknown to this package are accepted as they are.
	Type uint32
	// Offset is the tensor's data offset relative to the data section.
	Offset uint64
}

// Elements returns the number of elements in the tensor, the product of its
// dimensions. It reports false when the product overflows a uint64.
func (t TensorInfo) Elements() (uint64, bool) {
	n := uint64(1)
	for _, d := range t.Dims {
		hi, lo := bits.Mul64(n, d)
		if hi != 0 {
			return 0, false
		}
		n = lo
	}
	return n, true
}

// Header is the decoded header of a GGUF file. A Header is not modified
// after Read returns it and is safe for concurrent use by readers.
type Header struct {
	// Version is the GGUF format version, 2 or 3.
	Version uint32
	// TensorCount is the tensor count declared by the header.
	TensorCount uint64
	// KVs holds the metadata pairs in file order.
	KVs []KV
	// Tensors holds the tensor infos in file order when they were requested
	// with Options.TensorInfos; nil otherwise.
	Tensors []TensorInfo
	// Size is the number of bytes of the input that were decoded: the end
	// of the metadata section, or of the tensor infos when they were read.
	Size int64

	index       map[string]int
	tensorInfos bool // Tensors holds every tensor info
}

// Options selects what Read decodes beyond the metadata.
type Options struct {
	// TensorInfos makes Read decode the tensor infos that follow the
	// metadata, filling Header.Tensors. The header is then rejected if
	// that section is malformed or truncated.
	TensorInfos bool
}

// Read decodes a GGUF header from r: magic, version, counts and metadata,
// but not tensor infos. It reads the header region only, through a buffer of
// at most 64 KiB, and leaves r positioned somewhere after it.
//
// It returns an error matching ErrNotGGUF when r does not start with the GGUF
// magic and a *FormatError when the header is malformed or truncated.
func Read(r io.Reader) (*Header, error) {
	return ReadWithOptions(r, Options{})
}

// ReadWithOptions is Read with options; see Options.
func ReadWithOptions(r io.Reader, opts Options) (*Header, error) {
	d := newDecoder(r, defaultLimits())
	return d.header(opts)
}

// ReadFile decodes the header of the GGUF file at path, as Read does. The
// errors it returns name the path and match the same sentinels.
func ReadFile(path string) (*Header, error) {
	return ReadFileWithOptions(path, Options{})
}

// ReadFileWithOptions is ReadFile with options; see Options.
func ReadFileWithOptions(path string, opts Options) (*Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read gguf header: %w", err)
	}
	defer f.Close()
	h, err := ReadWithOptions(f, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// Get returns the value stored under key.
func (h *Header) Get(key string) (Value, bool) {
	if h.index != nil {
		i, ok := h.index[key]
		if !ok {
			return Value{}, false
		}
		return h.KVs[i].Value, true
	}
	for _, kv := range h.KVs {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return Value{}, false
}

// String returns the string stored under key. It reports false when the key
// is absent, holds another type, or holds a string too long to keep.
func (h *Header) String(key string) (string, bool) {
	v, _ := h.Get(key)
	return v.AsString()
}

// Uint returns the non-negative integer stored under key, whatever its
// integer type.
func (h *Header) Uint(key string) (uint64, bool) {
	v, _ := h.Get(key)
	return v.AsUint()
}

// Int returns the integer stored under key, whatever its integer type, when
// it fits an int64.
func (h *Header) Int(key string) (int64, bool) {
	v, _ := h.Get(key)
	return v.AsInt()
}

// Float returns the float32 or float64 stored under key.
func (h *Header) Float(key string) (float64, bool) {
	v, _ := h.Get(key)
	return v.AsFloat()
}

// Bool returns the bool stored under key.
func (h *Header) Bool(key string) (bool, bool) {
	v, _ := h.Get(key)
	return v.AsBool()
}

// Architecture returns general.architecture, such as "llama" or "qwen2", or
// "" when it is absent or not a string.
func (h *Header) Architecture() string {
	s, _ := h.String(KeyArchitecture)
	return s
}

// ContextLength returns <arch>.context_length, the context window the model
// was trained for, stored as any integer type. It reports false when the
// architecture or the key is missing, or the value is not a positive
// integer.
func (h *Header) ContextLength() (int64, bool) {
	arch := h.Architecture()
	if arch == "" {
		return 0, false
	}
	n, ok := h.Int(arch + ".context_length")
	if !ok || n <= 0 {
		return 0, false
	}
	return n, true
}

// Alignment returns general.alignment when it is a positive power of two that
// fits a uint32, and DefaultAlignment otherwise.
func (h *Header) Alignment() uint64 {
	a, ok := h.Uint(KeyAlignment)
	if !ok || a == 0 || a > math.MaxUint32 || a&(a-1) != 0 {
		return DefaultAlignment
	}
	return a
}

// DataOffset returns the offset in the file where tensor data starts: the
// end of the tensor infos rounded up to Alignment. It reports false when the
// tensor infos were not read.
func (h *Header) DataOffset() (int64, bool) {
	if !h.tensorsRead() {
		return 0, false
	}
	a := int64(h.Alignment())
	return (h.Size + a - 1) / a * a, true
}

// ParameterCount returns the total number of elements over all tensors. It
// reports false when the tensor infos were not read or the sum overflows.
func (h *Header) ParameterCount() (uint64, bool) {
	if !h.tensorsRead() {
		return 0, false
	}
	var total uint64
	for _, t := range h.Tensors {
		n, ok := t.Elements()
		if !ok {
			return 0, false
		}
		var carry uint64
		total, carry = bits.Add64(total, n, 0)
		if carry != 0 {
			return 0, false
		}
	}
	return total, true
}

func (h *Header) tensorsRead() bool {
	return h.tensorInfos
}
