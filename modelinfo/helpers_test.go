package modelinfo_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/gguf"
	"github.com/model-provisioner/model-provisioner/internal/ggufgen"
	"github.com/model-provisioner/model-provisioner/modelinfo"
)

// ggml tensor types and general.file_type values used by the fixtures.
const (
	typeF32  = 0
	typeF16  = 1
	typeQ8_0 = 8
	typeQ4_K = 12
	typeQ6_K = 14

	fileTypeQ4_K_M = 15
)

func inspect(t *testing.T, path string) (modelinfo.Info, error) {
	t.Helper()
	return modelinfo.Inspect(context.Background(), path)
}

// sized is a tensor whose data size the test states by hand.
type sized struct {
	ggufgen.Tensor
	bytes uint64
}

// writeSparseGGUF writes a GGUF file whose tensors have no data written:
// offsets are laid out from the stated sizes, and the file is extended
// (sparsely) to the end of the last tensor, as a real model file would be.
// It returns the file's size.
func writeSparseGGUF(t testing.TB, path string, version uint32, kvs []ggufgen.KV, tensors []sized) int64 {
	t.Helper()
	var infos []ggufgen.Tensor
	var off uint64
	for _, s := range tensors {
		s.Tensor.Offset = off
		infos = append(infos, s.Tensor)
		off = (off + s.bytes + ggufgen.DefaultAlignment - 1) / ggufgen.DefaultAlignment * ggufgen.DefaultAlignment
	}
	require.NoError(t, ggufgen.WriteFile(path, version, kvs, infos))
	h, err := gguf.ReadFileWithOptions(path, gguf.Options{TensorInfos: true})
	require.NoError(t, err)
	dataOff, ok := h.DataOffset()
	require.True(t, ok)
	size := dataOff + int64(off)
	if len(tensors) == 0 {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		return fi.Size()
	}
	require.NoError(t, os.Truncate(path, size))
	return size
}

// writeGGUF writes a GGUF file with the tensors' data.
func writeGGUF(t testing.TB, path string, version uint32, kvs []ggufgen.KV, tensors []ggufgen.Tensor) int64 {
	t.Helper()
	require.NoError(t, ggufgen.WriteFile(path, version, kvs, ggufgen.PackTensors(tensors, 0)))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	writeFile(t, path, b)
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}
