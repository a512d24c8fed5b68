package file

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/fetch"
)

// readChars returns the bytes this process has read through read(2) and
// friends, page cache hits included (rchar in /proc/self/io).
func readChars(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "rchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Skip("no rchar in /proc/self/io")
	return 0
}

// TestFetcher_FastPathReadsNothing proves, with the kernel's own count of
// bytes read, that an unchanged verified file costs no reads of its bytes.
func TestFetcher_FastPathReadsNothing(t *testing.T) {
	const size = 32 << 20
	p := filepath.Join(t.TempDir(), "big.gguf")
	require.NoError(t, os.WriteFile(p, make([]byte, size), 0o644))
	ref := fileRef(t, p)
	f := New()

	before := readChars(t)
	first, err := f.Fetch(context.Background(), fetch.Request{Ref: ref})
	require.NoError(t, err)
	hashedRead := readChars(t) - before
	assert.GreaterOrEqual(t, hashedRead, int64(size), "the first ensure hashes the whole file")

	known := &fetch.Known{LocalPath: p, Digest: first.Digest, Fingerprint: first.Fingerprint}
	before = readChars(t)
	for range 10 {
		res, err := f.Fetch(context.Background(), fetch.Request{Ref: ref, Known: known})
		require.NoError(t, err)
		require.False(t, res.Hashed)
	}
	assert.Less(t, readChars(t)-before, int64(64<<10), "ten fast-path ensures must read none of a 32 MiB file")
}
