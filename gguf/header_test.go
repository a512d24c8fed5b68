package gguf_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/gguf"
	"github.com/model-provisioner/model-provisioner/internal/ggufgen"
)

// encode builds a GGUF file in memory.
func encode(t testing.TB, version uint32, kvs []ggufgen.KV, tensors []ggufgen.Tensor) []byte {
	t.Helper()
	b, err := ggufgen.Encode(version, kvs, tensors)
	require.NoError(t, err)
	return b
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// rawHeader builds a header by hand: magic, version, counts and then rest
// verbatim, for inputs the writer cannot express.
func rawHeader(version uint32, tensorCount, kvCount uint64, rest ...[]byte) []byte {
	b := []byte(gguf.Magic)
	b = append(b, le32(version)...)
	b = append(b, le64(tensorCount)...)
	b = append(b, le64(kvCount)...)
	for _, r := range rest {
		b = append(b, r...)
	}
	return b
}

// str encodes a GGUF string.
func str(s string) []byte { return append(le64(uint64(len(s))), s...) }

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// llamaKVs is metadata shaped like a real llama model's.
func llamaKVs() []ggufgen.KV {
	return []ggufgen.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.name", Value: "test-llama"},
		{Key: "llama.context_length", Value: uint32(4096)},
		{Key: "llama.embedding_length", Value: uint32(64)},
		{Key: "llama.rope.freq_base", Value: float32(10000)},
		{Key: "general.file_type", Value: uint32(15)},
		{Key: "tokenizer.ggml.tokens", Value: []string{"<unk>", "<s>", "</s>", "a"}},
		{Key: "tokenizer.ggml.scores", Value: []float32{0, 0, 0, -1.5}},
		{Key: "tokenizer.ggml.token_type", Value: []int32{2, 3, 3, 1}},
		{Key: "tokenizer.ggml.add_bos_token", Value: true},
	}
}

func llamaTensors() []ggufgen.Tensor {
	return ggufgen.PackTensors([]ggufgen.Tensor{
		{Name: "token_embd.weight", Dims: []uint64{64, 4}, Type: 0, Data: make([]byte, 64*4*4)},
		{Name: "output_norm.weight", Dims: []uint64{64}, Type: 0, Data: make([]byte, 64*4)},
	}, 0)
}

func TestRead_RoundTrip(t *testing.T) {
	longKept := strings.Repeat("k", gguf.MaxKeptStringLen)
	tests := []struct {
		name  string
		value any
		want  any // when it differs from value
	}{
		{"uint8", uint8(math.MaxUint8), nil},
		{"int8", int8(math.MinInt8), nil},
		{"uint16", uint16(math.MaxUint16), nil},
		{"int16", int16(-2), nil},
		{"uint32", uint32(math.MaxUint32), nil},
		{"int32", int32(math.MinInt32), nil},
		{"uint64", uint64(math.MaxUint64), nil},
		{"int64", int64(math.MinInt64), nil},
		{"float32", float32(-0.25), nil},
		{"float64", math.Pi, nil},
		{"bool true", true, nil},
		{"bool false", false, nil},
		{"string", "héllo, wörld", nil},
		{"empty string", "", nil},
		{"longest kept string", longKept, nil},
		{"string array", []string{"a", "", "ccc"}, nil},
		{"int32 array", []int32{-1, 0, 1}, nil},
		{"float32 array", []float32{0.5, -2}, nil},
		{"uint8 array", []byte{0, 1, 255}, nil},
		{"uint64 array", []uint64{math.MaxUint64}, nil},
		{"bool array", []bool{true, false}, nil},
		{"empty array", []uint32{}, nil},
		{"array of arrays", [][]int32{{1, 2}, {}, {3}}, []any{[]int32{1, 2}, []int32{}, []int32{3}}},
		{"array of string arrays", [][]string{{"x"}, {"y", "z"}}, []any{[]string{"x"}, []string{"y", "z"}}},
		{"largest kept array", make([]uint16, gguf.MaxArrayElems), nil},
	}
	for _, version := range []uint32{2, 3} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%s/v%d", tc.name, version), func(t *testing.T) {
				kvs := []ggufgen.KV{
					{Key: "general.architecture", Value: "test"},
					{Key: "test.value", Value: tc.value},
				}
				h, err := gguf.Read(bytes.NewReader(encode(t, version, kvs, nil)))
				require.NoError(t, err)
				assert.Equal(t, version, h.Version)
				require.Len(t, h.KVs, 2)
				assert.Equal(t, "test.value", h.KVs[1].Key)
				v, ok := h.Get("test.value")
				require.True(t, ok)
				assert.True(t, v.Retained())
				want := tc.want
				if want == nil {
					want = tc.value
				}
				assert.Equal(t, want, v.Interface())
			})
		}
	}
}

