package oci

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/fetch/download"
	"github.com/model-provisioner/model-provisioner/fetch/fetchtest"
	"github.com/model-provisioner/model-provisioner/internal/testserver/registry"
	"github.com/model-provisioner/model-provisioner/verify"
)

// Environment of the helper process that TestFetch_ResumesAfterSIGKILL
// kills.
const (
	helperStateEnv = "OCI_TEST_HELPER_STATE"
	helperRefEnv   = "OCI_TEST_HELPER_REF"
)

// resumeOptions download in four parallel parts with frequent
// checkpoints, so a kill loses little.
func resumeOptions() download.Options {
	return download.Options{PartSize: 8 << 20, Parts: 4, Checkpoint: 1 << 20, Stall: 5 * time.Second, RetryBase: 10 * time.Millisecond, Headroom: -1}
}

// TestHelperProcess_fetch is not a test: it is the process that
// TestFetch_ResumesAfterSIGKILL starts and kills.
func TestHelperProcess_fetch(t *testing.T) {
	state := os.Getenv(helperStateEnv)
	if state == "" {
		t.Skip("helper process for TestFetch_ResumesAfterSIGKILL")
	}
	store, err := content.Open(state)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	f, err := New(store, Config{Download: resumeOptions(), DockerConfig: filepath.Join(state, "no-credentials.json")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	r, err := fetch.ParseRef(os.Getenv(helperRefEnv), "/")
	if err == nil {
		_, err = f.Fetch(context.Background(), fetch.Request{Ref: r, Name: "big"})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestFetch_ResumesAfterSIGKILL pulls a large layer from the registry in a
// separate process, kills it with SIGKILL twice mid-download, and checks
// that the last run completes with the right bytes, never put anything
// unverified at a final path, and cost the registry less than 1.5 times the
// layer in all.
func TestFetch_ResumesAfterSIGKILL(t *testing.T) {
	srv := registry.Start(t, registry.Options{})
	const size = 64 << 20
	data := fetchtest.Data(size)
	digest := fetchtest.DigestOf(data)
	repo := newRepo("slowbig")
	srv.Push(t, repo, "v1", registry.File{Name: "big.gguf", Data: data})
	data = nil
	// Four parts at 8 MB/s each: about two seconds in all, slow enough to
	// stop at a chosen point.
	srv.SetRate(repo, 8<<20)
	r := ref(srv, repo, "v1")
	state := filepath.Join(t.TempDir(), "state")
	final := filepath.Join(state, content.ModelsDir, "big", "big.gguf")

	for _, at := range []float64{0.25, 0.60} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess_fetch$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperStateEnv+"="+state, helperRefEnv+"="+r)
		out := &syncOutput{}
		cmd.Stdout, cmd.Stderr = out, out
		require.NoError(t, cmd.Start())
		deadline := time.Now().Add(60 * time.Second)
		for fetchtest.IngestProgress(state) < at && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		got := fetchtest.IngestProgress(state)
		t.Logf("killed at %.0f%% (target %.0f%%)", got*100, at*100)
		require.GreaterOrEqual(t, got, at, "the download did not reach %.0f%% in time; helper said:\n%s", at*100, out.String())
		require.Less(t, got, 1.0, "the download finished before the kill")
		assert.NoFileExists(t, final, "nothing at the final path before verification")
		assert.NoFileExists(t, filepath.Join(state, content.BlobsDir, "sha256", digest.Value))
	}

	store, err := content.Open(state)
	require.NoError(t, err)
	defer store.Close()
	f := newFetcher(t, store, Config{Download: resumeOptions()})
	res, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, r), Name: "big", Expected: digest})
	require.NoError(t, err)
	assert.Equal(t, final, res.LocalPath)
	assert.Equal(t, digest, res.Digest)
	got, _, err := verify.HashFile(context.Background(), final)
	require.NoError(t, err)
	assert.Equal(t, digest, got)

	ranges := map[string]bool{}
	blobs := "/v2/" + repo + "/blobs/"
	for _, req := range srv.WaitRequests(t, blobs, srv.Received(blobs)) {
		if req.Range != "" && req.Range != "bytes=0-0" {
			ranges[req.Range] = true
		}
	}
	assert.GreaterOrEqual(t, len(ranges), 4, "parallel ranged parts, resumed at new offsets")
	sent := srv.BytesSent(digest.String())
	t.Logf("registry sent %d bytes for a %d-byte layer (%.2fx)", sent, size, float64(sent)/size)
	assert.Less(t, sent, int64(size)*15/10, "resumes must not download again what is on disk")
	entries, err := os.ReadDir(filepath.Join(state, content.IngestDir))
	require.NoError(t, err)
	assert.Empty(t, entries, "the ingest is gone after commit")
}

// syncOutput collects a child's output while the test may read it.
type syncOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncOutput) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncOutput) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
