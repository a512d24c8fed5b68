package reconcile

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/catalog"
	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	filefetch "github.com/model-provisioner/model-provisioner/fetch/file"
	"github.com/model-provisioner/model-provisioner/handoff"
	"github.com/model-provisioner/model-provisioner/internal/ggufgen"
	"github.com/model-provisioner/model-provisioner/verify"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

const abcSHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

// countingFetcher wraps a fetcher and counts calls and hashes.
type countingFetcher struct {
	inner  fetch.Fetcher
	calls  atomic.Int64
	hashes atomic.Int64
	delay  time.Duration
}

func (c *countingFetcher) Fetch(ctx context.Context, req fetch.Request) (fetch.Result, error) {
	c.calls.Add(1)
	time.Sleep(c.delay)
	res, err := c.inner.Fetch(ctx, req)
	if res.Hashed {
		c.hashes.Add(1)
	}
	return res, err
}

type env struct {
	dir     string
	cat     *catalog.Store
	prov    *Provisioner
	fetcher *countingFetcher
	logs    *bytes.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	cat, err := catalog.Open(filepath.Join(dir, "state"))
	require.NoError(t, err)
	cf := &countingFetcher{inner: filefetch.New()}
	reg := fetch.NewRegistry()
	reg.Register(fetch.SchemeFile, cf)
	logs := &bytes.Buffer{}
	prov, err := NewProvisioner(ProvisionerConfig{
		Catalog: cat, Fetchers: reg, HandoffDir: filepath.Join(dir, "handoff"),
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, nil)),
		Now:    func() time.Time { return time.UnixMilli(1_700_000_000_000) },
	})
	require.NoError(t, err)
	return &env{dir: dir, cat: cat, prov: prov, fetcher: cf, logs: logs}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (e *env) file(t *testing.T, name, content string) fetch.Ref {
	t.Helper()
	p := filepath.Join(e.dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	ref, err := fetch.ParseRef(p, "/")
	require.NoError(t, err)
	return ref
}

func TestProvisioner_EnsureTwiceHashesOnce(t *testing.T) {
	e := newEnv(t)
	ref := e.file(t, "abc.bin", "abc")
	ctx := context.Background()

	m1, err := e.prov.EnsurePresent(ctx, ref, verify.Digest{})
	require.NoError(t, err)
	m2, err := e.prov.EnsurePresent(ctx, ref, verify.Digest{})
	require.NoError(t, err)

	assert.Equal(t, m1.ID, m2.ID)
	assert.True(t, m1.Hashed)
	assert.False(t, m2.Hashed)
	assert.Equal(t, int64(1), e.fetcher.hashes.Load(), "an unchanged file is hashed once")
	list, err := e.cat.List()
	require.NoError(t, err)
	require.Len(t, list, 1, "one index entry")
	assert.Equal(t, "sha256:"+abcSHA256, list[0].Digest.String())
	assert.Equal(t, verify.Warn, list[0].Verification.Result)
	assert.Equal(t, int64(1_700_000_000_000), list[0].LastVerifiedMs)
}

func TestProvisioner_Digests(t *testing.T) {
	tests := []struct {
		name    string
		digest  string
		wantErr error
		want    verify.Result
	}{
		{"right digest passes", "sha256:" + abcSHA256, nil, verify.Pass},
		{"upper-case hex passes", "sha256:" + strings.ToUpper(abcSHA256), nil, verify.Pass},
		{"wrong digest fails", "sha256:" + strings.Repeat("0", 64), fetch.ErrDigestMismatch, verify.Fail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ref := e.file(t, "abc.bin", "abc")
			d, err := verify.ParseDigest(tc.digest)
			require.NoError(t, err)
			m, err := e.prov.Ensure(context.Background(), Spec{Ref: ref, Expected: d, Strict: true})
			entry, gerr := e.cat.Get(ref.ID())
			require.NoError(t, gerr, "the outcome is recorded either way")
			assert.Equal(t, tc.want, entry.Verification.Result)
			assert.NotZero(t, entry.LastVerifiedMs)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.Contains(t, err.Error(), strings.Repeat("0", 64))
				assert.Contains(t, err.Error(), abcSHA256)
				assert.Equal(t, catalog.Retired, entry.Lifecycle, "a model failing verification is never Active")
				assert.NoFileExists(t, filepath.Join(e.dir, "handoff", "abc.json"))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, verify.Pass, m.Verification.Result)
			assert.Equal(t, catalog.Active, entry.Lifecycle)
			assert.Equal(t, abcSHA256, entry.Digest.Value, "stored lower-case")
		})
	}
}

