package modelinfo_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/internal/ggufgen"
	"github.com/model-provisioner/model-provisioner/modelinfo"
)

// splitKVs is what the split tool writes in every shard.
func splitKVs(no, count uint16, tensors int32) []ggufgen.KV {
	return []ggufgen.KV{
		{Key: "split.no", Value: no},
		{Key: "split.count", Value: count},
		{Key: "split.tensors.count", Value: tensors},
	}
}

// splitShardTensors holds the tensors of each of three shards:
// 544 + (256 + 128) + 272 = 1200 bytes and 512 + (64 + 64) + 256 = 896
// parameters in all.
func splitShardTensors() [][]ggufgen.Tensor {
	return [][]ggufgen.Tensor{
		{{Name: "token_embd.weight", Dims: []uint64{64, 8}, Type: typeQ8_0, Data: make([]byte, 544)}},
		{
			{Name: "blk.0.attn_norm.weight", Dims: []uint64{64}, Type: typeF32, Data: make([]byte, 256)},
			{Name: "blk.1.attn_norm.weight", Dims: []uint64{64}, Type: typeF16, Data: make([]byte, 128)},
		},
		{{Name: "output.weight", Dims: []uint64{64, 4}, Type: typeQ8_0, Data: make([]byte, 272)}},
	}
}

// writeSplit writes the three shards of model-0000i-of-00003.gguf into dir
// and returns their paths and sizes. edit, when set, may change each
// shard's metadata.
func writeSplit(t *testing.T, dir string, edit func(i int, kvs []ggufgen.KV) []ggufgen.KV) ([]string, []int64) {
	t.Helper()
	var paths []string
	var sizes []int64
	for i, tensors := range splitShardTensors() {
		kvs := splitKVs(uint16(i), 3, 4)
		if i == 0 {
			kvs = append(tinyLlamaKVs(), kvs...)
		}
		if edit != nil {
			kvs = edit(i, kvs)
		}
		p := filepath.Join(dir, fmt.Sprintf("model-%05d-of-00003.gguf", i+1))
		sizes = append(sizes, writeGGUF(t, p, 3, kvs, tensors))
		paths = append(paths, p)
	}
	return paths, sizes
}

func TestInspect_SplitGGUF(t *testing.T) {
	dir := t.TempDir()
	paths, sizes := writeSplit(t, dir, nil)
	want := modelinfo.Info{
		Format:         modelinfo.FormatGGUF,
		Path:           paths[0],
		Architecture:   "llama",
		CtxMax:         8192,
		FileType:       "Q4_K_M",
		FileTypeID:     fileTypeQ4_K_M,
		ParameterCount: 896,
		TensorCount:    4,
		TokenizerModel: "gpt2",
		ChatTemplate:   true,
		GGUFVersion:    3,
		Shards: []modelinfo.Shard{
			{Path: paths[0], SizeBytes: sizes[0]},
			{Path: paths[1], SizeBytes: sizes[1]},
			{Path: paths[2], SizeBytes: sizes[2]},
		},
		Memory:    &modelinfo.MemoryHint{WeightsBytes: 1200, KVBytesPerToken: 256, KVCacheType: "f16"},
		SizeBytes: sizes[0] + sizes[1] + sizes[2],
	}

	t.Run("first shard", func(t *testing.T) {
		info, err := inspect(t, paths[0])
		require.NoError(t, err)
		assert.Equal(t, want, info)
	})
	t.Run("directory", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "README.md"), []byte("# model\n"))
		writeFile(t, filepath.Join(dir, "mmproj-model-f16.gguf"), []byte("GGUF projector, ignored"))
		defer os.Remove(filepath.Join(dir, "README.md"))
		defer os.Remove(filepath.Join(dir, "mmproj-model-f16.gguf"))
		info, err := inspect(t, dir)
		require.NoError(t, err)
		assert.Equal(t, want, info, "a directory holding one split set is that model")
	})
	for i := 1; i < 3; i++ {
		t.Run(fmt.Sprintf("shard %d", i+1), func(t *testing.T) {
			_, err := inspect(t, paths[i])
			require.ErrorIs(t, err, modelinfo.ErrNotFirstShard)
			assert.Contains(t, err.Error(), "model-00001-of-00003.gguf", "the error names the shard to use")
		})
	}
}

