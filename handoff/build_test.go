package handoff_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/handoff"
	"github.com/model-provisioner/model-provisioner/internal/ggufgen"
	"github.com/model-provisioner/model-provisioner/modelinfo"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const testDigest = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

func llamaKVs() []ggufgen.KV {
	return []ggufgen.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.name", Value: "tiny-llama"},
		{Key: "general.file_type", Value: uint32(15)},
		{Key: "llama.context_length", Value: uint32(8192)},
		{Key: "llama.embedding_length", Value: uint32(64)},
		{Key: "llama.block_count", Value: uint32(2)},
		{Key: "llama.attention.head_count", Value: uint32(4)},
		{Key: "llama.attention.head_count_kv", Value: uint32(2)},
		{Key: "tokenizer.ggml.model", Value: "gpt2"},
		{Key: "tokenizer.ggml.tokens", Value: []string{"<s>", "</s>", "a"}},
		{Key: "tokenizer.chat_template", Value: "{{ messages }}"},
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	writeFile(t, path, b)
}

// splitGGUFModel writes a three-shard GGUF model and returns the first
// shard.
func splitGGUFModel(t *testing.T, dir string) string {
	t.Helper()
	shards := [][]ggufgen.Tensor{
		{{Name: "token_embd.weight", Dims: []uint64{64, 8}, Type: 8, Data: make([]byte, 544)}},
		{{Name: "blk.0.attn_norm.weight", Dims: []uint64{64}, Type: 0, Data: make([]byte, 256)}},
		{{Name: "output.weight", Dims: []uint64{64, 4}, Type: 8, Data: make([]byte, 272)}},
	}
	for i, tensors := range shards {
		kvs := []ggufgen.KV{
			{Key: "split.no", Value: uint16(i)},
			{Key: "split.count", Value: uint16(3)},
			{Key: "split.tensors.count", Value: int32(3)},
		}
		if i == 0 {
			kvs = append(llamaKVs(), kvs...)
		}
		p := filepath.Join(dir, fmt.Sprintf("tiny-llama-%05d-of-00003.gguf", i+1))
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, ggufgen.WriteFile(p, 3, kvs, ggufgen.PackTensors(tensors, 0)))
	}
	return filepath.Join(dir, "tiny-llama-00001-of-00003.gguf")
}

// safetensorsModel writes a two-shard Transformers model directory.
func safetensorsModel(t *testing.T, dir string) {
	t.Helper()
	writeJSON(t, filepath.Join(dir, "config.json"), map[string]any{
		"architectures":           []string{"LlamaForCausalLM"},
		"max_position_embeddings": 131072,
		"hidden_size":             4096,
		"num_hidden_layers":       32,
		"num_attention_heads":     32,
		"num_key_value_heads":     8,
		"torch_dtype":             "bfloat16",
	})
	writeJSON(t, filepath.Join(dir, "model.safetensors.index.json"), map[string]any{
		"metadata": map[string]any{"total_size": 3000},
		"weight_map": map[string]string{
			"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
			"lm_head.weight":            "model-00002-of-00002.safetensors",
		},
	})
	writeFile(t, filepath.Join(dir, "model-00001-of-00002.safetensors"), make([]byte, 2000))
	writeFile(t, filepath.Join(dir, "model-00002-of-00002.safetensors"), make([]byte, 1100))
	writeFile(t, filepath.Join(dir, "tokenizer.json"), []byte(`{}`))
	writeJSON(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{"chat_template": "{{ messages }}"})
}

// ggufDirModel writes a directory holding one GGUF file and a tokenizer,
// as a download of a few files of a repository leaves it.
func ggufDirModel(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	tensors := []ggufgen.Tensor{{Name: "token_embd.weight", Dims: []uint64{64, 8}, Type: 8, Data: make([]byte, 544)}}
	require.NoError(t, ggufgen.WriteFile(filepath.Join(dir, "tiny.Q4_K_M.gguf"), 2, llamaKVs(), ggufgen.PackTensors(tensors, 0)))
	writeFile(t, filepath.Join(dir, "tokenizer_config.json"), []byte(`{}`))
}

type goldenCase struct {
	golden string
	engine modelinfo.Engine
	reg    func(dir string) handoff.Registration
	setup  func(t *testing.T, dir string) string // returns the registered path
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{
			golden: "llamacpp.golden.json",
			engine: "", // from the format: gguf
			setup: func(t *testing.T, dir string) string {
				return splitGGUFModel(t, filepath.Join(dir, "models"))
			},
			reg: func(dir string) handoff.Registration {
				p := filepath.Join(dir, "models", "tiny-llama-00001-of-00003.gguf")
				return handoff.Registration{ID: "file:" + p, Name: "tiny-llama", Path: p, Digest: testDigest, Verification: "pass"}
			},
		},
		{
			golden: "vllm.golden.json",
			engine: "", // from the format: safetensors
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "models", "llama-3-8b")
				safetensorsModel(t, p)
				return p
			},
			reg: func(dir string) handoff.Registration {
				return handoff.Registration{
					ID: "hf:meta-llama/Meta-Llama-3-8B@8cde5ca8380496c9a6cc7ef3a8b46a0372a1d920", Name: "llama-3-8b",
					Path: filepath.Join(dir, "models", "llama-3-8b"), Verification: "warn",
				}
			},
		},
		{
			golden: "generic.golden.json",
			engine: modelinfo.EngineGeneric,
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "models", "tiny")
				ggufDirModel(t, p)
				return p
			},
			reg: func(dir string) handoff.Registration {
				return handoff.Registration{
					ID: "oci://registry.example/models/tiny:q4", Name: "tiny",
					Path: filepath.Join(dir, "models", "tiny"), Verification: "warn",
				}
			},
		},
	}
}