func TestProvisioner_MismatchRetiresActiveModel(t *testing.T) {
	e := newEnv(t)
	ref := e.file(t, "m.bin", "abc")
	good, err := verify.ParseDigest("sha256:" + abcSHA256)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = e.prov.EnsurePresent(ctx, ref, good)
	require.NoError(t, err)
	hp := filepath.Join(e.dir, "handoff", "m.json")
	require.FileExists(t, hp)

	// The file is replaced by something else.
	require.NoError(t, os.WriteFile(ref.Path, []byte("evil"), 0o644))
	_, err = e.prov.EnsurePresent(ctx, ref, good)
	require.ErrorIs(t, err, fetch.ErrDigestMismatch)
	assert.NoFileExists(t, hp, "engines must not be handed bytes that failed verification")
	path, ok, err := e.cat.Locate(ref.ID())
	require.NoError(t, err)
	assert.False(t, ok, "a failed model is not located: %s", path)
	assert.FileExists(t, ref.Path, "the user's file is never deleted")

	prov, err := os.ReadFile(filepath.Join(e.dir, "handoff", handoff.ProvenanceFile))
	require.NoError(t, err)
	assert.Contains(t, string(prov), `"event":"failed"`)

	// Fixed again: Active again.
	require.NoError(t, os.WriteFile(ref.Path, []byte("abc"), 0o644))
	_, err = e.prov.EnsurePresent(ctx, ref, good)
	require.NoError(t, err)
	assert.FileExists(t, hp)
}

func TestProvisioner_StrictWithoutDigestWarns(t *testing.T) {
	e := newEnv(t)
	ref := e.file(t, "m.bin", "abc")
	m, err := e.prov.Ensure(context.Background(), Spec{Ref: ref, Strict: true})
	require.NoError(t, err)
	assert.Equal(t, verify.Warn, m.Verification.Result)
	assert.Contains(t, e.logs.String(), "level=WARN")
	assert.Contains(t, e.logs.String(), "strict_verification is set but no expected_digest")
}

func TestProvisioner_UnsupportedScheme(t *testing.T) {
	e := newEnv(t)
	ref, err := fetch.ParseRef("s3://bucket/m.gguf", "/")
	require.NoError(t, err)
	_, err = e.prov.EnsurePresent(context.Background(), ref, verify.Digest{})
	require.ErrorIs(t, err, fetch.ErrUnsupportedScheme)
	assert.Contains(t, err.Error(), "not supported yet: s3")
}

func TestProvisioner_MissingModel(t *testing.T) {
	e := newEnv(t)
	_, err := e.prov.EnsurePresentString(context.Background(), filepath.Join(e.dir, "none.gguf"), verify.Digest{})
	require.ErrorIs(t, err, fetch.ErrNotFound)
	assert.Contains(t, err.Error(), "not found")
	list, err := e.cat.List()
	require.NoError(t, err)
	assert.Empty(t, list, "a model never seen leaves no entry")
}

func TestProvisioner_SingleFlight(t *testing.T) {
	e := newEnv(t)
	e.fetcher.delay = 50 * time.Millisecond
	ref := e.file(t, "m.bin", "abc")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.prov.EnsurePresent(context.Background(), ref, verify.Digest{})
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(1), e.fetcher.calls.Load(), "concurrent ensures of one model do the I/O once")
}

func TestProvisioner_FingerprintChangeRehashes(t *testing.T) {
	e := newEnv(t)
	ref := e.file(t, "m.bin", "abc")
	ctx := context.Background()
	_, err := e.prov.EnsurePresent(ctx, ref, verify.Digest{})
	require.NoError(t, err)
	later := time.Now().Add(time.Hour)
	require.NoError(t, os.Chtimes(ref.Path, later, later))
	m, err := e.prov.EnsurePresent(ctx, ref, verify.Digest{})
	require.NoError(t, err)
	assert.True(t, m.Hashed, "a new mtime forces a re-hash")
	assert.Equal(t, int64(2), e.fetcher.hashes.Load())
}