func TestRead_TypedValues(t *testing.T) {
	kvs := []ggufgen.KV{
		{Key: "u8", Value: uint8(7)},
		{Key: "i8", Value: int8(-7)},
		{Key: "u64", Value: uint64(math.MaxUint64)},
		{Key: "i32", Value: int32(-3)},
		{Key: "f32", Value: float32(1.5)},
		{Key: "f64", Value: 2.5},
		{Key: "b", Value: true},
		{Key: "s", Value: "text"},
		{Key: "arr", Value: []uint32{1, 2}},
	}
	h, err := gguf.Read(bytes.NewReader(encode(t, 3, kvs, nil)))
	require.NoError(t, err)

	tests := []struct {
		name string
		got  func() (any, bool)
		want any
		ok   bool
	}{
		{"Uint of uint8", func() (any, bool) { return h.Uint("u8") }, uint64(7), true},
		{"Uint of negative int8", func() (any, bool) { return h.Uint("i8") }, uint64(0), false},
		{"Int of int8", func() (any, bool) { return h.Int("i8") }, int64(-7), true},
		{"Int of uint64 max", func() (any, bool) { return h.Int("u64") }, int64(0), false},
		{"Uint of uint64 max", func() (any, bool) { return h.Uint("u64") }, uint64(math.MaxUint64), true},
		{"Int of int32", func() (any, bool) { return h.Int("i32") }, int64(-3), true},
		{"Float of float32", func() (any, bool) { return h.Float("f32") }, 1.5, true},
		{"Float of float64", func() (any, bool) { return h.Float("f64") }, 2.5, true},
		{"Float of integer", func() (any, bool) { return h.Float("u8") }, 0.0, false},
		{"Bool", func() (any, bool) { return h.Bool("b") }, true, true},
		{"Bool of integer", func() (any, bool) { return h.Bool("u8") }, false, false},
		{"String", func() (any, bool) { return h.String("s") }, "text", true},
		{"String of integer", func() (any, bool) { return h.String("u8") }, "", false},
		{"String of missing key", func() (any, bool) { return h.String("nope") }, "", false},
		{"Uint of array", func() (any, bool) { return h.Uint("arr") }, uint64(0), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.got()
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}

	t.Run("absent value", func(t *testing.T) {
		v, ok := h.Get("nope")
		assert.False(t, ok)
		assert.False(t, v.Retained())
		assert.Nil(t, v.Interface())
		assert.Equal(t, "<absent>", v.String())
	})
	t.Run("value strings", func(t *testing.T) {
		s, _ := h.Get("s")
		assert.Equal(t, `"text"`, s.String())
		arr, _ := h.Get("arr")
		assert.Equal(t, "[1 2]", arr.String())
	})
}

func TestHeader_ContextLength(t *testing.T) {
	tests := []struct {
		name string
		kvs  []ggufgen.KV
		want int64
		ok   bool
	}{
		{"llama uint32", []ggufgen.KV{
			{Key: "general.architecture", Value: "llama"},
			{Key: "llama.context_length", Value: uint32(4096)},
		}, 4096, true},
		{"qwen2 uint64", []ggufgen.KV{
			{Key: "general.architecture", Value: "qwen2"},
			{Key: "qwen2.context_length", Value: uint64(32768)},
		}, 32768, true},
		{"int32", []ggufgen.KV{
			{Key: "general.architecture", Value: "phi3"},
			{Key: "phi3.context_length", Value: int32(131072)},
		}, 131072, true},
		{"uint16", []ggufgen.KV{
			{Key: "general.architecture", Value: "gpt2"},
			{Key: "gpt2.context_length", Value: uint16(1024)},
		}, 1024, true},
		{"other architecture's key ignored", []ggufgen.KV{
			{Key: "general.architecture", Value: "llama"},
			{Key: "qwen2.context_length", Value: uint32(32768)},
		}, 0, false},
		{"negative", []ggufgen.KV{
			{Key: "general.architecture", Value: "llama"},
			{Key: "llama.context_length", Value: int64(-1)},
		}, 0, false},
		{"zero", []ggufgen.KV{
			{Key: "general.architecture", Value: "llama"},
			{Key: "llama.context_length", Value: uint32(0)},
		}, 0, false},
		{"too large for int64", []ggufgen.KV{
			{Key: "general.architecture", Value: "llama"},
			{Key: "llama.context_length", Value: uint64(math.MaxUint64)},
		}, 0, false},
		{"string value", []ggufgen.KV{
			{Key: "general.architecture", Value: "llama"},
			{Key: "llama.context_length", Value: "4096"},
		}, 0, false},
		{"float value", []ggufgen.KV{
			{Key: "general.architecture", Value: "llama"},
			{Key: "llama.context_length", Value: float32(4096)},
		}, 0, false},
		{"no architecture", []ggufgen.KV{
			{Key: "llama.context_length", Value: uint32(4096)},
		}, 0, false},
		{"architecture not a string", []ggufgen.KV{
			{Key: "general.architecture", Value: uint32(1)},
			{Key: "1.context_length", Value: uint32(4096)},
		}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := gguf.Read(bytes.NewReader(encode(t, 3, tc.kvs, nil)))
			require.NoError(t, err)
			got, ok := h.ContextLength()
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestReadFile_Llama(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.gguf")
	require.NoError(t, ggufgen.WriteFile(path, 3, llamaKVs(), llamaTensors()))

	h, err := gguf.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, uint32(3), h.Version)
	assert.Equal(t, uint64(2), h.TensorCount)
	assert.Equal(t, "llama", h.Architecture())
	n, ok := h.ContextLength()
	assert.True(t, ok)
	assert.Equal(t, int64(4096), n)
	name, _ := h.String(gguf.KeyName)
	assert.Equal(t, "test-llama", name)
	assert.Nil(t, h.Tensors, "tensor infos are read only on request")
	_, ok = h.ParameterCount()
	assert.False(t, ok)
	_, ok = h.DataOffset()
	assert.False(t, ok)

	keys := make([]string, len(h.KVs))
	for i, kv := range h.KVs {
		keys[i] = kv.Key
	}
	want := make([]string, 0, len(llamaKVs()))
	for _, kv := range llamaKVs() {
		want = append(want, kv.Key)
	}
	assert.Equal(t, want, keys, "metadata keeps file order")
}

func TestRead_TensorInfos(t *testing.T) {
	tests := []struct {
		name       string
		kvs        []ggufgen.KV
		tensors    []ggufgen.Tensor
		wantParams uint64
		wantAlign  uint64
	}{
		{
			name:       "llama",
			kvs:        llamaKVs(),
			tensors:    llamaTensors(),
			wantParams: 64*4 + 64,
			wantAlign:  32,
		},
		{
			name: "custom alignment and scalar tensor",
			kvs:  []ggufgen.KV{{Key: gguf.KeyAlignment, Value: uint32(64)}},
			tensors: ggufgen.PackTensors([]ggufgen.Tensor{
				{Name: "scalar", Dims: nil, Type: 0, Data: make([]byte, 4)},
				{Name: "cube", Dims: []uint64{2, 3, 4}, Type: 0, Data: make([]byte, 96)},
			}, 64),
			wantParams: 1 + 24,
			wantAlign:  64,
		},
		{
			name:      "no tensors",
			kvs:       []ggufgen.KV{{Key: gguf.KeyAlignment, Value: uint32(3)}},
			wantAlign: 32,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := encode(t, 3, tc.kvs, tc.tensors)
			h, err := gguf.ReadWithOptions(bytes.NewReader(data), gguf.Options{TensorInfos: true})
			require.NoError(t, err)
			require.Len(t, h.Tensors, len(tc.tensors))
			for i, want := range tc.tensors {
				got := h.Tensors[i]
				assert.Equal(t, want.Name, got.Name)
				assert.Equal(t, want.Type, got.Type)
				assert.Equal(t, want.Offset, got.Offset)
				assert.Equal(t, len(want.Dims), len(got.Dims))
			}
			params, ok := h.ParameterCount()
			assert.True(t, ok)
			assert.Equal(t, tc.wantParams, params)
			assert.Equal(t, tc.wantAlign, h.Alignment())

			off, ok := h.DataOffset()
			require.True(t, ok)
			assert.Zero(t, off%int64(tc.wantAlign))
			assert.GreaterOrEqual(t, off, h.Size)
			assert.Less(t, off, h.Size+int64(tc.wantAlign))
			// The data section starts right after the padding the writer
			// put there, so the first tensor's bytes are at the offset.
			if len(tc.tensors) > 0 {
				first := tc.tensors[0]
				start := off + int64(first.Offset)
				assert.Equal(t, first.Data, data[start:start+int64(len(first.Data))])
			}
		})
	}
}

func TestTensorInfo_Elements(t *testing.T) {
	tests := []struct {
		name string
		dims []uint64
		want uint64
		ok   bool
	}{
		{"scalar", nil, 1, true},
		{"matrix", []uint64{4096, 32000}, 4096 * 32000, true},
		{"zero dimension", []uint64{4096, 0}, 0, true},
		{"overflow", []uint64{1 << 32, 1 << 32}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := gguf.TensorInfo{Dims: tc.dims}.Elements()
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestHeader_ParameterCountOverflow(t *testing.T) {
	tensors := []ggufgen.Tensor{
		{Name: "a", Dims: []uint64{1 << 62, 3}},
		{Name: "b", Dims: []uint64{1 << 62, 2}},
	}
	h, err := gguf.ReadWithOptions(bytes.NewReader(encode(t, 3, nil, tensors)), gguf.Options{TensorInfos: true})
	require.NoError(t, err)
	_, ok := h.ParameterCount()
	assert.False(t, ok)
}

func TestRead_NotGGUF(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"shorter than magic", []byte("GG")},
		{"zip", []byte("PK\x03\x04\x14\x00\x00\x00")},
		{"safetensors", concat(le64(2), []byte("{}"))},
		{"text", []byte("this is not a model\n")},
		{"lowercase magic", []byte("gguf\x03\x00\x00\x00")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gguf.Read(bytes.NewReader(tc.data))
			require.Error(t, err)
			assert.ErrorIs(t, err, gguf.ErrNotGGUF)
			var fe *gguf.FormatError
			assert.False(t, errors.As(err, &fe), "not GGUF is not a format error")
		})
	}

	t.Run("ReadFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "model.bin")
		require.NoError(t, os.WriteFile(path, []byte("not a model"), 0o600))
		_, err := gguf.ReadFile(path)
		assert.ErrorIs(t, err, gguf.ErrNotGGUF)
		assert.Contains(t, err.Error(), path)
	})
}

func TestReadFile_Missing(t *testing.T) {
	_, err := gguf.ReadFile(filepath.Join(t.TempDir(), "absent.gguf"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.NotErrorIs(t, err, gguf.ErrNotGGUF)
}

func TestRead_Version(t *testing.T) {
	tests := []struct {
		name    string
		version uint32
		reason  string
	}{
		{"v1", 1, "version 1"},
		{"v4", 4, "version 4"},
		{"v0", 0, "version 0"},
		{"big-endian v3", 0x03000000, "big-endian"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gguf.Read(bytes.NewReader(rawHeader(tc.version, 0, 0)))
			require.Error(t, err)
			assert.ErrorIs(t, err, gguf.ErrUnsupportedVersion)
			var fe *gguf.FormatError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, int64(4), fe.Offset)
			assert.Contains(t, fe.Reason, tc.reason)
		})
	}
}

func TestRead_Malformed(t *testing.T) {
	// Offsets in a file with one pair under key "k": the key starts at 24,
	// the value type at 33 and the value at 37.
	const valueOff = 37
	oneKV := func(v ggufgen.RawValue) []byte {
		return rawHeader(3, 0, 1, str("k"), le32(v.Type), v.Payload)
	}
	tests := []struct {
		name       string
		data       []byte
		opts       gguf.Options
		wantOffset int64
		wantReason string
	}{
		{
			name:       "string length 1<<62",
			data:       oneKV(ggufgen.RawValue{Type: 8, Payload: le64(1 << 62)}),
			wantOffset: valueOff,
			wantReason: "string length",
		},
		{
			name:       "string length just over the limit",
			data:       oneKV(ggufgen.RawValue{Type: 8, Payload: le64(gguf.MaxStringLen + 1)}),
			wantOffset: valueOff,
			wantReason: "exceeds limit",
		},
		{
			name:       "key length 1<<62",
			data:       rawHeader(3, 0, 1, le64(1<<62)),
			wantOffset: 24,
			wantReason: "name length",
		},
		{
			name:       "key length just over the limit",
			data:       rawHeader(3, 0, 1, le64(gguf.MaxKeyLen+1)),
			wantOffset: 24,
			wantReason: "name length",
		},
		{
			name:       "unknown value type",
			data:       oneKV(ggufgen.RawValue{Type: 13, Payload: le64(0)}),
			wantOffset: 33,
			wantReason: `unknown value type 13 (key "k")`,
		},
		{
			name:       "huge value type",
			data:       oneKV(ggufgen.RawValue{Type: math.MaxUint32}),
			wantOffset: 33,
			wantReason: "unknown value type",
		},
		{
			name:       "unknown array element type",
			data:       oneKV(ggufgen.RawValue{Type: 9, Payload: concat(le32(99), le64(1))}),
			wantOffset: valueOff,
			wantReason: "unknown array element type 99",
		},
		{
			name:       "arrays nested three deep",
			data:       encode(t, 3, []ggufgen.KV{{Key: "k", Value: [][][]int32{{{1}}}}}, nil),
			wantOffset: valueOff + 12,
			wantReason: "nested deeper",
		},
		{
			name: "empty arrays nested three deep",
			data: oneKV(ggufgen.RawValue{Type: 9, Payload: concat(
				le32(9), le64(1), // array of one array
				le32(9), le64(0), // ... of zero arrays
			)}),
			wantOffset: valueOff + 12,
			wantReason: "nested deeper",
		},
		{
			name:       "array count 1<<62",
			data:       oneKV(ggufgen.RawValue{Type: 9, Payload: concat(le32(10), le64(1<<62))}),
			wantOffset: valueOff + 12,
			wantReason: "cannot fit",
		},
		{
			name:       "string array count 1<<40",
			data:       oneKV(ggufgen.RawValue{Type: 9, Payload: concat(le32(8), le64(1<<40))}),
			wantOffset: valueOff + 12,
			wantReason: "cannot fit",
		},
		{
			name:       "bool neither 0 nor 1",
			data:       oneKV(ggufgen.RawValue{Type: 7, Payload: []byte{2}}),
			wantOffset: valueOff,
			wantReason: "bool value 2",
		},
		{
			name:       "metadata count over the limit",
			data:       rawHeader(3, 0, gguf.MaxKVCount+1),
			wantOffset: 16,
			wantReason: "metadata count",
		},
		{
			name:       "tensor count over the limit",
			data:       rawHeader(3, gguf.MaxTensorCount+1, 0),
			wantOffset: 8,
			wantReason: "tensor count",
		},
		{
			name: "duplicate key",
			data: encode(t, 3, []ggufgen.KV{
				{Key: "general.architecture", Value: "llama"},
				{Key: "general.architecture", Value: "evil"},
			}, nil),
			wantOffset: 24 + 8 + 20 + 4 + 8 + 5,
			wantReason: `duplicate key "general.architecture"`,
		},
		{
			name:       "too many dimensions",
			data:       encode(t, 3, nil, []ggufgen.Tensor{{Name: "t", Dims: make([]uint64, 9)}}),
			opts:       gguf.Options{TensorInfos: true},
			wantOffset: 24 + 9,
			wantReason: `9 dimensions exceed limit 8 (tensor "t")`,
		},
		{
			name:       "dimension beyond int64",
			data:       encode(t, 3, nil, []ggufgen.Tensor{{Name: "t", Dims: []uint64{1, 1 << 63}}}),
			opts:       gguf.Options{TensorInfos: true},
			wantOffset: 24 + 9 + 4 + 8,
			wantReason: "dimension 1",
		},
		{
			name: "duplicate tensor",
			data: encode(t, 3, nil, []ggufgen.Tensor{
				{Name: "t", Dims: []uint64{1}},
				{Name: "t", Dims: []uint64{1}},
			}),
			opts:       gguf.Options{TensorInfos: true},
			wantOffset: 24 + 9 + 4 + 8 + 4 + 8,
			wantReason: `duplicate tensor name "t"`,
		},
		{
			name:       "tensor name length 1<<62",
			data:       rawHeader(3, 1, 0, le64(1<<62)),
			opts:       gguf.Options{TensorInfos: true},
			wantOffset: 24,
			wantReason: "name length",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			allocated := allocatedBytes(func() {
				_, err = gguf.ReadWithOptions(bytes.NewReader(tc.data), tc.opts)
			})
			require.Error(t, err)
			var fe *gguf.FormatError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tc.wantOffset, fe.Offset)
			assert.Contains(t, fe.Reason, tc.wantReason)
			assert.NotErrorIs(t, err, gguf.ErrNotGGUF)
			assert.NotErrorIs(t, err, io.ErrUnexpectedEOF)
			assert.Less(t, allocated, uint64(1<<20), "lengths from the input must not drive allocation")
		})
	}
}

