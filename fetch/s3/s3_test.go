package s3

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/fetch/download"
	"github.com/model-provisioner/model-provisioner/fetch/fetchtest"
	"github.com/model-provisioner/model-provisioner/internal/testserver/s3srv"
	"github.com/model-provisioner/model-provisioner/verify"
)

const bucket = "models"

func testOptions() download.Options {
	return download.Options{PartSize: 1 << 20, Parts: 4, Stall: 2 * time.Second, RetryBase: 10 * time.Millisecond, Headroom: -1, Checkpoint: 256 << 10}
}

// serverConfig is a Config for srv with its root credentials.
func serverConfig(srv *s3srv.Server) Config {
	return Config{
		Endpoint:  srv.Endpoint,
		Region:    srv.Region,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		RootCAs:   srv.CertPool,
		Download:  testOptions(),
	}
}

func newFetcher(t *testing.T, store *content.Store, cfg Config) *Fetcher {
	t.Helper()
	f, err := New(store, cfg)
	require.NoError(t, err)
	return f
}

func newStore(t *testing.T) *content.Store {
	t.Helper()
	s, err := content.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func parse(t *testing.T, raw string) fetch.Ref {
	t.Helper()
	r, err := fetch.ParseRef(raw, "/")
	require.NoError(t, err)
	return r
}

func checksumOf(data []byte) string {
	sum := sha256.Sum256(data)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// startServer starts versitygw with the models bucket.
func startServer(t *testing.T) *s3srv.Server {
	t.Helper()
	srv := s3srv.Start(t)
	srv.CreateBucket(t, bucket)
	return srv
}

func TestConformance_versitygw(t *testing.T) {
	srv := startServer(t)
	for _, variant := range []struct {
		name string
		meta func(data []byte) map[string]string
	}{
		{name: "plain", meta: func([]byte) map[string]string { return nil }},
		// The object vouches for its own sha256, so the expected digest is
		// known before the download starts.
		{name: "checksummed", meta: func(data []byte) map[string]string {
			return map[string]string{"x-amz-checksum-sha256": checksumOf(data)}
		}},
	} {
		t.Run(variant.name, func(t *testing.T) {
			n := 0
			next := func() string { n++; return fmt.Sprintf("%s/m%d/model.gguf", variant.name, n) }
			publish := func(t *testing.T, data []byte) string {
				key := next()
				srv.Put(t, bucket, key, data, variant.meta(data))
				return "s3://" + bucket + "/" + key
			}
			key := func(ref string) string { return strings.TrimPrefix(ref, "s3://"+bucket+"/") }
			fetchtest.Run(t, fetchtest.Target{
				Scheme: fetch.SchemeS3,
				NewFetcher: func(t *testing.T, store *content.Store) fetch.Fetcher {
					return newFetcher(t, store, serverConfig(srv))
				},
				Publish: publish,
				Missing: func(t *testing.T) string { return "s3://" + bucket + "/missing/model.gguf" },
				PublishTruncated: func(t *testing.T, data []byte, n int64) string {
					ref := publish(t, data)
					srv.TruncateOnce(bucket, key(ref), n)
					return ref
				},
				PublishSlow: func(t *testing.T, data []byte, rate int) string {
					ref := publish(t, data)
					srv.Throttle(bucket, key(ref), rate)
					return ref
				},
				BytesServed: func(t *testing.T, ref string) int64 { return srv.BytesServed(bucket, key(ref)) },
			})
		})
	}
}

func TestFetch_SingleObject(t *testing.T) {
	srv := startServer(t)
	data := fetchtest.Data(3<<20 + 11)
	obj := srv.Put(t, bucket, "llama/model.Q4_K_M.gguf", data, nil)
	store := newStore(t)
	f := newFetcher(t, store, serverConfig(srv))

	req := fetch.Request{Ref: parse(t, "s3://models/llama/model.Q4_K_M.gguf"), Name: "llama"}
	res, err := f.Fetch(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(store.Dir(), content.ModelsDir, "llama", "model.Q4_K_M.gguf"), res.LocalPath)
	assert.Equal(t, fetchtest.DigestOf(data), res.Digest)
	assert.Equal(t, int64(len(data)), res.SizeBytes)
	assert.True(t, res.Hashed)
	assert.True(t, res.Owned)
	assert.Equal(t, `"`+obj.ETag+`"`, res.Validators.ETag, "the ETag is recorded")
	got, err := os.ReadFile(res.LocalPath)
	require.NoError(t, err)
	assert.Equal(t, data, got)

	reqs := srv.Requests(bucket, "llama/model.Q4_K_M.gguf")
	require.NotEmpty(t, reqs)
	assert.Equal(t, http.MethodHead, reqs[0].Method, "one HEAD resolves size, ETag and checksum")
	for _, r := range reqs[1:] {
		assert.Equal(t, http.MethodGet, r.Method)
		assert.NotEmpty(t, r.Range, "3 MiB in 1 MiB parts: every GET is a range")
	}
	assert.Greater(t, len(reqs), 2, "parallel ranged parts")

	// Present and unchanged: no request at all.
	before := len(srv.Requests(bucket, "llama/model.Q4_K_M.gguf"))
	req.Known = &fetch.Known{LocalPath: res.LocalPath, Digest: res.Digest, Fingerprint: res.Fingerprint}
	again, err := f.Fetch(context.Background(), req)
	require.NoError(t, err)
	assert.False(t, again.Hashed)
	assert.Equal(t, res.Digest, again.Digest)
	assert.Len(t, srv.Requests(bucket, "llama/model.Q4_K_M.gguf"), before)
}

func TestFetch_Prefix(t *testing.T) {
	srv := startServer(t)
	files := map[string][]byte{
		"qwen/config.json":                      []byte(`{"architectures":["Qwen2ForCausalLM"]}`),
		"qwen/model-00001-of-00002.safetensors": fetchtest.Data(2<<20 + 1),
		"qwen/model-00002-of-00002.safetensors": fetchtest.Data(1<<20 + 3),
		"qwen/tokenizer/tokenizer.json":         []byte(`{"version":"1.0"}`),
		"qwen/tokenizer/deep/vocab.json":        []byte(`{"a":1}`),
		"qwen-other/model.safetensors":          []byte("not part of the model"),
		"qwenx.bin":                             []byte("not part of the model either"),
	}
	for k, v := range files {
		srv.Put(t, bucket, k, v, nil)
	}
	srv.Put(t, bucket, "qwen/empty-dir/", nil, nil) // a directory marker
	store := newStore(t)
	f := newFetcher(t, store, serverConfig(srv))
	var mu sync.Mutex
	var lastDone, lastTotal int64
	req := fetch.Request{Ref: parse(t, "s3://models/qwen/"), Name: "qwen", Progress: func(done, total int64) {
		mu.Lock()
		lastDone, lastTotal = done, total
		mu.Unlock()
	}}

	res, err := f.Fetch(context.Background(), req)
	require.NoError(t, err)
	assert.True(t, res.IsDir)
	assert.True(t, res.Owned)
	assert.Equal(t, store.ModelDir("qwen"), res.LocalPath)
	want := []string{"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "tokenizer/deep/vocab.json", "tokenizer/tokenizer.json"}
	assert.Equal(t, want, paths(res.Files))
	var size int64
	for _, fl := range res.Files {
		data := files["qwen/"+fl.Path]
		got, err := os.ReadFile(filepath.Join(res.LocalPath, filepath.FromSlash(fl.Path)))
		require.NoError(t, err)
		assert.Equal(t, data, got, fl.Path)
		assert.Equal(t, fetchtest.DigestOf(data), fl.Digest, fl.Path)
		size += int64(len(data))
	}
	assert.Equal(t, size, res.SizeBytes)
	assert.Equal(t, want, tree(t, res.LocalPath), "exactly the prefix's files: no marker, no neighbour")
	mu.Lock()
	assert.Equal(t, size, lastDone)
	assert.Equal(t, size, lastTotal)
	mu.Unlock()

	// Present and unchanged: no request at all, not even a listing.
	listings := len(srv.Requests(bucket, ""))
	req.Known = &fetch.Known{Files: res.Files}
	again, err := f.Fetch(context.Background(), req)
	require.NoError(t, err)
	assert.False(t, again.Hashed)
	assert.Equal(t, res.Files, again.Files)
	assert.Len(t, srv.Requests(bucket, ""), listings)

	// Narrowed by include: the other files are pruned from the tree.
	req.Known, req.Progress = nil, nil
	req.Include = []string{"*.json", "**/vocab.json"}
	narrowed, err := f.Fetch(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, []string{"config.json", "tokenizer/deep/vocab.json"}, paths(narrowed.Files))
	assert.Equal(t, []string{"config.json", "tokenizer/deep/vocab.json"}, tree(t, narrowed.LocalPath))
	assert.True(t, store.Has(fetchtest.DigestOf(files["qwen/model-00001-of-00002.safetensors"]), -1), "pruning unlinks; the blob stays for GC")

	req.Include = []string{"*.gguf"}
	_, err = f.Fetch(context.Background(), req)
	assert.ErrorIs(t, err, fetch.ErrNotFound)
	assert.True(t, fetch.IsPermanent(err))
	assert.Contains(t, err.Error(), "include")
}

func paths(files []fetch.File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	sort.Strings(out)
	return out
}

// tree lists the regular files under dir, slash-separated and sorted.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	require.NoError(t, err)
	sort.Strings(out)
	return out
}

func TestFetch_PrefixRejections(t *testing.T) {
	srv := startServer(t)
	srv.Put(t, bucket, "m/a.bin", []byte("a"), nil)
	f := newFetcher(t, newStore(t), serverConfig(srv))
	ref := parse(t, "s3://models/m/")

	_, err := f.Fetch(context.Background(), fetch.Request{Ref: ref, Name: "m", Expected: fetchtest.DigestOf([]byte("a"))})
	assert.ErrorIs(t, err, fetch.ErrDigestOnDirectory)
	assert.True(t, fetch.IsPermanent(err))

	_, err = f.Fetch(context.Background(), fetch.Request{Ref: ref, Name: "m", VersionID: "v1"})
	require.Error(t, err)
	assert.True(t, fetch.IsPermanent(err))
	assert.Contains(t, err.Error(), "version_id")

	_, err = f.Fetch(context.Background(), fetch.Request{Ref: parse(t, "s3://models/nothing-here/"), Name: "m"})
	assert.ErrorIs(t, err, fetch.ErrNotFound)

	_, err = f.Fetch(context.Background(), fetch.Request{Ref: parse(t, "s3://no-such-bucket/m/"), Name: "m"})
	assert.ErrorIs(t, err, fetch.ErrNotFound)
	assert.True(t, fetch.IsPermanent(err))
	assert.Contains(t, err.Error(), "NoSuchBucket")
}

func TestFetch_PinnedVersion(t *testing.T) {
	srv := s3srv.Start(t)
	srv.CreateBucket(t, "versioned")
	srv.EnableVersioning(t, "versioned")
	v1data, v2data := fetchtest.Data(2<<20+1), fetchtest.Data(2<<20+2)
	v1 := srv.Put(t, "versioned", "m/model.gguf", v1data, nil)
	v2 := srv.Put(t, "versioned", "m/model.gguf", v2data, nil)
	require.NotEmpty(t, v1.VersionID)
	f := newFetcher(t, newStore(t), serverConfig(srv))
	ref := parse(t, "s3://versioned/m/model.gguf")

	res, err := f.Fetch(context.Background(), fetch.Request{Ref: ref, Name: "old", VersionID: v1.VersionID})
	require.NoError(t, err)
	assert.Equal(t, fetchtest.DigestOf(v1data), res.Digest, "the pinned version, not the latest")
	assert.Equal(t, v1.VersionID, res.Validators.VersionID)
	for _, r := range srv.Requests("versioned", "m/model.gguf") {
		assert.Equal(t, v1.VersionID, r.VersionID, "every request names the version: %+v", r)
	}

	res, err = f.Fetch(context.Background(), fetch.Request{Ref: ref, Name: "latest"})
	require.NoError(t, err)
	assert.Equal(t, fetchtest.DigestOf(v2data), res.Digest)
	assert.Equal(t, v2.VersionID, res.Validators.VersionID, "the version fetched is recorded even when not pinned")

	// A version id of the right form that names no version.
	missing := v1.VersionID[:len(v1.VersionID)-4] + "ZZZZ"
	_, err = f.Fetch(context.Background(), fetch.Request{Ref: ref, Name: "gone", VersionID: missing})
	require.Error(t, err)
	assert.ErrorIs(t, err, fetch.ErrNotFound)
	assert.True(t, fetch.IsPermanent(err))
	assert.Contains(t, err.Error(), missing)

	// A version id the server cannot parse.
	_, err = f.Fetch(context.Background(), fetch.Request{Ref: ref, Name: "bad", VersionID: "not-a-version"})
	require.Error(t, err)
	assert.ErrorIs(t, err, fetch.ErrNotFound)
	assert.True(t, fetch.IsPermanent(err))
	assert.Contains(t, err.Error(), "version_id")

	// A deleted key is gone for the unpinned reference; its versions stay.
	srv.Delete(t, "versioned", "m/model.gguf")
	_, err = f.Fetch(context.Background(), fetch.Request{Ref: ref, Name: "deleted"})
	assert.ErrorIs(t, err, fetch.ErrNotFound)
	res, err = f.Fetch(context.Background(), fetch.Request{Ref: ref, Name: "old2", VersionID: v1.VersionID})
	require.NoError(t, err)
	assert.Equal(t, fetchtest.DigestOf(v1data), res.Digest)
}

func TestFetch_WrongCredentials(t *testing.T) {
	srv := startServer(t)
	srv.Put(t, bucket, "m/model.gguf", []byte("weights"), nil)
	tests := []struct {
		name           string
		access, secret string
		maxRequests    int
	}{
		// A HEAD answer has no body: 403 says enough.
		{name: "wrong secret", access: srv.AccessKey, secret: "wrong-secret-value-1234567890", maxRequests: 1},
		// versitygw answers a HEAD by an unknown account with a bare 404;
		// one ranged GET learns the real reason.
		{name: "unknown access key", access: "AKIAUNKNOWN000000000", secret: "another-wrong-secret-0987654321", maxRequests: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := serverConfig(srv)
			cfg.AccessKey, cfg.SecretKey = tc.access, tc.secret
			store := newStore(t)
			f := newFetcher(t, store, cfg)
			before := len(srv.Requests(bucket, "m/model.gguf"))
			start := time.Now()
			_, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, "s3://models/m/model.gguf"), Name: "m"})
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrAccessDenied)
			assert.True(t, fetch.IsPermanent(err), "refused credentials are not retried: %v", err)
			assert.Contains(t, err.Error(), "check the S3 credentials")
			assert.Contains(t, err.Error(), "the agent configuration", "the message says which credentials were used")
			assert.NotContains(t, err.Error(), tc.secret)
			assert.Less(t, time.Since(start), 2*time.Second)
			reqs := srv.Requests(bucket, "m/model.gguf")[before:]
			assert.LessOrEqual(t, len(reqs), tc.maxRequests, "not retried: %+v", reqs)
			for _, r := range reqs {
				assert.NotEqual(t, http.StatusOK, r.Status)
			}
			assert.Empty(t, tree(t, filepath.Join(store.Dir(), content.ModelsDir)))
		})
	}
}