func TestProvisioner_RetireKeepsUserFile(t *testing.T) {
	e := newEnv(t)
	ref := e.file(t, "m.bin", "abc")
	_, err := e.prov.EnsurePresent(context.Background(), ref, verify.Digest{})
	require.NoError(t, err)
	require.NoError(t, e.prov.Retire(ref.ID(), "test"))
	entry, err := e.cat.Get(ref.ID())
	require.NoError(t, err)
	assert.Equal(t, catalog.Retired, entry.Lifecycle)
	assert.NoFileExists(t, filepath.Join(e.dir, "handoff", "m.json"))
	assert.FileExists(t, ref.Path)
	require.NoError(t, e.prov.Retire(ref.ID(), "again"), "retiring twice is a no-op")
}

// TestProvisioner_HandoffGolden checks the handoff file of a GGUF model
// byte for byte. Run with -update to rewrite testdata/handoff.golden.json.
func TestProvisioner_HandoffGolden(t *testing.T) {
	e := newEnv(t)
	p := filepath.Join(e.dir, "tiny.gguf")
	require.NoError(t, ggufgen.WriteFile(p, 3, []ggufgen.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "llama.context_length", Value: uint32(8192)},
	}, nil))
	ref, err := fetch.ParseRef(p, "/")
	require.NoError(t, err)
	m, err := e.prov.Ensure(context.Background(), Spec{Name: "tiny", Ref: ref})
	require.NoError(t, err)
	require.NotNil(t, m.CtxMax)
	assert.Equal(t, int64(8192), *m.CtxMax)

	got, err := os.ReadFile(filepath.Join(e.dir, "handoff", "tiny.json"))
	require.NoError(t, err)
	// The temp directory and the file's digest vary; the shape must not.
	got = bytes.ReplaceAll(got, []byte(e.dir), []byte("$DIR"))
	got = bytes.ReplaceAll(got, []byte(strings.TrimPrefix(m.Digest, "sha256:")), []byte("$SHA256"))
	golden := filepath.Join("testdata", "handoff.golden.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))

	// The seed's contract fields, exactly.
	f, err := handoff.Read(filepath.Join(e.dir, "handoff", "tiny.json"))
	require.NoError(t, err)
	assert.Equal(t, "file:"+p, f.Model.ID)
	assert.Equal(t, p, f.Model.Path)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, fi.Size(), f.Metadata.SizeBytes)

	// Unchanged model: the handoff is not rewritten.
	hp := filepath.Join(e.dir, "handoff", "tiny.json")
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	require.NoError(t, os.Chtimes(hp, old, old))
	_, err = e.prov.Ensure(context.Background(), Spec{Name: "tiny", Ref: ref})
	require.NoError(t, err)
	st, err := os.Stat(hp)
	require.NoError(t, err)
	assert.True(t, st.ModTime().Equal(old), "no mtime churn when nothing changed")
}

func TestProvisioner_NonGGUFHasNullCtxMax(t *testing.T) {
	e := newEnv(t)
	ref := e.file(t, "weights.bin", "not a gguf file at all")
	_, err := e.prov.EnsurePresent(context.Background(), ref, verify.Digest{})
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(e.dir, "handoff", "weights.json"))
	require.NoError(t, err)
	assert.Contains(t, string(data), `"ctx_max": null`)
}