// allocatedBytes returns the bytes allocated on the heap while f runs. Tests
// that use it must not run in parallel.
func allocatedBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestRead_Truncated(t *testing.T) {
	kvs := append(llamaKVs(),
		ggufgen.KV{Key: "nested", Value: [][]string{{"a", "b"}, {"c"}}},
		ggufgen.KV{Key: "skipped", Value: make([]uint32, 100)},
		ggufgen.KV{Key: "skipped.strings", Value: make([]string, 100)},
		ggufgen.KV{Key: "i64", Value: int64(-1)},
	)
	data := encode(t, 3, kvs, llamaTensors())
	full, err := gguf.ReadWithOptions(bytes.NewReader(data), gguf.Options{TensorInfos: true})
	require.NoError(t, err)
	kvEnd, err := gguf.Read(bytes.NewReader(data))
	require.NoError(t, err)

	tests := []struct {
		name string
		opts gguf.Options
		end  int64
	}{
		{"metadata", gguf.Options{}, kvEnd.Size},
		{"metadata and tensor infos", gguf.Options{TensorInfos: true}, full.Size},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for n := range tc.end {
				_, err := gguf.ReadWithOptions(bytes.NewReader(data[:n]), tc.opts)
				require.Error(t, err, "prefix of %d bytes", n)
				if n < int64(len(gguf.Magic)) {
					require.ErrorIs(t, err, gguf.ErrNotGGUF, "prefix of %d bytes", n)
					continue
				}
				var fe *gguf.FormatError
				require.ErrorAs(t, err, &fe, "prefix of %d bytes", n)
				require.ErrorIs(t, err, io.ErrUnexpectedEOF, "prefix of %d bytes", n)
				require.Equal(t, n, fe.Offset, "prefix of %d bytes", n)
				require.Contains(t, err.Error(), "truncated")
			}
			h, err := gguf.ReadWithOptions(bytes.NewReader(data[:tc.end]), tc.opts)
			require.NoError(t, err)
			assert.Equal(t, tc.end, h.Size)
		})
	}

	t.Run("inside a skipped string", func(t *testing.T) {
		long := encode(t, 3, []ggufgen.KV{{Key: "k", Value: strings.Repeat("x", 2*gguf.MaxKeptStringLen)}}, nil)
		for _, n := range []int{37, 45, 46, gguf.MaxKeptStringLen, len(long) - 40} {
			_, err := gguf.Read(bytes.NewReader(long[:n]))
			var fe *gguf.FormatError
			require.ErrorAs(t, err, &fe, "prefix of %d bytes", n)
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
			assert.Equal(t, int64(n), fe.Offset)
		}
	})
}

