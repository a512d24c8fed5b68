package gguf_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/gguf"
	"github.com/model-provisioner/model-provisioner/internal/ggufgen"
)

// TestRead_LargeVocabulary reads a header with a 150,000-entry vocabulary,
// the size of Qwen's and Llama 3's (128,256): the token list, its scores,
// types and merges are skipped, not kept, and the keys after them are read.
func TestRead_LargeVocabulary(t *testing.T) {
	const vocab = 150_000
	tokens := make([]string, vocab)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("\u0120tok%d", i)
	}
	kvs := []ggufgen.KV{
		{Key: "general.architecture", Value: "qwen2"},
		{Key: "tokenizer.ggml.model", Value: "gpt2"},
		{Key: "tokenizer.ggml.tokens", Value: tokens},
		{Key: "tokenizer.ggml.scores", Value: make([]float32, vocab)},
		{Key: "tokenizer.ggml.token_type", Value: make([]int32, vocab)},
		{Key: "tokenizer.ggml.merges", Value: tokens[:vocab-1]},
		{Key: "qwen2.context_length", Value: uint32(32768)},
	}
	for _, version := range []uint32{2, 3} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			data := encode(t, version, kvs, nil)
			var h *gguf.Header
			var err error
			allocated := allocatedBytes(func() { h, err = gguf.Read(bytes.NewReader(data)) })
			require.NoError(t, err)
			assert.Less(t, allocated, uint64(1<<20), "a %d-byte header", len(data))
			assert.Greater(t, h.Size, int64(len(data)-ggufgen.DefaultAlignment), "the whole header was read: only alignment padding follows")

			for key, elem := range map[string]gguf.ValueType{
				"tokenizer.ggml.tokens":     gguf.TypeString,
				"tokenizer.ggml.scores":     gguf.TypeFloat32,
				"tokenizer.ggml.token_type": gguf.TypeInt32,
			} {
				v, ok := h.Get(key)
				require.True(t, ok, key)
				assert.Equal(t, gguf.TypeArray, v.Type)
				assert.Equal(t, elem, v.ElemType)
				assert.Equal(t, uint64(vocab), v.Len, key)
				assert.False(t, v.Retained(), key)
			}
			model, ok := h.String("tokenizer.ggml.model")
			assert.True(t, ok)
			assert.Equal(t, "gpt2", model)
			n, ok := h.ContextLength()
			assert.True(t, ok)
			assert.Equal(t, int64(32768), n)
		})
	}
}

// TestRead_FlippedBytes damages every byte of a small header in turn (all
// bits inverted, and set to 0x00 and 0x7f) and reads it with and without
// tensor infos. Each read either succeeds or fails with the documented
// errors, allocating a bounded amount whatever lengths the damage makes up.
func TestRead_FlippedBytes(t *testing.T) {
	data := encode(t, 3, append(llamaKVs(), ggufgen.KV{Key: "nested", Value: [][]int16{{1, 2}, {3}}}), llamaTensors())
	full, err := gguf.ReadWithOptions(bytes.NewReader(data), gguf.Options{TensorInfos: true})
	require.NoError(t, err)

	damages := []struct {
		name string
		f    func(byte) byte
	}{
		{"inverted", func(b byte) byte { return ^b }},
		{"zeroed", func(byte) byte { return 0 }},
		{"0x7f", func(byte) byte { return 0x7f }},
	}
	var detected int
	for _, dmg := range damages {
		for i := range full.Size {
			damaged := bytes.Clone(data)
			damaged[i] = dmg.f(damaged[i])
			if bytes.Equal(damaged, data) {
				continue
			}
			for _, opts := range []gguf.Options{{}, {TensorInfos: true}} {
				var err error
				allocated := allocatedBytes(func() { _, err = gguf.ReadWithOptions(bytes.NewReader(damaged), opts) })
				require.Less(t, allocated, uint64(4<<20), "%s byte %d: allocation must stay bounded", dmg.name, i)
				if err == nil {
					continue
				}
				detected++
				var fe *gguf.FormatError
				switch {
				case i < int64(len(gguf.Magic)):
					require.ErrorIs(t, err, gguf.ErrNotGGUF, "%s byte %d", dmg.name, i)
				case errors.As(err, &fe):
					require.LessOrEqual(t, fe.Offset, int64(len(damaged)), "%s byte %d: %v", dmg.name, i, err)
					if errors.Is(err, io.ErrUnexpectedEOF) {
						require.Contains(t, fe.Reason, "truncated")
					}
				default:
					t.Fatalf("%s byte %d: error is neither ErrNotGGUF nor *FormatError: %v", dmg.name, i, err)
				}
			}
		}
	}
	assert.Greater(t, detected, int(full.Size), "damage to a header is mostly detected")
}