func TestProvisioner_PruneRemovesOwnedContentOnly(t *testing.T) {
	e := newEnv(t)
	store, err := content.Open(e.cat.Dir())
	require.NoError(t, err)
	defer store.Close()
	e.prov.content = store

	// A downloaded model: a blob linked into models/dl.
	in, err := store.OpenIngest(context.Background(), "k")
	require.NoError(t, err)
	_, err = in.File().WriteAt([]byte("abc"), 0)
	require.NoError(t, err)
	d := verify.Digest{Algo: verify.SHA256, Value: abcSHA256}
	_, err = store.Commit(in, d, 3)
	require.NoError(t, err)
	lp, err := store.Link("dl", "m.gguf", d)
	require.NoError(t, err)
	old := time.UnixMilli(1_700_000_000_000).Add(-30 * 24 * time.Hour).UnixMilli()
	require.NoError(t, e.cat.Put(catalog.Entry{ID: "https://h/m.gguf", Name: "dl", LocalPath: lp, Digest: d, Owned: true, SpecFile: "/s/dl.yaml", Lifecycle: catalog.Retired, RetiredMs: old}))

	// A user's file, retired just as long ago.
	ref := e.file(t, "user.bin", "user")
	require.NoError(t, e.cat.Put(catalog.Entry{ID: ref.ID(), Name: "user", LocalPath: ref.Path, SpecFile: "/s/user.yaml", Lifecycle: catalog.Retired, RetiredMs: old}))

	n, err := e.prov.Prune(7 * 24 * time.Hour)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.NoFileExists(t, lp)
	assert.False(t, store.Has(d, -1), "an unreferenced downloaded blob is removed")
	assert.FileExists(t, ref.Path, "a file: model's bytes are never deleted")
	list, err := e.cat.List()
	require.NoError(t, err)
	assert.Empty(t, list)
}

func TestProvisioner_SafetensorsMissingShardNeverActive(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(e.dir, "llama")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	write("config.json", `{"architectures":["LlamaForCausalLM"],"max_position_embeddings":8192}`)
	write("model.safetensors.index.json", `{"metadata":{"total_size":20},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}`)
	write("model-00001-of-00002.safetensors", "0123456789")
	ref, err := fetch.ParseRef(dir, "/")
	require.NoError(t, err)

	_, err = e.prov.Ensure(context.Background(), Spec{Name: "llama", Ref: ref})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "model-00002-of-00002.safetensors")
	assert.True(t, fetch.IsPermanent(err))
	_, ok, err := e.cat.Locate(ref.ID())
	require.NoError(t, err)
	assert.False(t, ok, "a model with a missing shard is never Active")
	assert.NoFileExists(t, filepath.Join(e.dir, "handoff", "llama.json"))

	write("model-00002-of-00002.safetensors", "0123456789")
	m, err := e.prov.Ensure(context.Background(), Spec{Name: "llama", Ref: ref})
	require.NoError(t, err)
	require.NotNil(t, m.CtxMax)
	assert.Equal(t, int64(8192), *m.CtxMax)
	assert.Equal(t, "vllm", m.Engine)
	h, err := handoff.Read(filepath.Join(e.dir, "handoff", "llama.json"))
	require.NoError(t, err)
	assert.Equal(t, dir, h.Model.Path, "vLLM gets the directory")
}

// knownRecorder serves a fixed file and records whether the catalog's
// record was handed to it.
type knownRecorder struct {
	inner    fetch.Fetcher
	path     string
	sawKnown []bool
}

func (k *knownRecorder) Fetch(ctx context.Context, req fetch.Request) (fetch.Result, error) {
	k.sawKnown = append(k.sawKnown, req.Known != nil)
	return k.inner.Fetch(ctx, fetch.Request{Ref: fetch.Ref{Scheme: fetch.SchemeFile, Path: k.path}, Known: req.Known})
}

func TestProvisioner_ChangedIncludeListsAgain(t *testing.T) {
	e := newEnv(t)
	rec := &knownRecorder{inner: filefetch.New(), path: e.file(t, "m.bin", "abc").Path}
	reg := fetch.NewRegistry()
	reg.Register(fetch.SchemeHF, rec)
	e.prov.fetchers = reg
	ref, err := fetch.ParseRef("hf:org/repo@main", "/")
	require.NoError(t, err)
	ctx := context.Background()
	for _, inc := range [][]string{{"*.safetensors"}, {"*.safetensors"}, {"*.safetensors", "*.json"}} {
		_, err := e.prov.Ensure(ctx, Spec{Name: "repo", Ref: ref, Include: inc})
		require.NoError(t, err)
	}
	assert.Equal(t, []bool{false, true, false}, rec.sawKnown, "a changed include is not served from the old file list")
}
