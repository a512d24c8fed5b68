package ggufgen_test

import (
	"bytes"
	"encoding/binary"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/gguf"
	"github.com/model-provisioner/model-provisioner/internal/ggufgen"
)

var update = flag.Bool("update", false, "rewrite the example models under examples/models")

// ggml tensor types used by the examples.
const (
	ggmlF32  = 0
	ggmlQ8_0 = 8
)

// Values of general.file_type.
const (
	fileTypeQ8_0   = 7
	fileTypeQ4_K_M = 15
)

const (
	exampleEmbd  = 64
	exampleVocab = 32
)

// exampleModel describes one file under examples/models.
type exampleModel struct {
	file    string
	kvs     []ggufgen.KV
	tensors []ggufgen.Tensor
	arch    string
	ctx     int64
}

func exampleModels() []exampleModel {
	return []exampleModel{
		{
			file: "tinyllama-q4.gguf",
			arch: "llama",
			ctx:  4096,
			kvs: []ggufgen.KV{
				{Key: "general.architecture", Value: "llama"},
				{Key: "general.name", Value: "tiny-llama-example"},
				{Key: "general.file_type", Value: uint32(fileTypeQ4_K_M)},
				{Key: "general.quantization_version", Value: uint32(2)},
				{Key: "llama.context_length", Value: uint32(4096)},
				{Key: "llama.embedding_length", Value: uint32(exampleEmbd)},
				{Key: "llama.block_count", Value: uint32(2)},
				{Key: "llama.feed_forward_length", Value: uint32(128)},
				{Key: "llama.rope.dimension_count", Value: uint32(16)},
				{Key: "llama.attention.head_count", Value: uint32(4)},
				{Key: "llama.attention.head_count_kv", Value: uint32(2)},
				{Key: "llama.attention.layer_norm_rms_epsilon", Value: float32(1e-5)},
				{Key: "llama.rope.freq_base", Value: float32(10000)},
				{Key: "tokenizer.ggml.model", Value: "llama"},
				{Key: "tokenizer.ggml.tokens", Value: exampleTokens("\u2581", "<unk>", "<s>", "</s>")},
				{Key: "tokenizer.ggml.scores", Value: exampleScores()},
				{Key: "tokenizer.ggml.token_type", Value: exampleTokenTypes(2, 3, 3)},
				{Key: "tokenizer.ggml.bos_token_id", Value: uint32(1)},
				{Key: "tokenizer.ggml.eos_token_id", Value: uint32(2)},
				{Key: "tokenizer.ggml.unknown_token_id", Value: uint32(0)},
				{Key: "tokenizer.ggml.add_bos_token", Value: true},
			},
			tensors: exampleTensors(0x11a4a),
		},
		{
			file: "tinyqwen-q8.gguf",
			arch: "qwen2",
			ctx:  32768,
			kvs: []ggufgen.KV{
				{Key: "general.architecture", Value: "qwen2"},
				{Key: "general.name", Value: "tiny-qwen-example"},
				{Key: "general.file_type", Value: uint32(fileTypeQ8_0)},
				{Key: "general.quantization_version", Value: uint32(2)},
				{Key: "qwen2.context_length", Value: uint32(32768)},
				{Key: "qwen2.embedding_length", Value: uint32(exampleEmbd)},
				{Key: "qwen2.block_count", Value: uint32(2)},
				{Key: "qwen2.feed_forward_length", Value: uint32(128)},
				{Key: "qwen2.attention.head_count", Value: uint32(4)},
				{Key: "qwen2.attention.head_count_kv", Value: uint32(2)},
				{Key: "qwen2.attention.layer_norm_rms_epsilon", Value: float32(1e-6)},
				{Key: "qwen2.rope.freq_base", Value: float32(1e6)},
				{Key: "tokenizer.ggml.model", Value: "gpt2"},
				{Key: "tokenizer.ggml.pre", Value: "qwen2"},
				{Key: "tokenizer.ggml.tokens", Value: exampleTokens("\u0120", "<|endoftext|>", "<|im_start|>", "<|im_end|>")},
				{Key: "tokenizer.ggml.token_type", Value: exampleTokenTypes(3, 3, 3)},
				{Key: "tokenizer.ggml.merges", Value: []string{"t h", "th e", "a n", "i n"}},
				{Key: "tokenizer.ggml.eos_token_id", Value: uint32(2)},
				{Key: "tokenizer.ggml.padding_token_id", Value: uint32(0)},
				{Key: "tokenizer.ggml.add_bos_token", Value: false},
				{Key: "tokenizer.chat_template", Value: "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"},
			},
			tensors: exampleTensors(0x9e3779b9),
		},
	}
}

