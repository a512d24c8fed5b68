package modelinfo_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/internal/ggufgen"
	"github.com/model-provisioner/model-provisioner/modelinfo"
)

// TestInspect_KVBytesPerToken checks the KV-cache estimate against values
// computed by hand from published model shapes.
func TestInspect_KVBytesPerToken(t *testing.T) {
	tests := []struct {
		name string
		arch string
		kvs  map[string]any // keys without the "<arch>." prefix
		want int64
	}{
		{
			// Llama 3 8B, grouped-query attention: head_dim = 4096 / 32 = 128;
			// 2 (K and V) × 32 layers × 8 KV heads × 128 × 2 bytes.
			name: "llama 3 8B (GQA)", arch: "llama",
			kvs: map[string]any{
				"block_count": uint32(32), "embedding_length": uint32(4096),
				"attention.head_count": uint32(32), "attention.head_count_kv": uint32(8),
			},
			want: 2 * 32 * 8 * 128 * 2, // 131072
		},
		{
			// Llama 2 7B, multi-head attention: no head_count_kv, so every
			// one of the 32 heads has its own K and V;
			// 2 × 32 layers × 32 heads × 128 × 2 bytes.
			name: "llama 2 7B (MHA)", arch: "llama",
			kvs: map[string]any{
				"block_count": uint32(32), "embedding_length": uint32(4096),
				"attention.head_count": uint32(32),
			},
			want: 2 * 32 * 32 * 128 * 2, // 524288
		},
		{
			// Qwen2 7B: head_dim = 3584 / 28 = 128;
			// 2 × 28 layers × 4 KV heads × 128 × 2 bytes.
			name: "qwen2 7B", arch: "qwen2",
			kvs: map[string]any{
				"block_count": uint32(28), "embedding_length": uint32(3584),
				"attention.head_count": uint32(28), "attention.head_count_kv": uint32(4),
			},
			want: 2 * 28 * 4 * 128 * 2, // 57344
		},
		{
			// Gemma 7B: heads of 256 although 3072 / 16 = 192, so the key
			// and value lengths must win;
			// 28 layers × 16 KV heads × (256 + 256) × 2 bytes.
			name: "gemma 7B (key and value length)", arch: "gemma",
			kvs: map[string]any{
				"block_count": uint64(28), "embedding_length": uint64(3072),
				"attention.head_count": uint64(16), "attention.head_count_kv": uint64(16),
				"attention.key_length": uint32(256), "attention.value_length": uint32(256),
			},
			want: 28 * 16 * (256 + 256) * 2, // 458752
		},
		{
			// Keys and values of different lengths:
			// 4 layers × 16 KV heads × (192 + 128) × 2 bytes.
			name: "different key and value lengths", arch: "deepseek2",
			kvs: map[string]any{
				"block_count": uint32(4), "embedding_length": uint32(2048),
				"attention.head_count": uint32(16), "attention.head_count_kv": uint32(16),
				"attention.key_length": uint32(192), "attention.value_length": uint32(128),
			},
			want: 4 * 16 * (192 + 128) * 2, // 40960
		},
		{
			// KV heads per layer, one layer without attention: head_dim =
			// 512 / 8 = 64; (8 + 0 + 8 + 4) KV heads × (64 + 64) × 2 bytes.
			name: "KV heads per layer", arch: "hybrid",
			kvs: map[string]any{
				"block_count": uint32(4), "embedding_length": uint32(512),
				"attention.head_count": uint32(8), "attention.head_count_kv": []uint32{8, 0, 8, 4},
			},
			want: (8 + 0 + 8 + 4) * (64 + 64) * 2, // 5120
		},
		{
			name: "recurrent model (no attention heads)", arch: "mamba",
			kvs:  map[string]any{"block_count": uint32(64), "embedding_length": uint32(2560)},
			want: 0,
		},
		{
			name: "per-layer array of the wrong length", arch: "llama",
			kvs: map[string]any{
				"block_count": uint32(4), "embedding_length": uint32(512),
				"attention.head_count": uint32(8), "attention.head_count_kv": []uint32{8, 8},
			},
			want: 0,
		},
		{
			name: "zero heads", arch: "llama",
			kvs: map[string]any{
				"block_count": uint32(4), "embedding_length": uint32(512),
				"attention.head_count": uint32(0), "attention.head_count_kv": uint32(8),
			},
			want: 0,
		},
		{
			name: "absurd layer count", arch: "llama",
			kvs: map[string]any{
				"block_count": uint64(1) << 40, "embedding_length": uint32(4096),
				"attention.head_count": uint32(32),
			},
			want: 0,
		},
		{
			name: "overflowing key length", arch: "llama",
			kvs: map[string]any{
				"block_count": uint32(2), "attention.head_count": uint32(1),
				"attention.key_length": ^uint64(0), "attention.value_length": uint64(2),
			},
			want: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kvs := []ggufgen.KV{{Key: "general.architecture", Value: tc.arch}}
			for k, v := range tc.kvs {
				kvs = append(kvs, ggufgen.KV{Key: tc.arch + "." + k, Value: v})
			}
			p := filepath.Join(t.TempDir(), "m.gguf")
			writeGGUF(t, p, 3, kvs, nil)
			info, err := inspect(t, p)
			require.NoError(t, err)
			if tc.want == 0 {
				assert.Nil(t, info.Memory, "no tensors and no attention shape: nothing to estimate")
				return
			}
			require.NotNil(t, info.Memory)
			assert.Equal(t, tc.want, info.Memory.KVBytesPerToken)
			assert.Equal(t, "f16", info.Memory.KVCacheType)
			assert.Zero(t, info.Memory.WeightsBytes)
		})
	}
}

