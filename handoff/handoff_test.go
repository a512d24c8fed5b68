package handoff

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWrite_SeedFieldsAndNullCtx(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "m.json")
	changed, err := Write(p, File{Model: Model{ID: "file:/m.bin", Path: "/m.bin"}, Metadata: Metadata{SizeBytes: 3}})
	require.NoError(t, err)
	assert.True(t, changed)
	var raw map[string]map[string]any
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &raw))
	assert.Equal(t, "file:/m.bin", raw["model"]["id"])
	assert.Equal(t, "/m.bin", raw["model"]["path"])
	assert.Equal(t, 3.0, raw["metadata"]["size_bytes"])
	v, present := raw["metadata"]["ctx_max"]
	assert.True(t, present, "ctx_max is always present")
	assert.Nil(t, v, "and null when unknown")

	changed, err = Write(p, File{Model: Model{ID: "file:/m.bin", Path: "/m.bin"}, Metadata: Metadata{SizeBytes: 3}})
	require.NoError(t, err)
	assert.False(t, changed, "identical content is not rewritten")

	removed, err := Remove(p)
	require.NoError(t, err)
	assert.True(t, removed)
	removed, err = Remove(p)
	require.NoError(t, err)
	assert.False(t, removed)
}

func TestAppendProvenance_ConcurrentLinesStayWhole(t *testing.T) {
	dir := t.TempDir()
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				assert.NoError(t, AppendProvenance(dir, Record{
					Time: time.Unix(int64(i), 0).UTC(), Event: EventActive, ModelID: "file:/m", SizeBytes: int64(w),
					Digest: "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Verification: "pass",
				}))
			}
		}()
	}
	wg.Wait()
	f, err := os.Open(filepath.Join(dir, ProvenanceFile))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var r Record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), "line %d", n)
		n++
	}
	assert.Equal(t, writers*each, n)
}

func TestWrite_RefusesAFileThatIsNotAHandoff(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "passwd")
	require.NoError(t, os.WriteFile(p, []byte("root:x:0:0::/root:/bin/sh\n"), 0o644))
	_, err := Write(p, File{Model: Model{ID: "file:/m", Path: "/m"}})
	require.ErrorIs(t, err, ErrNotHandoff)
	assert.Contains(t, err.Error(), p)
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "root:x:0:0::/root:/bin/sh\n", string(got), "left alone")
	assert.NoFileExists(t, filepath.Join(dir, LockFile), "nothing is created beside it")

	// Another model's handoff and an empty file may be replaced.
	for _, before := range []string{`{"model":{"id":"file:/other","path":"/other"}}`, ""} {
		require.NoError(t, os.WriteFile(p, []byte(before), 0o644))
		changed, err := Write(p, File{Model: Model{ID: "file:/m", Path: "/m"}})
		require.NoError(t, err)
		assert.True(t, changed)
	}
}
