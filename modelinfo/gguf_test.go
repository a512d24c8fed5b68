package modelinfo_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/gguf"
	"github.com/model-provisioner/model-provisioner/internal/ggufgen"
	"github.com/model-provisioner/model-provisioner/modelinfo"
)

// tinyLlamaKVs is the metadata of a two-layer llama with every GGUF value
// type somewhere in it.
func tinyLlamaKVs() []ggufgen.KV {
	return []ggufgen.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.name", Value: "tiny"},
		{Key: "general.file_type", Value: uint32(fileTypeQ4_K_M)},
		{Key: "llama.context_length", Value: uint32(8192)},
		{Key: "llama.embedding_length", Value: uint32(64)},
		{Key: "llama.block_count", Value: uint32(2)},
		{Key: "llama.attention.head_count", Value: uint32(4)},
		{Key: "llama.attention.head_count_kv", Value: uint32(2)},
		{Key: "llama.attention.layer_norm_rms_epsilon", Value: float32(1e-5)},
		{Key: "llama.rope.freq_base", Value: float64(500000)},
		{Key: "tokenizer.ggml.model", Value: "gpt2"},
		{Key: "tokenizer.ggml.tokens", Value: []string{"<s>", "</s>", "a", "b"}},
		{Key: "tokenizer.ggml.token_type", Value: []int32{3, 3, 1, 1}},
		{Key: "tokenizer.ggml.add_bos_token", Value: true},
		{Key: "tokenizer.chat_template", Value: "{% for m in messages %}{{ m.content }}{% endfor %}"},
		{Key: "test.u8", Value: uint8(1)},
		{Key: "test.i8", Value: int8(-1)},
		{Key: "test.u16", Value: uint16(2)},
		{Key: "test.i16", Value: int16(-2)},
		{Key: "test.i32", Value: int32(-3)},
		{Key: "test.u64", Value: uint64(4)},
		{Key: "test.i64", Value: int64(-4)},
		{Key: "test.nested", Value: [][]uint8{{1}, {2, 3}}},
	}
}

// tinyLlamaTensors: a Q8_0 embedding of 64×8 (512 elements, 16 blocks of
// 34 bytes = 544 bytes) and an F32 norm of 64 (256 bytes).
func tinyLlamaTensors() []ggufgen.Tensor {
	return []ggufgen.Tensor{
		{Name: "token_embd.weight", Dims: []uint64{64, 8}, Type: typeQ8_0, Data: bytes.Repeat([]byte{1}, 544)},
		{Name: "output_norm.weight", Dims: []uint64{64}, Type: typeF32, Data: make([]byte, 256)},
	}
}

func TestInspect_GGUF(t *testing.T) {
	for _, version := range []uint32{2, 3} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "tiny.gguf")
			size := writeGGUF(t, p, version, tinyLlamaKVs(), tinyLlamaTensors())

			info, err := inspect(t, p)
			require.NoError(t, err)
			assert.Equal(t, modelinfo.Info{
				Format:         modelinfo.FormatGGUF,
				Path:           p,
				Architecture:   "llama",
				CtxMax:         8192,
				FileType:       "Q4_K_M",
				FileTypeID:     fileTypeQ4_K_M,
				ParameterCount: 64*8 + 64,
				TensorCount:    2,
				TokenizerModel: "gpt2",
				ChatTemplate:   true,
				GGUFVersion:    version,
				Shards:         []modelinfo.Shard{{Path: p, SizeBytes: size}},
				Memory: &modelinfo.MemoryHint{
					WeightsBytes: 544 + 256,
					// 2 layers × 2 KV heads × (16 + 16) × 2 bytes, head_dim = 64 / 4.
					KVBytesPerToken: 2 * 2 * (16 + 16) * 2,
					KVCacheType:     "f16",
				},
				SizeBytes: size,
			}, info)
		})
	}
}

func TestInspect_RelativePath(t *testing.T) {
	dir := t.TempDir()
	writeGGUF(t, filepath.Join(dir, "m.gguf"), 3, tinyLlamaKVs(), tinyLlamaTensors())
	t.Chdir(dir)
	info, err := inspect(t, "m.gguf")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "m.gguf"), info.Path)
	assert.True(t, filepath.IsAbs(info.Shards[0].Path))
}

