package content

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/verify"
)

const abcSHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

var abc = verify.Digest{Algo: verify.SHA256, Value: abcSHA256}

func commitABC(t *testing.T, s *Store) string {
	t.Helper()
	in, err := s.OpenIngest(context.Background(), IngestKey("https://host/abc"))
	require.NoError(t, err)
	_, err = in.File().WriteAt([]byte("abc"), 0)
	require.NoError(t, err)
	p, err := s.Commit(in, abc, 3)
	require.NoError(t, err)
	return p
}

func TestStore_CommitLinkGC(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	defer s.Close()

	p := commitABC(t, s)
	assert.Equal(t, filepath.Join(dir, "blobs", "sha256", abcSHA256), p)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o444), fi.Mode().Perm(), "blobs are read-only")
	assert.True(t, s.Has(abc, 3))
	assert.False(t, s.Has(abc, 4))
	entries, err := os.ReadDir(filepath.Join(dir, IngestDir))
	require.NoError(t, err)
	assert.Empty(t, entries, "a committed ingest is gone")

	lp, err := s.Link("llama", "sub/model.gguf", abc)
	require.NoError(t, err)
	li, err := os.Stat(lp)
	require.NoError(t, err)
	assert.True(t, os.SameFile(fi, li), "models/ holds hard links to blobs, not copies")
	_, err = s.Link("llama", "sub/model.gguf", abc)
	require.NoError(t, err, "linking again is idempotent")

	n, err := s.GC(nil)
	require.NoError(t, err)
	assert.Zero(t, n, "a linked blob is kept")
	require.NoError(t, s.RemoveModel("llama"))
	n, err = s.GC(map[string]bool{abc.String(): true})
	require.NoError(t, err)
	assert.Zero(t, n, "a referenced blob is kept")
	n, err = s.GC(nil)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.False(t, s.Has(abc, -1))
}

func TestStore_CommitTwiceKeepsOne(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	commitABC(t, s)
	commitABC(t, s)
	assert.True(t, s.Has(abc, 3))
}

func TestCheckRel(t *testing.T) {
	good := []string{"model.gguf", "a/b/c.safetensors", "tokenizer.json"}
	bad := []string{"", "../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a/./b", "..", "a\x00b", `..\x`, "a/"}
	for _, g := range good {
		got, err := CheckRel(g)
		assert.NoError(t, err, g)
		assert.Equal(t, g, got)
	}
	for _, b := range bad {
		_, err := CheckRel(b)
		assert.ErrorIs(t, err, ErrUnsafePath, "%q", b)
	}
}

func TestStore_LinkRefusesPlantedSymlink(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	commitABC(t, s)
	canary := t.TempDir()
	require.NoError(t, os.Symlink(canary, filepath.Join(dir, ModelsDir, "evil")))
	_, err = s.Link("evil", "x.gguf", abc)
	assert.ErrorIs(t, err, ErrUnsafePath)
	entries, err := os.ReadDir(canary)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written through the symlink")

	require.NoError(t, os.MkdirAll(filepath.Join(dir, ModelsDir, "m"), 0o755))
	require.NoError(t, os.Symlink(canary, filepath.Join(dir, ModelsDir, "m", "sub")))
	_, err = s.Link("m", "sub/x.gguf", abc)
	assert.ErrorIs(t, err, ErrUnsafePath)
}

func TestIngest_ResumeStateSurvivesReopen(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	key := IngestKey("https://host/big")
	in, err := s.OpenIngest(context.Background(), key)
	require.NoError(t, err)
	require.NoError(t, in.Reset(IngestState{Size: 10, ETag: `"x"`, Parts: []Part{{Start: 0, End: 10}}}))
	_, err = in.File().WriteAt([]byte("hello"), 0)
	require.NoError(t, err)
	in.State.Parts[0].Done = 5
	require.NoError(t, in.Save())
	require.NoError(t, in.Close())

	again, err := s.OpenIngest(context.Background(), key)
	require.NoError(t, err)
	defer again.Close()
	assert.Equal(t, int64(5), again.Done())
	assert.Equal(t, `"x"`, again.State.ETag)
}

func TestIngest_LockWaitsForHolder(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	key := IngestKey("k")
	in, err := s.OpenIngest(context.Background(), key)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.OpenIngest(ctx, key)
	assert.ErrorIs(t, err, context.Canceled, "a held ingest is not opened twice")
	require.NoError(t, in.Close())
	in2, err := s.OpenIngest(context.Background(), key)
	require.NoError(t, err)
	require.NoError(t, in2.Close())
}

func TestStore_Preflight(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	assert.NoError(t, s.Preflight(1, 0))
	err = s.Preflight(1<<62, 0)
	assert.ErrorIs(t, err, ErrNoSpace)
	assert.Contains(t, err.Error(), "free")
}
