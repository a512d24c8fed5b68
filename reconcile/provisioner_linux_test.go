package reconcile

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/internal/ggufgen"
	"github.com/model-provisioner/model-provisioner/internal/readcount"
	"github.com/model-provisioner/model-provisioner/verify"
)

// TestProvisioner_UnchangedModelReadsZeroBytes proves with the kernel's count
// of bytes read that ensuring an unchanged, verified GGUF model reads none of
// it: not its data, not even its header.
func TestProvisioner_UnchangedModelReadsZeroBytes(t *testing.T) {
	e := newEnv(t)
	p := filepath.Join(e.dir, "big.gguf")
	require.NoError(t, ggufgen.WriteFile(p, 3, []ggufgen.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "llama.context_length", Value: uint32(4096)},
	}, nil))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(make([]byte, 16<<20))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	ref, err := fetch.ParseRef(p, "/")
	require.NoError(t, err)
	ctx := context.Background()
	first, err := e.prov.EnsurePresent(ctx, ref, verify.Digest{})
	require.NoError(t, err)
	require.NotNil(t, first.CtxMax)

	before := readcount.Bytes(t)
	for range 5 {
		m, err := e.prov.EnsurePresent(ctx, ref, verify.Digest{})
		require.NoError(t, err)
		require.False(t, m.Hashed)
		require.NotNil(t, m.CtxMax, "metadata is kept")
	}
	// The catalog index and handoff file are read; the model is not. Five
	// header reads alone (buffered at 64 KiB each) would exceed the bound.
	assert.Less(t, readcount.Bytes(t)-before, int64(64<<10), "five unchanged ensures must not read the model")
}