// TestBuild_Golden builds the handoff document of each engine from models
// written to disk and compares it with testdata/<engine>.golden.json, the
// temporary directory replaced by $DIR. Run with -update to rewrite them.
func TestBuild_Golden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.golden, func(t *testing.T) {
			dir := t.TempDir()
			path := tc.setup(t, dir)
			info, err := modelinfo.Inspect(context.Background(), path)
			require.NoError(t, err)

			f := handoff.Build(tc.engine, tc.reg(dir), info)
			out := filepath.Join(dir, "handoff", "m.json")
			changed, err := handoff.Write(out, f)
			require.NoError(t, err)
			require.True(t, changed)
			got, err := os.ReadFile(out)
			require.NoError(t, err)
			got = bytes.ReplaceAll(got, []byte(dir), []byte("$DIR"))

			golden := filepath.Join("testdata", tc.golden)
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "create it with: go test ./handoff -run TestBuild_Golden -update")
			assert.Equal(t, string(want), string(got))

			back, err := handoff.Read(out)
			require.NoError(t, err)
			assert.Equal(t, f, back, "the document reads back as written")
		})
	}
}

func TestBuild_ModelPath(t *testing.T) {
	dir := t.TempDir()
	split := splitGGUFModel(t, filepath.Join(dir, "split"))
	safetensorsDir := filepath.Join(dir, "st")
	safetensorsModel(t, safetensorsDir)
	ggufDir := filepath.Join(dir, "ggufdir")
	ggufDirModel(t, ggufDir)
	ggufFile := filepath.Join(ggufDir, "tiny.Q4_K_M.gguf")

	tests := []struct {
		name      string
		path      string
		engine    modelinfo.Engine
		wantPath  string
		wantTok   string
		wantShard int
	}{
		{"split GGUF for llama.cpp", split, modelinfo.EngineLlamaCPP, split, "", 3},
		{"split GGUF for vLLM", split, modelinfo.EngineVLLM, split, "", 3},
		{"GGUF file for llama.cpp", ggufFile, "", ggufFile, "", 1},
		{"GGUF file for vLLM: the tokenizer beside it", ggufFile, modelinfo.EngineVLLM, ggufFile, ggufDir, 1},
		{"GGUF directory for llama.cpp: the file in it", ggufDir, "", ggufFile, "", 1},
		{"GGUF directory for vLLM", ggufDir, modelinfo.EngineVLLM, ggufFile, ggufDir, 1},
		{"GGUF directory for generic: as registered", ggufDir, modelinfo.EngineGeneric, ggufDir, "", 1},
		{"GGUF file for generic: its tokenizer", ggufFile, modelinfo.EngineGeneric, ggufFile, ggufDir, 1},
		{"safetensors for vLLM: the directory, which is its own tokenizer", safetensorsDir, "", safetensorsDir, "", 2},
		{"safetensors for generic", safetensorsDir, modelinfo.EngineGeneric, safetensorsDir, "", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := modelinfo.Inspect(context.Background(), tc.path)
			require.NoError(t, err)
			f := handoff.Build(tc.engine, handoff.Registration{ID: "file:" + tc.path, Path: tc.path}, info)
			assert.Equal(t, tc.wantPath, f.Model.Path)
			assert.Equal(t, tc.wantTok, f.Model.Tokenizer)
			assert.Len(t, f.Metadata.Shards, tc.wantShard)
			assert.Equal(t, handoff.SchemaVersion, f.SchemaVersion)
			want := tc.engine
			if want == "" {
				want = modelinfo.DefaultEngine(info)
			}
			assert.Equal(t, string(want), f.Engine)
			assert.Equal(t, "file:"+tc.path, f.Model.ID, "the id is the registered reference whatever the path")
		})
	}
}

// TestBuild_SeedFields checks that the seed's four fields are present in
// every form, with ctx_max null when unknown.
func TestBuild_SeedFields(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "weights.bin")
	writeFile(t, unknown, []byte("not a known format"))
	info, err := modelinfo.Inspect(context.Background(), unknown)
	require.NoError(t, err)

	for _, in := range []modelinfo.Info{{}, info} {
		for _, engine := range []modelinfo.Engine{"", modelinfo.EngineLlamaCPP, modelinfo.EngineVLLM, modelinfo.EngineGeneric} {
			f := handoff.Build(engine, handoff.Registration{ID: "file:" + unknown, Path: unknown, SizeBytes: 18}, in)
			data, err := handoff.Encode(f)
			require.NoError(t, err)
			var raw struct {
				Model    map[string]any `json:"model"`
				Metadata map[string]any `json:"metadata"`
			}
			require.NoError(t, json.Unmarshal(data, &raw))
			assert.Equal(t, "file:"+unknown, raw.Model["id"])
			assert.Equal(t, unknown, raw.Model["path"])
			assert.Equal(t, 18.0, raw.Metadata["size_bytes"])
			v, ok := raw.Metadata["ctx_max"]
			assert.True(t, ok, "ctx_max is always present")
			assert.Nil(t, v)
			assert.NotContains(t, raw.Metadata, "chat_template", "an unknown format says nothing about templates")
		}
	}
}

func TestBuild_UnknownEngineIsGeneric(t *testing.T) {
	f := handoff.Build("tgi", handoff.Registration{ID: "file:/m", Path: "/m"}, modelinfo.Info{Format: modelinfo.FormatGGUF, Path: "/m/x.gguf"})
	assert.Equal(t, string(modelinfo.EngineGeneric), f.Engine)
	assert.Equal(t, "/m", f.Model.Path)
}
