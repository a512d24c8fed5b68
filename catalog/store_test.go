package catalog

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/verify"
)

func entry(id string) Entry {
	return Entry{
		ID: id, Name: filepath.Base(id), Source: "file", LocalPath: id[len("file:"):], SizeBytes: 3,
		Digest:       verify.Digest{Algo: verify.SHA256, Value: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		Verification: verify.Outcome{Result: verify.Pass}, Lifecycle: Active, CreatedMs: 1, UpdatedMs: 1,
	}
}

func TestStore_PutGetList(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)

	_, err = s.Get("file:/m/a.gguf")
	assert.ErrorIs(t, err, ErrNotFound)

	require.NoError(t, s.Put(entry("file:/m/b.gguf")))
	require.NoError(t, s.Put(entry("file:/m/a.gguf")))
	require.NoError(t, s.Put(entry("file:/m/a.gguf")), "put is idempotent")

	got, err := s.Get("file:/m/a.gguf")
	require.NoError(t, err)
	assert.Equal(t, entry("file:/m/a.gguf"), got)

	list, err := s.List()
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "file:/m/a.gguf", list[0].ID, "list is sorted by id")

	ok, err := s.Exists("file:/m/b.gguf")
	require.NoError(t, err)
	assert.True(t, ok)

	// Another Store on the same directory sees the same index.
	s2, err := Open(s.Dir())
	require.NoError(t, err)
	list2, err := s2.List()
	require.NoError(t, err)
	assert.Equal(t, list, list2)
}

func TestStore_SetStateAndLocate(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, s.Put(entry("file:/m/a.gguf")))

	p, ok, err := s.Locate("file:/m/a.gguf")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "/m/a.gguf", p)

	require.NoError(t, s.SetState("file:/m/a.gguf", Retired, 42))
	e, err := s.Get("file:/m/a.gguf")
	require.NoError(t, err)
	assert.Equal(t, Retired, e.Lifecycle)
	assert.Equal(t, int64(42), e.RetiredMs)

	_, ok, err = s.Locate("file:/m/a.gguf")
	require.NoError(t, err)
	assert.False(t, ok, "a retired model is not located")

	_, ok, err = s.Locate("file:/m/none.gguf")
	require.NoError(t, err)
	assert.False(t, ok)

	assert.ErrorIs(t, s.SetState("file:/m/none.gguf", Active, 1), ErrNotFound)
}

func TestStore_DeleteKeepsUserBytes(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.gguf")
	require.NoError(t, os.WriteFile(model, []byte("abc"), 0o644))
	s, err := Open(filepath.Join(dir, "state"))
	require.NoError(t, err)
	require.NoError(t, s.Put(entry("file:"+model)))

	require.NoError(t, s.Delete("file:"+model))
	_, err = s.Get("file:" + model)
	assert.ErrorIs(t, err, ErrNotFound)
	assert.FileExists(t, model, "delete never removes a file: model's bytes")
	assert.ErrorIs(t, s.Delete("file:"+model), ErrNotFound)
}

func TestStore_RefusesBadIndex(t *testing.T) {
	tests := []struct {
		name    string
		content string
		wantErr error
		wantMsg string
	}{
		{"torn", `{"version":1,"entries":{"file:/a":{"id":"fi`, ErrCorruptIndex, "does not parse"},
		{"garbage", "\x00\x01garbage", ErrCorruptIndex, "does not parse"},
		{"empty", "", ErrCorruptIndex, "does not parse"},
		{"no version", `{"entries":{}}`, ErrCorruptIndex, "no \"version\""},
		{"future version", `{"version":7,"entries":{}}`, ErrUnsupportedVersion, "version 7"},
		{"key and id differ", `{"version":1,"entries":{"file:/a":{"id":"file:/b"}}}`, ErrCorruptIndex, "holds id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, IndexFile)
			require.NoError(t, os.WriteFile(p, []byte(tc.content), 0o644))

			_, err := Open(dir)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.wantErr)
			assert.Contains(t, err.Error(), tc.wantMsg)
			assert.Contains(t, err.Error(), p, "the error names the file")

			// A Store opened before the damage must not overwrite it either.
			got, err := os.ReadFile(p)
			require.NoError(t, err)
			assert.Equal(t, tc.content, string(got), "a bad index is never replaced")
		})
	}
}

func TestStore_WriteAfterDamageIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	require.NoError(t, s.Put(entry("file:/m/a.gguf")))
	p := filepath.Join(dir, IndexFile)
	require.NoError(t, os.WriteFile(p, []byte(`{"version":1,"entr`), 0o644))

	err = s.Put(entry("file:/m/b.gguf"))
	assert.ErrorIs(t, err, ErrCorruptIndex)
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, `{"version":1,"entr`, string(got))
}

func TestStore_IndexFormat(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	require.NoError(t, s.Put(entry("file:/m/a.gguf")))
	data, err := os.ReadFile(filepath.Join(dir, IndexFile))
	require.NoError(t, err)
	assert.Contains(t, string(data), `"version": 1`)
	assert.Contains(t, string(data), `"file:/m/a.gguf": {`)
	assert.Contains(t, string(data), `"last_verified_ms"`)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.Contains(t, []string{IndexFile, LockFile}, e.Name(), "no temp files left")
	}
}

func TestStore_ConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	// Several Stores on one directory behave like several processes: each
	// has its own lock descriptor and cache.
	const writers, perWriter = 4, 25
	var wg sync.WaitGroup
	for w := range writers {
		s, err := Open(dir)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				assert.NoError(t, s.Put(entry(fmt.Sprintf("file:/m/%d-%d.gguf", w, i))))
			}
		}()
	}
	wg.Wait()
	s, err := Open(dir)
	require.NoError(t, err)
	list, err := s.List()
	require.NoError(t, err)
	assert.Len(t, list, writers*perWriter, "no writer's entry may be lost")
}

func TestStore_RemovesStaleTempOnWrite(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, ".index.json.tmp-999")
	require.NoError(t, os.WriteFile(stale, []byte("partial"), 0o600))
	s, err := Open(dir)
	require.NoError(t, err)
	require.NoError(t, s.Put(entry("file:/m/a.gguf")))
	assert.NoFileExists(t, stale)
}

func TestSalvage_MovesOnlyACorruptIndexAside(t *testing.T) {
	tests := []struct {
		name    string
		content string
		moved   bool
	}{
		{"torn", `{"version":1,"entries":{"file:/a":{"id":"fi`, true},
		{"garbage", "\x00\x01garbage", true},
		{"empty", "", true},
		{"future version", `{"version":7,"entries":{}}`, false},
		{"fine", `{"version":1,"entries":{}}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, IndexFile)
			require.NoError(t, os.WriteFile(p, []byte(tc.content), 0o644))
			aside, err := Salvage(dir)
			require.NoError(t, err)
			if !tc.moved {
				assert.Empty(t, aside)
				got, err := os.ReadFile(p)
				require.NoError(t, err)
				assert.Equal(t, tc.content, string(got), "an index that is not corrupt stays")
				return
			}
			require.NotEmpty(t, aside)
			assert.NoFileExists(t, p)
			got, err := os.ReadFile(aside)
			require.NoError(t, err)
			assert.Equal(t, tc.content, string(got), "the corrupt index is kept for a post-mortem")
			s, err := Open(dir)
			require.NoError(t, err, "the catalog opens empty after a salvage")
			l, err := s.List()
			require.NoError(t, err)
			assert.Empty(t, l)
		})
	}
	aside, err := Salvage(t.TempDir())
	require.NoError(t, err)
	assert.Empty(t, aside, "no index: nothing to salvage")
}
