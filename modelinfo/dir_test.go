package modelinfo_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/modelinfo"
)

// llamaConfig is a config.json shaped like Llama 3 8B's.
func llamaConfig() map[string]any {
	return map[string]any{
		"architectures":           []string{"LlamaForCausalLM"},
		"model_type":              "llama",
		"max_position_embeddings": 8192,
		"hidden_size":             4096,
		"num_hidden_layers":       32,
		"num_attention_heads":     32,
		"num_key_value_heads":     8,
		"torch_dtype":             "bfloat16",
	}
}

// writeSafetensorsDir writes a two-shard safetensors model with an index,
// a tokenizer and a chat template into dir.
func writeSafetensorsDir(t *testing.T, dir string) {
	t.Helper()
	writeJSON(t, filepath.Join(dir, "config.json"), llamaConfig())
	writeJSON(t, filepath.Join(dir, "model.safetensors.index.json"), map[string]any{
		"metadata": map[string]any{"total_size": 3000, "total_parameters": 1500},
		"weight_map": map[string]string{
			"model.embed_tokens.weight":          "model-00001-of-00002.safetensors",
			"model.layers.0.self_attn.q_proj":    "model-00001-of-00002.safetensors",
			"model.layers.0.mlp.down_proj":       "model-00002-of-00002.safetensors",
			"lm_head.weight":                     "model-00002-of-00002.safetensors",
			"model.layers.0.input_layernorm.w":   "model-00001-of-00002.safetensors",
			"model.layers.0.post_attention_ln.w": "model-00002-of-00002.safetensors",
		},
	})
	writeFile(t, filepath.Join(dir, "model-00001-of-00002.safetensors"), make([]byte, 2000))
	writeFile(t, filepath.Join(dir, "model-00002-of-00002.safetensors"), make([]byte, 1100))
	writeFile(t, filepath.Join(dir, "tokenizer.json"), []byte(`{"model":{"type":"BPE"}}`))
	writeJSON(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{"chat_template": "{{ messages }}"})
	writeFile(t, filepath.Join(dir, "original", "params.json"), []byte(`{}`))
}

// treeSize returns the size of every file under dir.
func treeSize(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	require.NoError(t, filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			total += fi.Size()
		}
		return err
	}))
	return total
}

func TestInspect_SafetensorsDir(t *testing.T) {
	dir := t.TempDir()
	writeSafetensorsDir(t, dir)

	info, err := inspect(t, dir)
	require.NoError(t, err)
	assert.Equal(t, modelinfo.Info{
		Format:         modelinfo.FormatSafetensors,
		Path:           dir,
		Architecture:   "LlamaForCausalLM",
		CtxMax:         8192,
		FileTypeID:     -1,
		ParameterCount: 1500,
		TensorCount:    6,
		ChatTemplate:   true,
		Shards: []modelinfo.Shard{
			{Path: filepath.Join(dir, "model-00001-of-00002.safetensors"), SizeBytes: 2000},
			{Path: filepath.Join(dir, "model-00002-of-00002.safetensors"), SizeBytes: 1100},
		},
		Tokenizer: dir,
		Memory: &modelinfo.MemoryHint{
			WeightsBytes: 3000, // the index's total_size
			// 2 (K and V) × 32 layers × 8 KV heads × (4096 / 32) × 2 bytes.
			KVBytesPerToken: 2 * 32 * 8 * 128 * 2,
			KVCacheType:     "bf16",
		},
		SizeBytes: treeSize(t, dir),
	}, info)
	assert.Equal(t, modelinfo.EngineVLLM, modelinfo.DefaultEngine(info))
}

