package file

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/internal/readcount"
	"github.com/model-provisioner/model-provisioner/verify"
)

// TestFetcher_FastPathReadsNothing proves, with the kernel's own count of
// bytes read and the hasher's count of bytes hashed (a file is hashed from
// a mapping, which the kernel does not count as reads), that an unchanged
// verified file costs no reads of its bytes.
func TestFetcher_FastPathReadsNothing(t *testing.T) {
	const size = 32 << 20
	p := filepath.Join(t.TempDir(), "big.gguf")
	require.NoError(t, os.WriteFile(p, make([]byte, size), 0o644))
	ref := fileRef(t, p)
	f := New()

	hashedBefore := verify.HashedBytes()
	first, err := f.Fetch(context.Background(), fetch.Request{Ref: ref})
	require.NoError(t, err)
	require.True(t, first.Hashed)
	assert.GreaterOrEqual(t, verify.HashedBytes()-hashedBefore, int64(size), "the first ensure hashes the whole file")

	known := &fetch.Known{LocalPath: p, Digest: first.Digest, Fingerprint: first.Fingerprint}
	before, hashedBefore := readcount.Bytes(t), verify.HashedBytes()
	for range 10 {
		res, err := f.Fetch(context.Background(), fetch.Request{Ref: ref, Known: known})
		require.NoError(t, err)
		require.False(t, res.Hashed)
	}
	assert.Less(t, readcount.Bytes(t)-before, int64(64<<10), "ten fast-path ensures must read none of a 32 MiB file")
	assert.Zero(t, verify.HashedBytes()-hashedBefore, "ten fast-path ensures hash none of it")
}