func TestRead_LargeValuesSkipped(t *testing.T) {
	template := strings.Repeat("{% if x %}", gguf.MaxKeptStringLen/10+1)
	tokens := make([]string, 100_000)
	for i := range tokens {
		tokens[i] = "tok"
	}
	kvs := []ggufgen.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "tokenizer.chat_template", Value: template},
		{Key: "tokenizer.ggml.tokens", Value: tokens},
		{Key: "tokenizer.ggml.scores", Value: make([]float32, 100_000)},
		{Key: "long.kept.array.neighbour", Value: []string{"kept", strings.Repeat("y", gguf.MaxKeptStringLen+1)}},
		{Key: "llama.context_length", Value: uint32(8192)},
	}
	data := encode(t, 3, kvs, nil)

	var h *gguf.Header
	var err error
	allocated := allocatedBytes(func() { h, err = gguf.Read(bytes.NewReader(data)) })
	require.NoError(t, err)
	assert.Less(t, allocated, uint64(1<<20), "skipped values must not be allocated")

	tests := []struct {
		key      string
		typ      gguf.ValueType
		elemType gguf.ValueType
		length   uint64
	}{
		{"tokenizer.chat_template", gguf.TypeString, 0, uint64(len(template))},
		{"tokenizer.ggml.tokens", gguf.TypeArray, gguf.TypeString, 100_000},
		{"tokenizer.ggml.scores", gguf.TypeArray, gguf.TypeFloat32, 100_000},
		{"long.kept.array.neighbour", gguf.TypeArray, gguf.TypeString, 2},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			v, ok := h.Get(tc.key)
			require.True(t, ok)
			assert.Equal(t, tc.typ, v.Type)
			assert.Equal(t, tc.elemType, v.ElemType)
			assert.Equal(t, tc.length, v.Len)
			assert.False(t, v.Retained())
			assert.Nil(t, v.Elems)
			assert.Nil(t, v.Interface())
			assert.Contains(t, v.String(), "not kept")
		})
	}
	n, ok := h.ContextLength()
	assert.True(t, ok, "values after skipped ones are read")
	assert.Equal(t, int64(8192), n)
	_, ok = h.String("tokenizer.chat_template")
	assert.False(t, ok)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestRead_ReadsOnlyHeader(t *testing.T) {
	const tail = 64 << 20
	path := filepath.Join(t.TempDir(), "big.gguf")
	tensors := []ggufgen.Tensor{{Name: "token_embd.weight", Dims: []uint64{4096, 4096}, Type: 0}}
	require.NoError(t, ggufgen.WriteFile(path, 3, llamaKVs(), tensors))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	require.NoError(t, f.Truncate(st.Size()+tail)) // sparse: no tail bytes are written

	tests := []struct {
		name string
		opts gguf.Options
	}{
		{"metadata", gguf.Options{}},
		{"with tensor infos", gguf.Options{TensorInfos: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.Seek(0, io.SeekStart)
			require.NoError(t, err)
			cr := &countingReader{r: f}
			h, err := gguf.ReadWithOptions(cr, tc.opts)
			require.NoError(t, err)
			assert.Equal(t, "llama", h.Architecture())
			assert.Less(t, cr.n, int64(tail/100), "read %d bytes of a %d-byte file", cr.n, st.Size()+tail)
		})
	}

	t.Run("ReadFile", func(t *testing.T) {
		h, err := gguf.ReadFileWithOptions(path, gguf.Options{TensorInfos: true})
		require.NoError(t, err)
		params, ok := h.ParameterCount()
		assert.True(t, ok)
		assert.Equal(t, uint64(4096*4096), params)
	})
}