func TestInspect_SafetensorsMissingShard(t *testing.T) {
	t.Run("named by the index", func(t *testing.T) {
		dir := t.TempDir()
		writeSafetensorsDir(t, dir)
		require.NoError(t, os.Remove(filepath.Join(dir, "model-00002-of-00002.safetensors")))
		info, err := inspect(t, dir)
		require.ErrorIs(t, err, modelinfo.ErrMissingShard)
		assert.Contains(t, err.Error(), "model-00002-of-00002.safetensors")
		assert.Equal(t, modelinfo.FormatSafetensors, info.Format)
	})
	t.Run("dangling symlink", func(t *testing.T) {
		dir := t.TempDir()
		writeSafetensorsDir(t, dir)
		p := filepath.Join(dir, "model-00001-of-00002.safetensors")
		require.NoError(t, os.Remove(p))
		require.NoError(t, os.Symlink(filepath.Join(dir, "blobs", "gone"), p))
		_, err := inspect(t, dir)
		require.ErrorIs(t, err, modelinfo.ErrMissingShard)
		assert.Contains(t, err.Error(), "model-00001-of-00002.safetensors")
	})
	t.Run("named by shard names, no index", func(t *testing.T) {
		dir := t.TempDir()
		writeJSON(t, filepath.Join(dir, "config.json"), llamaConfig())
		writeFile(t, filepath.Join(dir, "model-00001-of-00003.safetensors"), make([]byte, 10))
		writeFile(t, filepath.Join(dir, "model-00003-of-00003.safetensors"), make([]byte, 10))
		_, err := inspect(t, dir)
		require.ErrorIs(t, err, modelinfo.ErrMissingShard)
		assert.Contains(t, err.Error(), "model-00002-of-00003.safetensors")
	})
	t.Run("index names a file outside the directory", func(t *testing.T) {
		dir := t.TempDir()
		writeJSON(t, filepath.Join(dir, "config.json"), llamaConfig())
		writeJSON(t, filepath.Join(dir, "model.safetensors.index.json"), map[string]any{
			"weight_map": map[string]string{"w": "../../etc/passwd"},
		})
		_, err := inspect(t, dir)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "outside the model directory")
	})
	t.Run("pytorch index", func(t *testing.T) {
		dir := t.TempDir()
		writeJSON(t, filepath.Join(dir, "config.json"), llamaConfig())
		writeJSON(t, filepath.Join(dir, "pytorch_model.bin.index.json"), map[string]any{
			"weight_map": map[string]string{"a": "pytorch_model-00001-of-00002.bin", "b": "pytorch_model-00002-of-00002.bin"},
		})
		writeFile(t, filepath.Join(dir, "pytorch_model-00001-of-00002.bin"), make([]byte, 10))
		info, err := inspect(t, dir)
		require.ErrorIs(t, err, modelinfo.ErrMissingShard)
		assert.Contains(t, err.Error(), "pytorch_model-00002-of-00002.bin")
		assert.Equal(t, modelinfo.FormatDirectory, info.Format)
	})
}

func TestInspect_SafetensorsWithoutIndex(t *testing.T) {
	dir := t.TempDir()
	cfg := llamaConfig()
	delete(cfg, "torch_dtype")
	cfg["max_position_embeddings"] = 4096.0
	writeJSON(t, filepath.Join(dir, "config.json"), cfg)
	writeFile(t, filepath.Join(dir, "model.safetensors"), make([]byte, 500))
	writeFile(t, filepath.Join(dir, "chat_template.jinja"), []byte("{{ messages }}"))

	info, err := inspect(t, dir)
	require.NoError(t, err)
	assert.Equal(t, modelinfo.FormatSafetensors, info.Format)
	assert.Equal(t, int64(4096), info.CtxMax, "4096.0 is an integer too")
	assert.Equal(t, []modelinfo.Shard{{Path: filepath.Join(dir, "model.safetensors"), SizeBytes: 500}}, info.Shards)
	assert.True(t, info.ChatTemplate)
	assert.Empty(t, info.Tokenizer)
	require.NotNil(t, info.Memory)
	assert.Equal(t, int64(500), info.Memory.WeightsBytes, "without an index: the size of the .safetensors files")
	assert.Equal(t, "f16", info.Memory.KVCacheType)
}

