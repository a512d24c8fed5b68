package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "index.json")
	require.NoError(t, Write(p, []byte("one"), 0o644))
	require.NoError(t, Write(p, []byte("two"), 0o640))
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "two", string(got))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temp file may remain")
}

func TestWrite_MissingDirLeavesNothing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "missing", "x.json")
	assert.Error(t, Write(p, []byte("x"), 0o644))
}

func TestWriteIfChanged(t *testing.T) {
	p := filepath.Join(t.TempDir(), "h.json")
	changed, err := WriteIfChanged(p, []byte("a"), 0o644)
	require.NoError(t, err)
	assert.True(t, changed)

	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	require.NoError(t, os.Chtimes(p, old, old))
	changed, err = WriteIfChanged(p, []byte("a"), 0o644)
	require.NoError(t, err)
	assert.False(t, changed)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.True(t, fi.ModTime().Equal(old), "an identical write must not touch the file")

	changed, err = WriteIfChanged(p, []byte("b"), 0o644)
	require.NoError(t, err)
	assert.True(t, changed)
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "index.json")
	require.NoError(t, Write(p, []byte("x"), 0o644))
	stale := filepath.Join(dir, ".index.json.tmp-12345")
	other := filepath.Join(dir, ".other.json.tmp-1")
	require.NoError(t, os.WriteFile(stale, []byte("partial"), 0o600))
	require.NoError(t, os.WriteFile(other, []byte("partial"), 0o600))
	assert.True(t, IsTemp(filepath.Base(stale)))
	assert.False(t, IsTemp("index.json"))

	require.NoError(t, RemoveStale(p))
	assert.NoFileExists(t, stale)
	assert.FileExists(t, other, "only temps of the named target are removed")
	assert.FileExists(t, p)
}
