package content

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
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
	assert.Contains(t, err.Error(), fmt.Sprint(int64(1<<62)), "the size needed")
	assert.Contains(t, err.Error(), "4.0 EiB", "in units an operator reads")
	assert.Contains(t, err.Error(), "move state_dir", "what to do")
	assert.Regexp(t, `, but \d+ bytes \([0-9.]+ [KMGTPE]?i?B\) are free;`, err.Error())
}

func TestStore_SpaceError(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	assert.NoError(t, s.SpaceError(nil))
	other := errors.New("boom")
	assert.Same(t, other, s.SpaceError(other), "other errors pass through")
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		cause := fmt.Errorf("write download: %w", &fs.PathError{Op: "write", Path: "/x/data", Err: errno})
		err := s.SpaceError(cause)
		assert.ErrorIs(t, err, ErrNoSpace)
		assert.ErrorIs(t, err, errno)
		assert.Contains(t, err.Error(), cause.Error(), "the system error is kept")
		assert.Contains(t, err.Error(), s.Dir())
		assert.Contains(t, err.Error(), "free space")
		assert.Same(t, err, s.SpaceError(err), "explained once")
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 64 << 20: "64.0 MiB", 1 << 62: "4.0 EiB", 1<<64 - 1: "16.0 EiB"} {
		assert.Equal(t, want, humanBytes(n), "%d", n)
	}
}