// exampleTokens returns a vocabulary of exampleVocab tokens: the three
// special tokens, the tokenizer's word-boundary marker, the letters and two
// punctuation marks.
func exampleTokens(boundary string, special ...string) []string {
	tokens := append([]string{}, special...)
	tokens = append(tokens, boundary)
	for c := 'a'; c <= 'z'; c++ {
		tokens = append(tokens, string(c))
	}
	return append(tokens, ".", ",")
}

func exampleScores() []float32 {
	scores := make([]float32, exampleVocab)
	for i := 3; i < exampleVocab; i++ {
		scores[i] = float32(3 - i)
	}
	return scores
}

// exampleTokenTypes returns token types: the given ones for the special
// tokens, then 1 (normal).
func exampleTokenTypes(special ...int32) []int32 {
	types := make([]int32, exampleVocab)
	for i := range types {
		types[i] = 1
	}
	copy(types, special)
	return types
}

// exampleTensors returns placeholder weights with deterministic contents
// derived from seed: an embedding and an output matrix in Q8_0 and an F32
// norm of ones.
func exampleTensors(seed uint64) []ggufgen.Tensor {
	return ggufgen.PackTensors([]ggufgen.Tensor{
		{Name: "token_embd.weight", Dims: []uint64{exampleEmbd, exampleVocab}, Type: ggmlQ8_0, Data: q8Blocks(exampleEmbd*exampleVocab, seed)},
		{Name: "output_norm.weight", Dims: []uint64{exampleEmbd}, Type: ggmlF32, Data: f32Ones(exampleEmbd)},
		{Name: "output.weight", Dims: []uint64{exampleEmbd, exampleVocab}, Type: ggmlQ8_0, Data: q8Blocks(exampleEmbd*exampleVocab, seed+1)},
	}, ggufgen.DefaultAlignment)
}

// q8Blocks encodes n weights as Q8_0 blocks: per 32 weights, a float16 scale
// of 1/16 and 32 signed bytes from a linear congruential generator.
func q8Blocks(n int, seed uint64) []byte {
	const blockLen, scaleF16 = 32, 0x2c00
	state := seed
	var b []byte
	for range n / blockLen {
		b = binary.LittleEndian.AppendUint16(b, scaleF16)
		for range blockLen {
			state = state*6364136223846793005 + 1442695040888963407
			b = append(b, byte(state>>56))
		}
	}
	return b
}

func f32Ones(n int) []byte {
	var b []byte
	for range n {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(1))
	}
	return b
}

func TestExampleModels(t *testing.T) {
	for i, m := range exampleModels() {
		t.Run(m.file, func(t *testing.T) {
			got, err := ggufgen.Encode(3, m.kvs, m.tensors)
			require.NoError(t, err)
			rebuilt := exampleModels()[i]
			again, err := ggufgen.Encode(3, rebuilt.kvs, rebuilt.tensors)
			require.NoError(t, err)
			require.Equal(t, got, again, "bytes must be deterministic")
			require.Less(t, len(got), 64<<10)

			path := filepath.Join("..", "..", "examples", "models", m.file)
			if *update {
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "regenerate with: go test ./internal/ggufgen -run TestExampleModels -update")
			require.True(t, bytes.Equal(want, got),
				"%s is stale; regenerate with: go test ./internal/ggufgen -run TestExampleModels -update", path)

			h, err := gguf.ReadFileWithOptions(path, gguf.Options{TensorInfos: true})
			require.NoError(t, err)
			assert.Equal(t, m.arch, h.Architecture())
			ctx, ok := h.ContextLength()
			assert.True(t, ok)
			assert.Equal(t, m.ctx, ctx)
			params, ok := h.ParameterCount()
			assert.True(t, ok)
			assert.Equal(t, uint64(2*exampleEmbd*exampleVocab+exampleEmbd), params)
			tokens, _ := h.Get("tokenizer.ggml.tokens")
			assert.Equal(t, uint64(exampleVocab), tokens.Len)

			dataOff, ok := h.DataOffset()
			require.True(t, ok)
			for i, ti := range h.Tensors {
				start := dataOff + int64(ti.Offset)
				assert.Equal(t, m.tensors[i].Data, got[start:start+int64(len(m.tensors[i].Data))], ti.Name)
			}
		})
	}
}