func TestInspect_SplitGGUFMissingShard(t *testing.T) {
	tests := []struct {
		name   string
		remove []int
		via    string // "first" or "dir"
		want   []string
	}{
		{"last", []int{2}, "first", []string{"model-00003-of-00003.gguf"}},
		{"two", []int{1, 2}, "first", []string{"model-00002-of-00003.gguf", "model-00003-of-00003.gguf"}},
		{"last via directory", []int{2}, "dir", []string{"model-00003-of-00003.gguf"}},
		{"first via directory", []int{0}, "dir", []string{"model-00001-of-00003.gguf"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			paths, _ := writeSplit(t, dir, nil)
			for _, i := range tc.remove {
				require.NoError(t, os.Remove(paths[i]))
			}
			target := paths[0]
			if tc.via == "dir" {
				target = dir
			}
			info, err := inspect(t, target)
			require.ErrorIs(t, err, modelinfo.ErrMissingShard)
			assert.Equal(t, modelinfo.FormatGGUF, info.Format)
			for _, name := range tc.want {
				assert.Contains(t, err.Error(), name)
			}
		})
	}

	t.Run("a directory in place of a shard", func(t *testing.T) {
		dir := t.TempDir()
		paths, _ := writeSplit(t, dir, nil)
		require.NoError(t, os.Remove(paths[1]))
		require.NoError(t, os.Mkdir(paths[1], 0o755))
		_, err := inspect(t, paths[0])
		require.ErrorIs(t, err, modelinfo.ErrMissingShard)
	})

	t.Run("renamed first shard", func(t *testing.T) {
		dir := t.TempDir()
		paths, _ := writeSplit(t, dir, nil)
		renamed := filepath.Join(dir, "model.gguf")
		require.NoError(t, os.Rename(paths[0], renamed))
		_, err := inspect(t, renamed)
		require.ErrorIs(t, err, modelinfo.ErrMissingShard, "the header says 3 shards; the others cannot be found from this name")
		assert.Contains(t, err.Error(), "-00001-of-00003.gguf")
	})
}

func TestInspect_SplitGGUFMismatch(t *testing.T) {
	set := func(key string, value any) func(int, []ggufgen.KV) []ggufgen.KV {
		return func(_ int, kvs []ggufgen.KV) []ggufgen.KV {
			for i := range kvs {
				if kvs[i].Key == key {
					kvs[i].Value = value
				}
			}
			return kvs
		}
	}
	onShard := func(n int, f func(int, []ggufgen.KV) []ggufgen.KV) func(int, []ggufgen.KV) []ggufgen.KV {
		return func(i int, kvs []ggufgen.KV) []ggufgen.KV {
			if i != n {
				return kvs
			}
			return f(i, kvs)
		}
	}
	tests := []struct {
		name string
		edit func(int, []ggufgen.KV) []ggufgen.KV
		want error
	}{
		{"count in every header differs from the names", set("split.count", uint16(4)), modelinfo.ErrShardMismatch},
		{"count in the second shard differs", onShard(1, set("split.count", uint16(2))), modelinfo.ErrShardMismatch},
		{"second shard says it is the third", onShard(1, set("split.no", uint16(2))), modelinfo.ErrShardMismatch},
		{"first shard says it is the second", onShard(0, set("split.no", uint16(1))), modelinfo.ErrNotFirstShard},
		{"tensor total differs", onShard(0, set("split.tensors.count", int32(5))), modelinfo.ErrShardMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			paths, _ := writeSplit(t, dir, tc.edit)
			_, err := inspect(t, paths[0])
			require.ErrorIs(t, err, tc.want)
		})
	}

	t.Run("shard is not GGUF", func(t *testing.T) {
		dir := t.TempDir()
		paths, _ := writeSplit(t, dir, nil)
		writeFile(t, paths[2], []byte("not a model"))
		_, err := inspect(t, paths[0])
		require.ErrorIs(t, err, modelinfo.ErrShardMismatch)
		assert.Contains(t, err.Error(), "model-00003-of-00003.gguf")
	})

	t.Run("truncated shard", func(t *testing.T) {
		dir := t.TempDir()
		paths, sizes := writeSplit(t, dir, nil)
		require.NoError(t, os.Truncate(paths[2], sizes[2]-100))
		_, err := inspect(t, paths[0])
		require.ErrorIs(t, err, modelinfo.ErrTruncated)
		assert.Contains(t, err.Error(), "model-00003-of-00003.gguf")
	})
}

func TestInspect_SingleShardSet(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m-00001-of-00001.gguf")
	writeGGUF(t, p, 3, append(tinyLlamaKVs(), splitKVs(0, 1, 2)...), tinyLlamaTensors())
	info, err := inspect(t, p)
	require.NoError(t, err)
	assert.Len(t, info.Shards, 1)
}