func TestInspect_HFConfig(t *testing.T) {
	tests := []struct {
		name   string
		config string
		arch   string
		ctx    int64
		kv     int64
	}{
		{
			name:   "multimodal: text_config",
			config: `{"architectures": ["Gemma3ForConditionalGeneration"], "text_config": {"max_position_embeddings": 131072, "num_hidden_layers": 34, "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "hidden_size": 2560}}`,
			arch:   "Gemma3ForConditionalGeneration", ctx: 131072,
			// 2 × 34 layers × 4 KV heads × 256 × 2 bytes.
			kv: 2 * 34 * 4 * 256 * 2,
		},
		{
			name:   "gpt2 names",
			config: `{"model_type": "gpt2", "n_positions": 1024}`,
			arch:   "gpt2", ctx: 1024,
		},
		{
			name:   "fields of the wrong type are ignored",
			config: `{"architectures": "LlamaForCausalLM", "model_type": 7, "max_position_embeddings": "8192", "max_seq_len": 2048, "text_config": [], "num_hidden_layers": -1}`,
			ctx:    2048,
		},
		{
			name:   "fractional length is ignored",
			config: `{"max_position_embeddings": 8192.5}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "config.json"), []byte(tc.config))
			info, err := inspect(t, dir)
			require.NoError(t, err)
			assert.Equal(t, modelinfo.FormatDirectory, info.Format, "config but no weights")
			assert.Equal(t, tc.arch, info.Architecture)
			assert.Equal(t, tc.ctx, info.CtxMax)
			if tc.kv == 0 {
				assert.Nil(t, info.Memory)
				return
			}
			require.NotNil(t, info.Memory)
			assert.Equal(t, tc.kv, info.Memory.KVBytesPerToken)
		})
	}
}

func TestInspect_BadConfig(t *testing.T) {
	t.Run("not JSON", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "config.json"), []byte(`{"architectures": [`))
		writeFile(t, filepath.Join(dir, "model.safetensors"), make([]byte, 10))
		_, err := inspect(t, dir)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "config.json")
	})
	t.Run("not an object", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "config.json"), []byte(`[1, 2]`))
		_, err := inspect(t, dir)
		require.Error(t, err)
	})
	t.Run("too large", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "config.json")
		writeFile(t, p, []byte(`{}`))
		require.NoError(t, os.Truncate(p, modelinfo.MaxJSONBytes+1))
		_, err := inspect(t, dir)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "larger than")
	})
	t.Run("unreadable tokenizer_config only loses the chat template", func(t *testing.T) {
		dir := t.TempDir()
		writeJSON(t, filepath.Join(dir, "config.json"), llamaConfig())
		writeFile(t, filepath.Join(dir, "model.safetensors"), make([]byte, 10))
		writeFile(t, filepath.Join(dir, "tokenizer_config.json"), []byte(`{"chat_template": `))
		info, err := inspect(t, dir)
		require.NoError(t, err)
		assert.False(t, info.ChatTemplate)
		assert.Equal(t, dir, info.Tokenizer)
	})
}

func TestInspect_Directory(t *testing.T) {
	t.Run("one GGUF file with a tokenizer", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "model.Q4_K_M.gguf")
		size := writeGGUF(t, p, 3, tinyLlamaKVs(), tinyLlamaTensors())
		writeFile(t, filepath.Join(dir, "tokenizer.json"), []byte(`{}`))
		writeFile(t, filepath.Join(dir, "mmproj-f16.gguf"), []byte("projector"))
		info, err := inspect(t, dir)
		require.NoError(t, err)
		assert.Equal(t, modelinfo.FormatGGUF, info.Format)
		assert.Equal(t, p, info.Path)
		assert.Equal(t, size, info.SizeBytes, "the model's bytes, not the directory's")
		assert.Equal(t, dir, info.Tokenizer)
		assert.Equal(t, modelinfo.EngineLlamaCPP, modelinfo.DefaultEngine(info))
	})
	t.Run("two GGUF models", func(t *testing.T) {
		dir := t.TempDir()
		writeGGUF(t, filepath.Join(dir, "a.gguf"), 3, tinyLlamaKVs(), nil)
		writeGGUF(t, filepath.Join(dir, "b.gguf"), 3, tinyLlamaKVs(), nil)
		info, err := inspect(t, dir)
		require.NoError(t, err)
		assert.Equal(t, modelinfo.FormatDirectory, info.Format, "which one to load is not ours to guess")
		assert.Equal(t, modelinfo.EngineGeneric, modelinfo.DefaultEngine(info))
	})
	t.Run("no model files", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "a.bin"), make([]byte, 7))
		writeFile(t, filepath.Join(dir, "sub", "b.bin"), make([]byte, 5))
		info, err := inspect(t, dir)
		require.NoError(t, err)
		assert.Equal(t, modelinfo.Info{Format: modelinfo.FormatDirectory, Path: dir, SizeBytes: 12, FileTypeID: -1}, info)
	})
	t.Run("symlinked files count, symlinked directories are not followed", func(t *testing.T) {
		blobs := t.TempDir()
		writeFile(t, filepath.Join(blobs, "blob1"), make([]byte, 100))
		dir := t.TempDir()
		writeJSON(t, filepath.Join(dir, "config.json"), llamaConfig())
		require.NoError(t, os.Symlink(filepath.Join(blobs, "blob1"), filepath.Join(dir, "model.safetensors")))
		require.NoError(t, os.Symlink(blobs, filepath.Join(dir, "loop")))
		require.NoError(t, os.Symlink(dir, filepath.Join(dir, "self")))
		info, err := inspect(t, dir)
		require.NoError(t, err)
		assert.Equal(t, modelinfo.FormatSafetensors, info.Format)
		assert.Equal(t, 100+fileSize(t, filepath.Join(dir, "config.json")), info.SizeBytes)
		assert.Equal(t, []modelinfo.Shard{{Path: filepath.Join(dir, "model.safetensors"), SizeBytes: 100}}, info.Shards)
	})
	t.Run("too deep", func(t *testing.T) {
		dir := t.TempDir()
		deep := filepath.Join(append([]string{dir}, strings.Split(strings.Repeat("d/", modelinfo.MaxDirDepth+1), "/")...)...)
		writeFile(t, filepath.Join(deep, "x"), []byte("x"))
		_, err := inspect(t, dir)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "deeper")
	})
	t.Run("cancelled", func(t *testing.T) {
		dir := t.TempDir()
		writeSafetensorsDir(t, dir)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := modelinfo.Inspect(ctx, dir)
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestInspect_NotFileOrDirectory(t *testing.T) {
	_, err := inspect(t, os.DevNull)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a model file or directory")
}

func TestParseEngine(t *testing.T) {
	for _, s := range []string{"", "llamacpp", "vllm", "generic"} {
		e, err := modelinfo.ParseEngine(s)
		require.NoError(t, err)
		assert.Equal(t, modelinfo.Engine(s), e)
	}
	_, err := modelinfo.ParseEngine("tgi")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "llamacpp, vllm or generic")
}

func TestDefaultEngine(t *testing.T) {
	tests := map[string]modelinfo.Engine{
		modelinfo.FormatGGUF:        modelinfo.EngineLlamaCPP,
		modelinfo.FormatSafetensors: modelinfo.EngineVLLM,
		modelinfo.FormatDirectory:   modelinfo.EngineGeneric,
		modelinfo.FormatUnknown:     modelinfo.EngineGeneric,
		"":                          modelinfo.EngineGeneric,
	}
	for format, want := range tests {
		assert.Equal(t, want, modelinfo.DefaultEngine(modelinfo.Info{Format: format}), format)
	}
}
