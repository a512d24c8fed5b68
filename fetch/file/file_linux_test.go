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
)

// TestFetcher_FastPathReadsNothing proves, with the kernel's own count of
// bytes read, that an unchanged verified file costs no reads of its bytes.
func TestFetcher_FastPathReadsNothing(t *testing.T) {
	const size = 32 << 20
	p := filepath.Join(t.TempDir(), "big.gguf")
	require.NoError(t, os.WriteFile(p, make([]byte, size), 0o644))
	ref := fileRef(t, p)
	f := New()

	before := readcount.Bytes(t)
	first, err := f.Fetch(context.Background(), fetch.Request{Ref: ref})
	require.NoError(t, err)
	hashedRead := readcount.Bytes(t) - before
	assert.GreaterOrEqual(t, hashedRead, int64(size), "the first ensure hashes the whole file")

	known := &fetch.Known{LocalPath: p, Digest: first.Digest, Fingerprint: first.Fingerprint}
	before = readcount.Bytes(t)
	for range 10 {
		res, err := f.Fetch(context.Background(), fetch.Request{Ref: ref, Known: known})
		require.NoError(t, err)
		require.False(t, res.Hashed)
	}
	assert.Less(t, readcount.Bytes(t)-before, int64(64<<10), "ten fast-path ensures must read none of a 32 MiB file")
}