// TestInspect_WeightsBytes checks the weights estimate for tensors shaped
// like Llama 3 8B's in the common quantizations, sizes worked out by hand
// from the ggml block layouts.
func TestInspect_WeightsBytes(t *testing.T) {
	tensors := []sized{
		// 4096 × 128256 = 525336576 elements in Q4_K blocks of 256 (144 bytes).
		{ggufgen.Tensor{Name: "token_embd.weight", Dims: []uint64{4096, 128256}, Type: typeQ4_K}, 525336576 / 256 * 144},
		// 4096 × 4096 = 16777216 elements, Q4_K.
		{ggufgen.Tensor{Name: "blk.0.attn_q.weight", Dims: []uint64{4096, 4096}, Type: typeQ4_K}, 16777216 / 256 * 144},
		// 4096 × 1024 = 4194304 elements, Q4_K.
		{ggufgen.Tensor{Name: "blk.0.attn_k.weight", Dims: []uint64{4096, 1024}, Type: typeQ4_K}, 4194304 / 256 * 144},
		// 4096 × 1024 elements in Q8_0 blocks of 32 (34 bytes).
		{ggufgen.Tensor{Name: "blk.0.attn_v.weight", Dims: []uint64{4096, 1024}, Type: typeQ8_0}, 4194304 / 32 * 34},
		// 14336 × 4096 = 58720256 elements in Q6_K blocks of 256 (210 bytes).
		{ggufgen.Tensor{Name: "blk.0.ffn_down.weight", Dims: []uint64{14336, 4096}, Type: typeQ6_K}, 58720256 / 256 * 210},
		// 4096 × 256 = 1048576 elements in IQ4_XS blocks of 256 (136 bytes).
		{ggufgen.Tensor{Name: "blk.0.ffn_gate.weight", Dims: []uint64{4096, 256}, Type: 23}, 1048576 / 256 * 136},
		// 4096 F32 and 4096 F16 elements.
		{ggufgen.Tensor{Name: "output_norm.weight", Dims: []uint64{4096}, Type: typeF32}, 4096 * 4},
		{ggufgen.Tensor{Name: "blk.0.attn_norm.weight", Dims: []uint64{4096}, Type: typeF16}, 4096 * 2},
	}
	const want = 295501824 + 9437184 + 2359296 + 4456448 + 48168960 + 557056 + 16384 + 8192 // 360505344
	kvs := []ggufgen.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "llama.block_count", Value: uint32(32)},
		{Key: "llama.embedding_length", Value: uint32(4096)},
		{Key: "llama.attention.head_count", Value: uint32(32)},
		{Key: "llama.attention.head_count_kv", Value: uint32(8)},
	}
	p := filepath.Join(t.TempDir(), "m.gguf")
	size := writeSparseGGUF(t, p, 3, kvs, tensors)

	info, err := inspect(t, p)
	require.NoError(t, err)
	require.NotNil(t, info.Memory)
	assert.Equal(t, modelinfo.MemoryHint{WeightsBytes: want, KVBytesPerToken: 131072, KVCacheType: "f16"}, *info.Memory)
	assert.Equal(t, size, info.SizeBytes)
	assert.Equal(t, uint64(525336576+16777216+4194304*2+58720256+1048576+4096*2), info.ParameterCount)
}