// TestStore_PlantedSymlinks plants symlinks to a canary directory outside
// the state directory in each place the store writes or deletes, and checks
// that every operation refuses them and leaves the canary alone.
func TestStore_PlantedSymlinks(t *testing.T) {
	canaryFiles := func(t *testing.T, dir string) []string {
		t.Helper()
		var out []string
		require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
			return nil
		}))
		return out
	}
	newCanary := func(t *testing.T) (string, []string) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "passwd"), []byte("root"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, abcSHA256), []byte("abc"), 0o644))
		require.NoError(t, os.MkdirAll(filepath.Join(dir, IngestKey("https://host/abc")), 0o755))
		return dir, canaryFiles(t, dir)
	}
	plant := func(t *testing.T, state, rel, target string) {
		t.Helper()
		p := filepath.Join(state, rel)
		require.NoError(t, os.RemoveAll(p))
		require.NoError(t, os.Symlink(target, p))
	}

	t.Run("ingest dir", func(t *testing.T) {
		state := t.TempDir()
		s, err := Open(state)
		require.NoError(t, err)
		defer s.Close()
		canary, before := newCanary(t)
		plant(t, state, IngestDir, canary)
		_, err = s.OpenIngest(context.Background(), IngestKey("https://host/abc"))
		assert.ErrorIs(t, err, ErrUnsafePath)
		assert.Equal(t, before, canaryFiles(t, canary))
	})
	t.Run("ingest data file", func(t *testing.T) {
		state := t.TempDir()
		s, err := Open(state)
		require.NoError(t, err)
		defer s.Close()
		canary, before := newCanary(t)
		key := IngestKey("https://host/abc")
		require.NoError(t, os.MkdirAll(filepath.Join(state, IngestDir, key), 0o755))
		plant(t, state, filepath.Join(IngestDir, key, "data"), filepath.Join(canary, "passwd"))
		_, err = s.OpenIngest(context.Background(), key)
		assert.ErrorIs(t, err, ErrUnsafePath)
		assert.Equal(t, before, canaryFiles(t, canary))
		raw, err := os.ReadFile(filepath.Join(canary, "passwd"))
		require.NoError(t, err)
		assert.Equal(t, "root", string(raw))
	})
	t.Run("ingest key", func(t *testing.T) {
		s, err := Open(t.TempDir())
		require.NoError(t, err)
		defer s.Close()
		for _, key := range []string{"", ".", "..", "../x", "a/b", "a\x00b"} {
			_, err := s.OpenIngest(context.Background(), key)
			assert.ErrorIs(t, err, ErrUnsafePath, "%q", key)
		}
	})
	t.Run("blobs dir at commit", func(t *testing.T) {
		state := t.TempDir()
		s, err := Open(state)
		require.NoError(t, err)
		defer s.Close()
		canary, before := newCanary(t)
		in, err := s.OpenIngest(context.Background(), IngestKey("https://host/abc"))
		require.NoError(t, err)
		_, err = in.File().WriteAt([]byte("abc"), 0)
		require.NoError(t, err)
		plant(t, state, filepath.Join(BlobsDir, "sha256"), canary)
		_, err = s.Commit(in, abc, 3)
		assert.ErrorIs(t, err, ErrUnsafePath)
		assert.Equal(t, before, canaryFiles(t, canary))
		assert.False(t, s.Has(abc, -1), "a blob seen through a symlink is not stored")
	})
	t.Run("blobs dir at GC", func(t *testing.T) {
		state := t.TempDir()
		s, err := Open(state)
		require.NoError(t, err)
		defer s.Close()
		canary, before := newCanary(t)
		plant(t, state, filepath.Join(BlobsDir, "sha256"), canary)
		n, err := s.GC(nil)
		assert.ErrorIs(t, err, ErrUnsafePath)
		assert.Zero(t, n)
		assert.Equal(t, before, canaryFiles(t, canary))
		_, err = s.Quarantine(abc)
		assert.ErrorIs(t, err, ErrUnsafePath)
		assert.Equal(t, before, canaryFiles(t, canary))
	})
	t.Run("GC keeps what is not a blob", func(t *testing.T) {
		state := t.TempDir()
		s, err := Open(state)
		require.NoError(t, err)
		defer s.Close()
		commitABC(t, s)
		stray := filepath.Join(state, BlobsDir, "sha256", "notes.txt")
		require.NoError(t, os.WriteFile(stray, []byte("x"), 0o644))
		n, err := s.GC(nil)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		assert.FileExists(t, stray)
	})
	t.Run("planted blob symlink is replaced at commit", func(t *testing.T) {
		state := t.TempDir()
		s, err := Open(state)
		require.NoError(t, err)
		defer s.Close()
		canary, before := newCanary(t)
		require.NoError(t, os.Symlink(filepath.Join(canary, abcSHA256), s.BlobPath(abc)))
		assert.False(t, s.Has(abc, -1))
		p := commitABC(t, s)
		fi, err := os.Lstat(p)
		require.NoError(t, err)
		assert.True(t, fi.Mode().IsRegular())
		assert.Equal(t, before, canaryFiles(t, canary))
	})
	t.Run("model dir at prune", func(t *testing.T) {
		state := t.TempDir()
		s, err := Open(state)
		require.NoError(t, err)
		defer s.Close()
		canary, before := newCanary(t)
		plant(t, state, filepath.Join(ModelsDir, "m"), canary)
		assert.ErrorIs(t, s.Prune("m", nil), ErrUnsafePath)
		assert.Equal(t, before, canaryFiles(t, canary))
		require.NoError(t, s.RemoveModel("m"))
		assert.Equal(t, before, canaryFiles(t, canary))
	})
	t.Run("symlink inside a model dir is pruned, not followed", func(t *testing.T) {
		state := t.TempDir()
		s, err := Open(state)
		require.NoError(t, err)
		defer s.Close()
		canary, before := newCanary(t)
		commitABC(t, s)
		_, err = s.Link("m", "a.gguf", abc)
		require.NoError(t, err)
		require.NoError(t, os.Symlink(canary, filepath.Join(state, ModelsDir, "m", "sub")))
		require.NoError(t, s.Prune("m", map[string]bool{"a.gguf": true}))
		assert.NoFileExists(t, filepath.Join(state, ModelsDir, "m", "sub"))
		assert.Equal(t, before, canaryFiles(t, canary))
	})
}