func TestInspect_ExampleModels(t *testing.T) {
	tests := []struct {
		file     string
		arch     string
		ctx      int64
		fileType string
		template bool
		tokModel string
		kv       int64
	}{
		// 2 layers × 2 KV heads × (16 + 16) × 2 bytes: embedding 64 / 4 heads = 16.
		{"tinyllama-q4.gguf", "llama", 4096, "Q4_K_M", false, "llama", 2 * 2 * (16 + 16) * 2},
		{"tinyqwen-q8.gguf", "qwen2", 32768, "Q8_0", true, "gpt2", 2 * 2 * (16 + 16) * 2},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			p, err := filepath.Abs(filepath.Join("..", "examples", "models", tc.file))
			require.NoError(t, err)
			info, err := inspect(t, p)
			require.NoError(t, err)
			assert.Equal(t, modelinfo.FormatGGUF, info.Format)
			assert.Equal(t, tc.arch, info.Architecture)
			assert.Equal(t, tc.ctx, info.CtxMax)
			assert.Equal(t, tc.fileType, info.FileType)
			assert.Equal(t, tc.template, info.ChatTemplate)
			assert.Equal(t, tc.tokModel, info.TokenizerModel)
			assert.Equal(t, uint64(3), info.TensorCount)
			assert.Equal(t, uint64(64*32*2+64), info.ParameterCount)
			require.NotNil(t, info.Memory)
			// Two Q8_0 matrices of 64×32 (64 blocks of 34 bytes each) and
			// an F32 vector of 64.
			assert.Equal(t, int64(2*64*34+64*4), info.Memory.WeightsBytes)
			assert.Equal(t, tc.kv, info.Memory.KVBytesPerToken)
		})
	}
}

func TestInspect_LargeVocabulary(t *testing.T) {
	const vocab = 150_000
	tokens := make([]string, vocab)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("tok%06d", i)
	}
	template := strings.Repeat("{% if x %}y{% endif %}", gguf.MaxKeptStringLen/20)
	kvs := []ggufgen.KV{
		{Key: "general.architecture", Value: "qwen2"},
		{Key: "general.file_type", Value: uint32(7)},
		{Key: "tokenizer.ggml.model", Value: "gpt2"},
		{Key: "tokenizer.ggml.tokens", Value: tokens},
		{Key: "tokenizer.ggml.token_type", Value: make([]int32, vocab)},
		{Key: "tokenizer.ggml.merges", Value: tokens[:vocab/2]},
		{Key: "tokenizer.chat_template", Value: template},
		{Key: "qwen2.context_length", Value: uint32(131072)},
	}
	p := filepath.Join(t.TempDir(), "big-vocab.gguf")
	writeGGUF(t, p, 3, kvs, []ggufgen.Tensor{{Name: "w", Dims: []uint64{32}, Type: typeF32, Data: make([]byte, 128)}})
	header := fileSize(t, p)
	require.Greater(t, header, int64(2<<20), "the fixture's header holds the whole vocabulary")

	var info modelinfo.Info
	var err error
	allocated := allocatedBytes(func() { info, err = inspect(t, p) })
	require.NoError(t, err)
	assert.Equal(t, "qwen2", info.Architecture)
	assert.Equal(t, int64(131072), info.CtxMax, "keys after the vocabulary are read")
	assert.Equal(t, "gpt2", info.TokenizerModel)
	assert.Equal(t, "Q8_0", info.FileType)
	assert.True(t, info.ChatTemplate, "a chat template too long to keep still counts")
	assert.Less(t, allocated, uint64(1<<20), "the vocabulary is skipped, not kept")
}

// allocatedBytes returns the bytes allocated on the heap while f runs.
func allocatedBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestInspect_NotGGUF(t *testing.T) {
	for _, content := range [][]byte{nil, []byte("GGU"), []byte("PK\x03\x04 a zip"), bytes.Repeat([]byte{0xff}, 4096)} {
		p := filepath.Join(t.TempDir(), "m.gguf")
		writeFile(t, p, content)
		info, err := inspect(t, p)
		require.NoError(t, err, "a file that is not GGUF is a model in an unknown format, not a broken one")
		assert.Equal(t, modelinfo.Info{Format: modelinfo.FormatUnknown, Path: p, SizeBytes: int64(len(content)), FileTypeID: -1}, info)
	}
}