func TestFetch_Missing(t *testing.T) {
	srv := startServer(t)
	f := newFetcher(t, newStore(t), serverConfig(srv))
	tests := []struct{ ref, code string }{
		{ref: "s3://models/no/such/model.gguf", code: "NoSuchKey"},
		{ref: "s3://no-such-bucket/model.gguf", code: "NoSuchBucket"},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			_, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, tc.ref), Name: "m"})
			require.Error(t, err)
			assert.ErrorIs(t, err, fetch.ErrNotFound)
			assert.True(t, fetch.IsPermanent(err))
			assert.Contains(t, err.Error(), tc.code, "the message says what is missing")
			var se *Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, http.StatusNotFound, se.StatusCode)
		})
	}
}

func TestFetch_ObjectSHA256(t *testing.T) {
	srv := startServer(t)
	data := fetchtest.Data(1<<20 + 5)
	good := fetchtest.DigestOf(data)
	wrong := fetchtest.DigestOf([]byte("other bytes"))
	tests := []struct {
		name     string
		meta     map[string]string
		expected verify.Digest
		wantErr  error
		// served is whether the body is downloaded at all.
		served bool
	}{
		{name: "checksum verifies", meta: map[string]string{"x-amz-checksum-sha256": checksumOf(data)}, served: true},
		{name: "meta verifies", meta: map[string]string{"sha256": good.Value}, served: true},
		{name: "meta with algorithm prefix", meta: map[string]string{"sha256": "sha256:" + strings.ToUpper(good.Value)}, served: true},
		{name: "checksum and expected_digest agree", meta: map[string]string{"x-amz-checksum-sha256": checksumOf(data)}, expected: good, served: true},
		{name: "wrong meta", meta: map[string]string{"sha256": wrong.Value}, wantErr: fetch.ErrDigestMismatch, served: true},
		{name: "checksum disagrees with expected_digest", meta: map[string]string{"x-amz-checksum-sha256": checksumOf(data)}, expected: wrong, wantErr: fetch.ErrDigestMismatch},
		{name: "meta disagrees with checksum", meta: map[string]string{"x-amz-checksum-sha256": checksumOf(data), "sha256": wrong.Value}, wantErr: fetch.ErrDigestMismatch},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("sha/%d/model.gguf", i)
			srv.Put(t, bucket, key, data, tc.meta)
			store := newStore(t)
			f := newFetcher(t, store, serverConfig(srv))
			res, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, "s3://models/"+key), Name: "m", Expected: tc.expected})
			if tc.served {
				assert.Equal(t, int64(len(data)), srv.BytesServed(bucket, key))
			} else {
				assert.Zero(t, srv.BytesServed(bucket, key), "a mismatch known from the metadata downloads nothing")
			}
			if tc.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, good, res.Digest)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.wantErr)
			assert.True(t, fetch.IsPermanent(err))
			assert.False(t, store.Has(good, -1), "nothing committed")
			assert.Empty(t, tree(t, filepath.Join(store.Dir(), content.ModelsDir)), "nothing linked")
			ingest, err := os.ReadDir(filepath.Join(store.Dir(), content.IngestDir))
			require.NoError(t, err)
			assert.Empty(t, ingest, "no partial download left")
		})
	}

	t.Run("malformed meta", func(t *testing.T) {
		srv.Put(t, bucket, "sha/bad/model.gguf", data, map[string]string{"sha256": "not-a-digest"})
		f := newFetcher(t, newStore(t), serverConfig(srv))
		_, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, "s3://models/sha/bad/model.gguf"), Name: "m"})
		require.Error(t, err)
		assert.True(t, fetch.IsPermanent(err))
		assert.Contains(t, err.Error(), "x-amz-meta-sha256")
	})
}

