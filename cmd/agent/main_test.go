package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/catalog"
	"github.com/model-provisioner/model-provisioner/handoff"
)

// binary is the model-provisioner built once for the tests that run it as a
// real process.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "model-provisioner-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "model-provisioner")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build model-provisioner:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func runBinary(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

const abcSHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

func TestEnsure_CLI(t *testing.T) {
	work := t.TempDir()
	state := filepath.Join(work, "state")
	require.NoError(t, os.WriteFile(filepath.Join(work, "abc.bin"), []byte("abc"), 0o644))

	r := runBinary(t, work, nil, "ensure", "abc.bin", "--state-dir", state, "--digest", "sha256:"+strings.ToUpper(abcSHA256))
	require.Equal(t, 0, r.code, r.stderr)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &m))
	assert.Equal(t, "file:"+filepath.Join(work, "abc.bin"), m["id"])
	assert.Equal(t, filepath.Join(work, "abc.bin"), m["path"])
	assert.Equal(t, "sha256:"+abcSHA256, m["digest"])
	assert.Equal(t, "pass", m["verification"].(map[string]any)["result"])
	assert.Nil(t, m["ctx_max"])

	h, err := handoff.Read(filepath.Join(state, "handoff", "abc.json"))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(work, "abc.bin"), h.Model.Path)

	// Wrong digest: non-zero exit, one line naming both digests.
	r = runBinary(t, work, nil, "ensure", "./abc.bin", "--state-dir", state, "--digest", "sha256:"+strings.Repeat("0", 64))
	assert.Equal(t, 1, r.code)
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "one-line error, got %q", r.stderr)
	assert.Contains(t, r.stderr, abcSHA256)
	assert.Contains(t, r.stderr, strings.Repeat("0", 64))
	assert.NoFileExists(t, filepath.Join(state, "handoff", "abc.json"), "a failed model's handoff is removed")

	// Missing model.
	r = runBinary(t, work, nil, "ensure", "missing.gguf", "--state-dir", state)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "not found")
	assert.Contains(t, r.stderr, filepath.Join(work, "missing.gguf"))

	// Usage errors exit 2.
	r = runBinary(t, work, nil, "ensure", "--state-dir", state)
	assert.Equal(t, 2, r.code)
	r = runBinary(t, work, nil, "ensure", "abc.bin", "--state-dir", state, "--digest", "md5:900150983cd24fb0d6963f7d28e17f72")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "unknown digest algorithm")
	r = runBinary(t, work, nil, "ensure", "ftp://host/m.gguf", "--state-dir", state)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "unknown scheme")
}

func TestEnsure_StrictWithoutDigestWarns(t *testing.T) {
	work := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(work, "m.bin"), []byte("abc"), 0o644))
	r := runBinary(t, work, []string{"MODEL_PROVISIONER_STATE_DIR=" + filepath.Join(work, "state")}, "ensure", "m.bin", "--strict")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "level=WARN")
	assert.Contains(t, r.stderr, "no expected_digest")
	assert.Contains(t, r.stdout, `"result": "warn"`)
}

func TestCatalog_CLI(t *testing.T) {
	work := t.TempDir()
	state := filepath.Join(work, "state")
	require.NoError(t, os.WriteFile(filepath.Join(work, "m.bin"), []byte("abc"), 0o644))
	require.Equal(t, 0, runBinary(t, work, nil, "ensure", "m.bin", "--state-dir", state).code)

	r := runBinary(t, work, nil, "catalog", "list", "--state-dir", state)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "NAME")
	assert.Contains(t, r.stdout, "Active")

	for _, q := range []string{"m", "m.bin", "file:" + filepath.Join(work, "m.bin")} {
		r = runBinary(t, work, nil, "catalog", "show", q, "--state-dir", state)
		require.Equal(t, 0, r.code, r.stderr)
		var e catalog.Entry
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &e))
		assert.Equal(t, abcSHA256, e.Digest.Value)
	}
	r = runBinary(t, work, nil, "catalog", "show", "nope", "--state-dir", state)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "catalog list")
}

func TestVersionAndHelp(t *testing.T) {
	r := runBinary(t, t.TempDir(), nil, "version")
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "model-provisioner ")
	r = runBinary(t, t.TempDir(), nil, "--help")
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "ensure <model_ref>")
	r = runBinary(t, t.TempDir(), nil, "ensure", "--help")
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.stderr, "--digest")
	r = runBinary(t, t.TempDir(), nil, "frobnicate")
	assert.Equal(t, 2, r.code)
}

// TestEnsure_ConcurrentProcesses runs many real ensure processes on one state
// directory at once: every entry must survive and the index must parse.
func TestEnsure_ConcurrentProcesses(t *testing.T) {
	work := t.TempDir()
	state := filepath.Join(work, "state")
	const n = 16
	for i := range n {
		require.NoError(t, os.WriteFile(filepath.Join(work, fmt.Sprintf("m%02d.bin", i)), []byte(fmt.Sprint(i)), 0o644))
	}
	var wg sync.WaitGroup
	results := make([]result, n*2)
	for i := range n * 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each model is ensured by two processes at once.
			results[i] = runBinary(t, work, nil, "ensure", fmt.Sprintf("m%02d.bin", i%n), "--state-dir", state)
		}()
	}
	wg.Wait()
	for i, r := range results {
		require.Equal(t, 0, r.code, "process %d: %s", i, r.stderr)
	}
	data, err := os.ReadFile(filepath.Join(state, catalog.IndexFile))
	require.NoError(t, err)
	var idx catalog.Index
	require.NoError(t, json.Unmarshal(data, &idx))
	assert.Equal(t, catalog.IndexVersion, idx.Version)
	assert.Len(t, idx.Entries, n)
	for i := range n {
		e, ok := idx.Entries["file:"+filepath.Join(work, fmt.Sprintf("m%02d.bin", i))]
		if assert.True(t, ok, "entry %d", i) {
			assert.Equal(t, catalog.Active, e.Lifecycle)
		}
	}
}
