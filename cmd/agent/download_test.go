package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch/fetchtest"
	"github.com/model-provisioner/model-provisioner/handoff"
	"github.com/model-provisioner/model-provisioner/internal/testserver/nginx"
	"github.com/model-provisioner/model-provisioner/internal/testserver/s3srv"
)

func hashFile(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

// blobsAreWhole checks that every blob hashes to its own name: a kill never
// leaves unverified bytes at a final path.
func blobsAreWhole(t *testing.T, state string) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(state, content.BlobsDir, "sha256"))
	for _, e := range entries {
		assert.Equal(t, e.Name(), hashFile(t, filepath.Join(state, content.BlobsDir, "sha256", e.Name())))
	}
}

// TestEnsure_ResumesAfterSIGKILL downloads a large file from nginx with the
// real binary, kills it with SIGKILL at 10%, 50% and 90%, and checks that the
// last run completes with the right bytes while the server sent less than
// 1.6 times the file in all.
func TestEnsure_ResumesAfterSIGKILL(t *testing.T) {
	const size = 300 << 20
	root, err := os.MkdirTemp("", "nginx-root-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	data := fetchtest.Data(size)
	digest := fetchtest.DigestOf(data)
	require.NoError(t, os.WriteFile(filepath.Join(root, "big.gguf"), data, 0o644))
	data = nil
	// Four parts at 16 MB/s each: about five seconds in all, slow enough to
	// stop at a chosen point.
	srv := nginx.Start(t, nginx.Options{Root: root, TLS: true, RateLimit: "16m"})
	state := filepath.Join(t.TempDir(), "state")
	env := []string{"SSL_CERT_FILE=" + srv.CAFile, "MODEL_PROVISIONER_STATE_DIR=" + state}
	args := []string{"ensure", srv.FileURL("big.gguf"), "--digest", digest.String(), "--name", "big"}

	for _, at := range []float64{0.10, 0.50, 0.90} {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), env...)
		require.NoError(t, cmd.Start())
		deadline := time.Now().Add(60 * time.Second)
		for fetchtest.IngestProgress(state) < at && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		got := fetchtest.IngestProgress(state)
		t.Logf("killed at %.0f%% (target %.0f%%)", got*100, at*100)
		require.GreaterOrEqual(t, got, at, "the download did not reach %.0f%% in time", at*100)
		blobsAreWhole(t, state)
		assert.NoFileExists(t, filepath.Join(state, "models", "big", "big.gguf"), "nothing at the final path before verification")
	}

	r := runBinary(t, t.TempDir(), env, args...)
	require.Equal(t, 0, r.code, r.stderr)
	blob := filepath.Join(state, content.BlobsDir, "sha256", digest.Value)
	assert.Equal(t, digest.Value, hashFile(t, blob))
	h, err := handoff.Read(filepath.Join(state, "handoff", "big.json"))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(state, "models", "big", "big.gguf"), h.Model.Path)
	assert.Equal(t, "pass", h.Metadata.Verification)

	// The file came in parallel ranged parts: several distinct ranges.
	starts := map[string]bool{}
	for _, req := range srv.Requests("/big.gguf") {
		if req.Range != "" && req.Range != "bytes=0-0" {
			starts[req.Range] = true
		}
	}
	assert.GreaterOrEqual(t, len(starts), 4, "parallel ranged parts")

	sent := srv.BytesSent("/big.gguf")
	t.Logf("server sent %d bytes for a %d-byte file (%.2fx)", sent, size, float64(sent)/size)
	assert.Less(t, sent, int64(size)*16/10, "resumes must not re-download: %s", fmt.Sprint(sent))
	entries, err := os.ReadDir(filepath.Join(state, content.IngestDir))
	require.NoError(t, err)
	assert.Empty(t, entries, "the ingest is gone after commit")
}

// TestEnsure_S3ResumesAfterSIGKILL downloads an object from the S3 server
// with the real binary, configured from nothing but the environment, kills
// it with SIGKILL twice mid-download, and checks the resumed result.
func TestEnsure_S3ResumesAfterSIGKILL(t *testing.T) {
	const size = 160 << 20
	srv := s3srv.Start(t)
	srv.CreateBucket(t, "models")
	data := fetchtest.Data(size)
	digest := fetchtest.DigestOf(data)
	srv.Put(t, "models", "llama/big.gguf", data, nil)
	data = nil
	srv.Throttle("models", "llama/big.gguf", 12<<20)
	state := filepath.Join(t.TempDir(), "state")
	env := []string{
		"MODEL_PROVISIONER_STATE_DIR=" + state,
		"AWS_ENDPOINT_URL=" + srv.Endpoint, "AWS_REGION=" + srv.Region,
		"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey,
	}
	args := []string{"ensure", "s3://models/llama/big.gguf", "--digest", digest.String(), "--name", "big"}
	for _, at := range []float64{0.25, 0.70} {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), env...)
		require.NoError(t, cmd.Start())
		deadline := time.Now().Add(60 * time.Second)
		for fetchtest.IngestProgress(state) < at && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		require.GreaterOrEqual(t, fetchtest.IngestProgress(state), at)
		blobsAreWhole(t, state)
	}
	r := runBinary(t, t.TempDir(), env, args...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, digest.Value, hashFile(t, filepath.Join(state, "models", "big", "big.gguf")))
	sent := srv.BytesServed("models", "llama/big.gguf")
	t.Logf("server sent %d bytes for a %d-byte object (%.2fx)", sent, size, float64(sent)/size)
	assert.Less(t, sent, int64(size)*16/10)
}
