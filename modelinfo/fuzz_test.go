package modelinfo_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/model-provisioner/model-provisioner/internal/ggufgen"
	"github.com/model-provisioner/model-provisioner/modelinfo"
)

// FuzzInspect feeds arbitrary bytes to Inspect as a GGUF file and as the
// config.json of a model directory. Inspect must never panic, and what it
// reports without error must be consistent.
func FuzzInspect(f *testing.F) {
	seeds := []struct {
		kvs     []ggufgen.KV
		tensors []ggufgen.Tensor
	}{
		{tinyLlamaKVs(), ggufgen.PackTensors(tinyLlamaTensors(), 0)},
		{append(tinyLlamaKVs(), splitKVs(0, 1, 2)...), ggufgen.PackTensors(tinyLlamaTensors(), 0)},
		{[]ggufgen.KV{
			{Key: "general.architecture", Value: "hybrid"},
			{Key: "hybrid.block_count", Value: uint32(3)},
			{Key: "hybrid.attention.head_count", Value: []uint32{4, 4, 4}},
			{Key: "hybrid.attention.head_count_kv", Value: []uint32{2, 0, 2}},
			{Key: "hybrid.attention.key_length", Value: uint32(8)},
		}, nil},
	}
	for _, s := range seeds {
		b, err := ggufgen.Encode(3, s.kvs, s.tensors)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(`{"architectures": ["LlamaForCausalLM"], "max_position_embeddings": 4096, "num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 64}`))
	f.Add([]byte(`{"text_config": {"max_position_embeddings": 1e300, "head_dim": -4}}`))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "m.gguf")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		info, err := modelinfo.Inspect(context.Background(), p)
		if err == nil {
			checkInfo(t, info)
			switch info.Format {
			case modelinfo.FormatGGUF:
				if len(info.Shards) != 1 || info.Shards[0].Path != p || info.SizeBytes != int64(len(data)) {
					t.Fatalf("one file, but shards %v and size %d", info.Shards, info.SizeBytes)
				}
			case modelinfo.FormatUnknown:
			default:
				t.Fatalf("a file inspected as %q", info.Format)
			}
		}

		cfgDir := filepath.Join(dir, "model")
		if err := os.Mkdir(cfgDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		info, err = modelinfo.Inspect(context.Background(), cfgDir)
		if err == nil {
			checkInfo(t, info)
			if info.Format != modelinfo.FormatDirectory {
				t.Fatalf("a config without weights inspected as %q", info.Format)
			}
		}
	})
}

func checkInfo(t *testing.T, info modelinfo.Info) {
	t.Helper()
	if info.CtxMax < 0 || info.SizeBytes < 0 {
		t.Fatalf("negative length or size: %+v", info)
	}
	if m := info.Memory; m != nil {
		if m.WeightsBytes < 0 || m.KVBytesPerToken < 0 || (m.WeightsBytes == 0 && m.KVBytesPerToken == 0) {
			t.Fatalf("bad memory hint %+v", *m)
		}
		if (m.KVBytesPerToken > 0) != (m.KVCacheType != "") {
			t.Fatalf("cache type %q with %d bytes per token", m.KVCacheType, m.KVBytesPerToken)
		}
	}
	if info.FileType != "" && modelinfo.FileTypeName(info.FileTypeID) != info.FileType {
		t.Fatalf("file type %q for id %d", info.FileType, info.FileTypeID)
	}
}