// zeros is an endless stream of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestRead_HeaderByteLimit(t *testing.T) {
	// Five 60 MiB strings: legal one by one, 300 MiB together.
	const count, size = 5, 60 << 20
	parts := []io.Reader{bytes.NewReader(rawHeader(3, 0, count))}
	for i := range count {
		kv := concat(str("key."+string(rune('a'+i))), le32(8), le64(size))
		parts = append(parts, bytes.NewReader(kv), io.LimitReader(zeros{}, size))
	}
	cr := &countingReader{r: io.MultiReader(parts...)}

	_, err := gguf.Read(cr)
	var fe *gguf.FormatError
	require.ErrorAs(t, err, &fe)
	assert.Contains(t, fe.Reason, "header limit")
	assert.Contains(t, fe.Reason, `"key.e"`)
	assert.LessOrEqual(t, cr.n, int64(gguf.MaxHeaderBytes))
}

// failingReader returns err once the first n bytes have been read.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestRead_ReaderError(t *testing.T) {
	errDisk := errors.New("input/output error")
	data := encode(t, 3, llamaKVs(), nil)
	tests := []struct {
		name string
		n    int
	}{
		{"in magic", 2},
		{"in counts", 10},
		{"in metadata", 60},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gguf.Read(&failingReader{data: data[:tc.n], err: errDisk})
			require.ErrorIs(t, err, errDisk)
			var fe *gguf.FormatError
			assert.False(t, errors.As(err, &fe), "I/O errors are not format errors")
			assert.NotErrorIs(t, err, gguf.ErrNotGGUF)
		})
	}
}

func TestFormatError_Error(t *testing.T) {
	tests := []struct {
		name string
		err  *gguf.FormatError
		want string
	}{
		{"plain", &gguf.FormatError{Offset: 33, Reason: "unknown value type 13"}, "gguf: offset 33: unknown value type 13"},
		{"wrapped", &gguf.FormatError{Offset: 9, Reason: "truncated reading version", Err: io.ErrUnexpectedEOF},
			"gguf: offset 9: truncated reading version: unexpected EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.err.Error())
		})
	}
}

func TestValueType_String(t *testing.T) {
	assert.Equal(t, "uint32", gguf.TypeUint32.String())
	assert.Equal(t, "float64", gguf.TypeFloat64.String())
	assert.Equal(t, "type(13)", gguf.ValueType(13).String())
	assert.False(t, gguf.ValueType(13).Valid())
}
