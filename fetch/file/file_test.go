package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/verify"
)

const abcSHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

func fileRef(t *testing.T, p string) fetch.Ref {
	t.Helper()
	r, err := fetch.ParseRef(p, "/")
	require.NoError(t, err)
	return r
}

func TestFetcher_Fetch(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "m.gguf")
	require.NoError(t, os.WriteFile(file, []byte("abc"), 0o644))
	sub := filepath.Join(dir, "safetensors")
	require.NoError(t, os.MkdirAll(filepath.Join(sub, "nested"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(sub, "a.safetensors"), make([]byte, 10), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(sub, "nested", "b.json"), make([]byte, 5), 0o644))
	good := verify.Digest{Algo: verify.SHA256, Value: abcSHA256}
	bad := verify.Digest{Algo: verify.SHA256, Value: strings.Repeat("0", 64)}

	tests := []struct {
		name      string
		path      string
		expected  verify.Digest
		wantErr   error
		wantSize  int64
		wantIsDir bool
	}{
		{name: "file without digest", path: file, wantSize: 3},
		{name: "file with right digest", path: file, expected: good, wantSize: 3},
		{name: "file with wrong digest", path: file, expected: bad, wantErr: fetch.ErrDigestMismatch},
		{name: "directory", path: sub, wantSize: 15, wantIsDir: true},
		{name: "digest on directory", path: sub, expected: good, wantErr: fetch.ErrDigestOnDirectory},
		{name: "missing", path: filepath.Join(dir, "nope.gguf"), wantErr: fetch.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := New().Fetch(context.Background(), fetch.Request{Ref: fileRef(t, tc.path), Expected: tc.expected})
			if tc.wantErr != nil {
				require.Error(t, err)
				assert.ErrorIs(t, err, tc.wantErr)
				assert.True(t, fetch.IsPermanent(err))
				assert.Contains(t, err.Error(), tc.path)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.path, res.LocalPath)
			assert.Equal(t, tc.wantSize, res.SizeBytes)
			assert.Equal(t, tc.wantIsDir, res.IsDir)
			assert.False(t, res.Owned, "a local model is the user's, never the agent's")
			if !tc.wantIsDir {
				assert.Equal(t, abcSHA256, res.Digest.Value)
				assert.True(t, res.Hashed)
			}
		})
	}
}

func TestFetcher_MismatchNamesBothDigests(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.gguf")
	require.NoError(t, os.WriteFile(p, []byte("abc"), 0o644))
	bad := verify.Digest{Algo: verify.SHA256, Value: strings.Repeat("0", 64)}
	_, err := New().Fetch(context.Background(), fetch.Request{Ref: fileRef(t, p), Expected: bad})
	require.Error(t, err)
	assert.Contains(t, err.Error(), bad.Value)
	assert.Contains(t, err.Error(), abcSHA256)
}

func TestFetcher_MissingSaysNotFound(t *testing.T) {
	p := filepath.Join(t.TempDir(), "absent.gguf")
	_, err := New().Fetch(context.Background(), fetch.Request{Ref: fileRef(t, p)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), p)
	assert.Contains(t, err.Error(), "not found")
}

func TestFetcher_FastPathAndChanges(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.gguf")
	require.NoError(t, os.WriteFile(p, []byte("abc"), 0o644))
	f := New()
	ref := fileRef(t, p)

	first, err := f.Fetch(context.Background(), fetch.Request{Ref: ref})
	require.NoError(t, err)
	require.True(t, first.Hashed)
	known := &fetch.Known{LocalPath: p, Digest: first.Digest, Fingerprint: first.Fingerprint}

	again, err := f.Fetch(context.Background(), fetch.Request{Ref: ref, Known: known})
	require.NoError(t, err)
	assert.False(t, again.Hashed, "unchanged file must not be hashed")
	assert.Equal(t, first.Digest, again.Digest)

	forced, err := f.Fetch(context.Background(), fetch.Request{Ref: ref, Known: known, Reverify: true})
	require.NoError(t, err)
	assert.True(t, forced.Hashed, "reverify hashes whatever the fingerprint says")

	// Same size, new content, written in place: mtime changes.
	require.NoError(t, os.WriteFile(p, []byte("abd"), 0o644))
	changed, err := f.Fetch(context.Background(), fetch.Request{Ref: ref, Known: known})
	require.NoError(t, err)
	assert.True(t, changed.Hashed)
	assert.NotEqual(t, first.Digest, changed.Digest)

	// A known digest that no longer matches the expected one fails without
	// a re-hash when the file is unchanged.
	known = &fetch.Known{LocalPath: p, Digest: changed.Digest, Fingerprint: changed.Fingerprint}
	_, err = f.Fetch(context.Background(), fetch.Request{Ref: ref, Known: known, Expected: first.Digest})
	assert.ErrorIs(t, err, fetch.ErrDigestMismatch)
}

func TestFetcher_SplitGGUFVerifiesEveryShard(t *testing.T) {
	dir := t.TempDir()
	var shards []string
	for i := 1; i <= 3; i++ {
		p := filepath.Join(dir, fmt.Sprintf("llama-%05d-of-00003.gguf", i))
		require.NoError(t, os.WriteFile(p, []byte(strings.Repeat(fmt.Sprint(i), 1000)), 0o644))
		shards = append(shards, p)
	}
	f := New()
	res, err := f.Fetch(context.Background(), fetch.Request{Ref: fileRef(t, shards[0])})
	require.NoError(t, err)
	assert.Equal(t, shards[0], res.LocalPath, "the model is its first shard")
	assert.Equal(t, int64(3000), res.SizeBytes)
	require.Len(t, res.Files, 3)
	for i, fl := range res.Files {
		assert.Equal(t, shards[i], fl.Path)
		assert.False(t, fl.Digest.IsZero(), "every shard is hashed")
	}

	known := &fetch.Known{LocalPath: shards[0], Digest: res.Digest, Fingerprint: res.Fingerprint, Files: res.Files}
	again, err := f.Fetch(context.Background(), fetch.Request{Ref: fileRef(t, shards[0]), Known: known})
	require.NoError(t, err)
	assert.False(t, again.Hashed, "unchanged shards are not hashed again")

	require.NoError(t, os.WriteFile(shards[2], []byte(strings.Repeat("x", 1000)), 0o644))
	changed, err := f.Fetch(context.Background(), fetch.Request{Ref: fileRef(t, shards[0]), Known: known})
	require.NoError(t, err)
	assert.True(t, changed.Hashed)
	assert.NotEqual(t, res.Files[2].Digest, changed.Files[2].Digest)

	require.NoError(t, os.Remove(shards[1]))
	_, err = f.Fetch(context.Background(), fetch.Request{Ref: fileRef(t, shards[0])})
	require.ErrorIs(t, err, fetch.ErrNotFound)
	assert.Contains(t, err.Error(), filepath.Base(shards[1]))

	_, err = f.Fetch(context.Background(), fetch.Request{Ref: fileRef(t, shards[2])})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "00001-of-00003")
}