func TestFetch_ReplacedDuringDownloadRestarts(t *testing.T) {
	srv := startServer(t)
	old := fetchtest.Data(4 << 20)
	srv.Put(t, bucket, "m/model.gguf", old, nil)
	srv.Throttle(bucket, "m/model.gguf", 1<<20)
	f := newFetcher(t, newStore(t), serverConfig(srv))
	ref := parse(t, "s3://models/m/model.gguf")
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	_, err := f.Fetch(ctx, fetch.Request{Ref: ref, Name: "m", Progress: func(done, total int64) {
		if done > 512<<10 {
			once.Do(cancel)
		}
	}})
	require.ErrorIs(t, err, context.Canceled)

	// Same key, new bytes: the partial download must not be resumed into.
	neu := fetchtest.Data(4<<20 + 1)
	srv.Put(t, bucket, "m/model.gguf", neu, nil)
	srv.Throttle(bucket, "m/model.gguf", 0)
	res, err := f.Fetch(context.Background(), fetch.Request{Ref: ref, Name: "m"})
	require.NoError(t, err)
	assert.Equal(t, fetchtest.DigestOf(neu), res.Digest, "never a splice of two versions")
}

func TestFetch_Offline(t *testing.T) {
	srv := startServer(t)
	data := []byte("gguf bytes")
	srv.Put(t, bucket, "m/model.gguf", data, nil)
	srv.Put(t, bucket, "dir/a.json", data, nil)
	store := newStore(t)
	online := newFetcher(t, store, serverConfig(srv))
	res, err := online.Fetch(context.Background(), fetch.Request{Ref: parse(t, "s3://models/m/model.gguf"), Name: "m"})
	require.NoError(t, err)
	dir, err := online.Fetch(context.Background(), fetch.Request{Ref: parse(t, "s3://models/dir/"), Name: "dir"})
	require.NoError(t, err)

	cfg := serverConfig(srv)
	cfg.Offline = true
	offline := newFetcher(t, store, cfg)
	before := len(srv.Requests(bucket, "m/model.gguf")) + len(srv.Requests(bucket, ""))
	_, err = offline.Fetch(context.Background(), fetch.Request{Ref: parse(t, "s3://models/m/model.gguf"), Name: "m",
		Known: &fetch.Known{Digest: res.Digest, Fingerprint: res.Fingerprint}})
	require.NoError(t, err, "a present model is served offline")
	_, err = offline.Fetch(context.Background(), fetch.Request{Ref: parse(t, "s3://models/dir/"), Name: "dir", Known: &fetch.Known{Files: dir.Files}})
	require.NoError(t, err, "a present prefix is served offline")
	assert.Equal(t, before, len(srv.Requests(bucket, "m/model.gguf"))+len(srv.Requests(bucket, "")))

	_, err = offline.Fetch(context.Background(), fetch.Request{Ref: parse(t, "s3://models/m/model.gguf"), Name: "other"})
	assert.ErrorIs(t, err, download.ErrOffline)
	_, err = offline.Fetch(context.Background(), fetch.Request{Ref: parse(t, "s3://models/dir/"), Name: "other-dir"})
	assert.ErrorIs(t, err, download.ErrOffline)
}

func TestMatch(t *testing.T) {
	tests := []struct {
		patterns []string
		rel      string
		want     bool
	}{
		{nil, "any/thing.bin", true},
		{[]string{"*.safetensors"}, "model.safetensors", true},
		{[]string{"*.safetensors"}, "sub/model.safetensors", false},
		{[]string{"**/*.safetensors"}, "sub/model.safetensors", true},
		{[]string{"**/*.safetensors"}, "model.safetensors", true},
		{[]string{"sub/*.json"}, "sub/config.json", true},
		{[]string{"**/sub/*.json"}, "a/b/sub/config.json", true},
		{[]string{"**/sub/*.json"}, "sub/config.json", true},
		{[]string{"**/sub/*.json"}, "a/subx/config.json", false},
		{[]string{"tokenizer*", "*.json"}, "tokenizer.model", true},
		{[]string{"["}, "x", false},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, match(tc.patterns, tc.rel), "%q %q", tc.patterns, tc.rel)
	}
}
