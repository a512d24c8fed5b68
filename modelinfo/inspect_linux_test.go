package modelinfo_test

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/internal/ggufgen"
	"github.com/model-provisioner/model-provisioner/internal/readcount"
)

// TestInspect_ReadsOnlyHeaders inspects GGUF models with 256 MiB of tensor
// data (sparse: nothing is written) and counts the bytes the process reads
// meanwhile: the headers, well under 1% of the files.
func TestInspect_ReadsOnlyHeaders(t *testing.T) {
	const data = 256 << 20
	tokens := make([]string, 32000)
	for i := range tokens {
		tokens[i] = "tok" + strconv.Itoa(i)
	}
	kvs := append(tinyLlamaKVs(), ggufgen.KV{Key: "tokenizer.ggml.scores", Value: make([]float32, len(tokens))},
		ggufgen.KV{Key: "tokenizer.ggml.merges", Value: tokens})
	// 4096 × 16384 F32 elements: exactly 256 MiB.
	big := []sized{{ggufgen.Tensor{Name: "token_embd.weight", Dims: []uint64{4096, 16384}, Type: typeF32}, data}}

	t.Run("single file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "big.gguf")
		size := writeSparseGGUF(t, p, 3, kvs, big)

		before := readcount.Bytes(t)
		info, err := inspect(t, p)
		read := readcount.Bytes(t) - before
		require.NoError(t, err)
		assert.Equal(t, size, info.SizeBytes)
		assert.Equal(t, int64(data), info.Memory.WeightsBytes)
		assert.Less(t, read, size/100, "read %d bytes of a %d-byte model", read, size)
		t.Logf("read %d bytes of a %d-byte model (%.3f%%)", read, size, 100*float64(read)/float64(size))
	})

	t.Run("split set in a directory", func(t *testing.T) {
		dir := t.TempDir()
		var total int64
		for i := range 3 {
			skv := splitKVs(uint16(i), 3, 3)
			if i == 0 {
				skv = append(kvs, skv...)
			}
			tensor := big[0]
			tensor.Name = "t" + strconv.Itoa(i)
			total += writeSparseGGUF(t, filepath.Join(dir, "m-0000"+strconv.Itoa(i+1)+"-of-00003.gguf"), 3, skv, []sized{tensor})
		}

		before := readcount.Bytes(t)
		info, err := inspect(t, dir)
		read := readcount.Bytes(t) - before
		require.NoError(t, err)
		assert.Equal(t, total, info.SizeBytes)
		assert.Len(t, info.Shards, 3)
		assert.Less(t, read, total/100, "read %d bytes of a %d-byte model", read, total)
	})
}