func TestInspect_Missing(t *testing.T) {
	_, err := inspect(t, filepath.Join(t.TempDir(), "none.gguf"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestInspect_UnknownTensorTypeUsesDataSection(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.gguf")
	tensors := []ggufgen.Tensor{
		{Name: "a", Dims: []uint64{64}, Type: typeF32, Data: make([]byte, 256)},
		{Name: "b", Dims: []uint64{64}, Type: 200, Data: make([]byte, 40)},
	}
	size := writeGGUF(t, p, 3, tinyLlamaKVs(), tensors)
	info, err := inspect(t, p)
	require.NoError(t, err)
	h, err := gguf.ReadFileWithOptions(p, gguf.Options{TensorInfos: true})
	require.NoError(t, err)
	off, _ := h.DataOffset()
	require.NotNil(t, info.Memory)
	// The data section: 256 bytes, then 40 padded to 64.
	assert.Equal(t, size-off, info.Memory.WeightsBytes)
	assert.Equal(t, int64(256+64), info.Memory.WeightsBytes)
}

func TestInspect_TruncatedData(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.gguf")
	size := writeGGUF(t, p, 3, tinyLlamaKVs(), tinyLlamaTensors())
	h, err := gguf.ReadFileWithOptions(p, gguf.Options{TensorInfos: true})
	require.NoError(t, err)
	dataOff, _ := h.DataOffset()
	// The last tensor (output_norm, 256 bytes) starts at 544, a multiple
	// of the alignment, so the data ends at the end of the file.
	end := dataOff + 544 + 256
	require.Equal(t, size, end)
	for _, n := range []int64{end + 1, end} {
		require.NoError(t, os.Truncate(p, n))
		_, err = inspect(t, p)
		require.NoError(t, err, "file of %d bytes, data ends at %d", n, end)
	}
	for _, n := range []int64{end - 1, dataOff + 100, dataOff} {
		require.NoError(t, os.Truncate(p, n))
		_, err = inspect(t, p)
		require.ErrorIs(t, err, modelinfo.ErrTruncated, "cut at %d of %d", n, size)
		assert.Contains(t, err.Error(), "m.gguf")
	}
}

// TestInspect_TruncatedHeader cuts a small GGUF file at every offset inside
// its header: each prefix is an error that says the header is truncated.
func TestInspect_TruncatedHeader(t *testing.T) {
	kvs := []ggufgen.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "llama.context_length", Value: uint32(2048)},
		{Key: "tokenizer.ggml.tokens", Value: []string{"a", "b"}},
	}
	data, err := ggufgen.Encode(3, kvs, []ggufgen.Tensor{{Name: "w", Dims: []uint64{8}, Type: typeF32, Data: make([]byte, 32)}})
	require.NoError(t, err)
	h, err := gguf.ReadWithOptions(bytes.NewReader(data), gguf.Options{TensorInfos: true})
	require.NoError(t, err)

	p := filepath.Join(t.TempDir(), "m.gguf")
	for n := int64(len(gguf.Magic)); n < h.Size; n++ {
		writeFile(t, p, data[:n])
		info, err := inspect(t, p)
		var fe *gguf.FormatError
		require.ErrorAs(t, err, &fe, "prefix of %d bytes", n)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF, "prefix of %d bytes", n)
		assert.Equal(t, modelinfo.FormatGGUF, info.Format)
	}
}

// TestInspect_FlippedHeaderBytes inverts each byte of a small header in
// turn. Whatever the damage, Inspect returns (an Info or an error) without
// panicking, and damage to the magic makes the file "unknown".
func TestInspect_FlippedHeaderBytes(t *testing.T) {
	data, err := ggufgen.Encode(3, tinyLlamaKVs(), ggufgen.PackTensors(tinyLlamaTensors(), 0))
	require.NoError(t, err)
	h, err := gguf.ReadWithOptions(bytes.NewReader(data), gguf.Options{TensorInfos: true})
	require.NoError(t, err)

	p := filepath.Join(t.TempDir(), "m.gguf")
	var failed int
	for i := range h.Size {
		damaged := bytes.Clone(data)
		damaged[i] ^= 0xff
		writeFile(t, p, damaged)
		info, err := inspect(t, p)
		switch {
		case i < int64(len(gguf.Magic)):
			require.NoError(t, err)
			assert.Equal(t, modelinfo.FormatUnknown, info.Format)
		case err != nil:
			failed++
			assert.Equal(t, modelinfo.FormatGGUF, info.Format)
			var fe *gguf.FormatError
			if !errors.As(err, &fe) && !errors.Is(err, modelinfo.ErrTruncated) {
				t.Errorf("byte %d flipped: unexpected error kind: %v", i, err)
			}
		}
	}
	assert.Greater(t, failed, int(h.Size)/4, "most damage to a header is detected")
}

func TestInspect_KeepsDirectoryTokenizer(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.gguf")
	writeGGUF(t, p, 3, tinyLlamaKVs(), tinyLlamaTensors())
	info, err := inspect(t, p)
	require.NoError(t, err)
	assert.Empty(t, info.Tokenizer)

	writeFile(t, filepath.Join(dir, "tokenizer_config.json"), []byte(`{}`))
	info, err = inspect(t, p)
	require.NoError(t, err)
	assert.Equal(t, dir, info.Tokenizer)
}

func TestFileTypeName(t *testing.T) {
	assert.Equal(t, "F32", modelinfo.FileTypeName(0))
	assert.Equal(t, "Q4_K_M", modelinfo.FileTypeName(15))
	assert.Equal(t, "BF16", modelinfo.FileTypeName(32))
	assert.Equal(t, "MXFP4_MOE", modelinfo.FileTypeName(38))
	assert.Empty(t, modelinfo.FileTypeName(5), "Q4_2 is gone from llama.cpp")
	assert.Empty(t, modelinfo.FileTypeName(9999))
}

func TestInspect_UnknownFileTypeKeepsID(t *testing.T) {
	kvs := append(tinyLlamaKVs()[:2], ggufgen.KV{Key: "general.file_type", Value: uint32(9999)})
	p := filepath.Join(t.TempDir(), "m.gguf")
	writeGGUF(t, p, 3, kvs, nil)
	info, err := inspect(t, p)
	require.NoError(t, err)
	assert.Empty(t, info.FileType)
	assert.Equal(t, int64(9999), info.FileTypeID)
}
