package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/fetch/download"
	"github.com/model-provisioner/model-provisioner/fetch/fetchtest"
	"github.com/model-provisioner/model-provisioner/internal/testserver/registry"
	"github.com/model-provisioner/model-provisioner/verify"
)

func testDownload() download.Options {
	return download.Options{PartSize: 1 << 20, Parts: 4, Stall: 2 * time.Second, RetryBase: 10 * time.Millisecond, Headroom: -1}
}

func newStore(t *testing.T) *content.Store {
	t.Helper()
	s, err := content.Open(filepath.Join(t.TempDir(), "state"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// newFetcher returns a fetcher that finds no credentials unless cfg names
// a Docker config: the test machine's own ~/.docker must not matter.
func newFetcher(t *testing.T, store *content.Store, cfg Config) *Fetcher {
	t.Helper()
	if cfg.DockerConfig == "" {
		cfg.DockerConfig = filepath.Join(t.TempDir(), "no-such-config.json")
	}
	if cfg.Download.PartSize == 0 {
		cfg.Download = testDownload()
	}
	f, err := New(store, cfg)
	require.NoError(t, err)
	return f
}

func parse(t *testing.T, s string) fetch.Ref {
	t.Helper()
	r, err := fetch.ParseRef(s, "/")
	require.NoError(t, err)
	return r
}

func sha(data []byte) string { return fetchtest.DigestOf(data).String() }

// repoNames hands out fresh repository names, so tests sharing a registry
// never see each other's tags.
var repoNames atomic.Int64

func newRepo(prefix string) string {
	return fmt.Sprintf("models/%s%d", prefix, repoNames.Add(1))
}

func ref(srv *registry.Server, repo, tagOrDigest string) string {
	if strings.HasPrefix(tagOrDigest, "sha256:") {
		return "oci://" + srv.Host + "/" + repo + "@" + tagOrDigest
	}
	return "oci://" + srv.Host + "/" + repo + ":" + tagOrDigest
}

// TestConformance_registry runs the conformance suite against the real
// registry: single-layer ORAS-style artifacts pushed with oras-go, pulled
// through the counting proxy, which also slows "slow" repositories down and
// cuts a connection on request.
func TestConformance_registry(t *testing.T) {
	srv := registry.Start(t, registry.Options{})
	var mu sync.Mutex
	layers := map[string]string{} // reference -> layer digest
	publish := func(t *testing.T, prefix string, data []byte) (string, string) {
		repo := newRepo(prefix)
		srv.Push(t, repo, "v1", registry.File{Name: "model.gguf", Data: data})
		r := ref(srv, repo, "v1")
		mu.Lock()
		layers[r] = sha(data)
		mu.Unlock()
		return r, repo
	}
	fetchtest.Run(t, fetchtest.Target{
		Scheme: fetch.SchemeOCI,
		NewFetcher: func(t *testing.T, store *content.Store) fetch.Fetcher {
			return newFetcher(t, store, Config{})
		},
		Publish: func(t *testing.T, data []byte) string {
			r, _ := publish(t, "m", data)
			return r
		},
		Missing: func(t *testing.T) string {
			_, repo := publish(t, "m", []byte("present"))
			return ref(srv, repo, "no-such-tag")
		},
		PublishTruncated: func(t *testing.T, data []byte, n int64) string {
			r, _ := publish(t, "m", data)
			srv.DropAfter(sha(data), n)
			return r
		},
		PublishSlow: func(t *testing.T, data []byte, bytesPerSec int) string {
			r, repo := publish(t, "slow", data)
			// The limit is per response, as nginx's limit_rate is per
			// connection; the download runs four parts at once.
			srv.SetRate(repo, bytesPerSec/4)
			return r
		},
		BytesServed: func(t *testing.T, r string) int64 {
			mu.Lock()
			d, ok := layers[r]
			mu.Unlock()
			if !ok {
				t.Fatalf("unknown reference %s", r)
			}
			return srv.BytesSent(d)
		},
	})
}

func TestFetch_MultiLayer(t *testing.T) {
	srv := registry.Start(t, registry.Options{})
	weights := fetchtest.Data(3<<20 + 1)
	cfgJSON := []byte(`{"architectures":["LlamaForCausalLM"]}`)
	tok := fetchtest.Data(70_000)
	repo := newRepo("multi")
	md := srv.Push(t, repo, "v1",
		registry.File{Name: "model.safetensors", Data: weights},
		registry.File{Name: "config.json", Data: cfgJSON},
		registry.File{Name: "tokenizer/tokenizer.json", Data: tok},
	)
	store := newStore(t)
	f := newFetcher(t, store, Config{})
	var last atomic.Int64
	req := fetch.Request{Ref: parse(t, ref(srv, repo, "v1")), Name: "llama", Progress: func(done, total int64) {
		last.Store(done)
		assert.Equal(t, int64(len(weights)+len(cfgJSON)+len(tok)), total)
	}}
	res, err := f.Fetch(context.Background(), req)
	require.NoError(t, err)

	dir := store.ModelDir("llama")
	assert.Equal(t, dir, res.LocalPath)
	assert.True(t, res.IsDir)
	assert.True(t, res.Owned)
	assert.True(t, res.Hashed)
	assert.True(t, res.Digest.IsZero(), "a directory has no single digest")
	assert.Equal(t, md, res.Validators.OCIDigest)
	assert.Equal(t, int64(len(weights)+len(cfgJSON)+len(tok)), res.SizeBytes)
	require.Len(t, res.Files, 3)
	for _, tc := range []struct {
		path string
		data []byte
	}{{"model.safetensors", weights}, {"config.json", cfgJSON}, {"tokenizer/tokenizer.json", tok}} {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(tc.path)))
		require.NoError(t, err, tc.path)
		assert.True(t, bytes.Equal(tc.data, got), "%s differs", tc.path)
		var file fetch.File
		for _, fl := range res.Files {
			if fl.Path == tc.path {
				file = fl
			}
		}
		assert.Equal(t, fetchtest.DigestOf(tc.data), file.Digest, tc.path)
		assert.Equal(t, int64(len(tc.data)), file.SizeBytes, tc.path)
		assert.False(t, file.Fingerprint.IsZero(), tc.path)
	}
	assert.Equal(t, res.SizeBytes, last.Load(), "progress reaches the total")

	// Present and unchanged: no request reaches the registry, nothing is
	// hashed; with Reverify everything is hashed, still offline.
	before := srv.Received("")
	known := &fetch.Known{LocalPath: res.LocalPath, Files: res.Files}
	again, err := f.Fetch(context.Background(), fetch.Request{Ref: req.Ref, Name: "llama", Known: known})
	require.NoError(t, err)
	assert.False(t, again.Hashed)
	assert.Equal(t, res.Files, again.Files)
	rehash, err := f.Fetch(context.Background(), fetch.Request{Ref: req.Ref, Name: "llama", Known: known, Reverify: true})
	require.NoError(t, err)
	assert.True(t, rehash.Hashed)
	assert.Equal(t, before, srv.Received(""), "a present model needs no network")

	// Include patterns select files; the model tree holds exactly them.
	sel, err := f.Fetch(context.Background(), fetch.Request{Ref: req.Ref, Name: "llama", Include: []string{"*.json"}})
	require.NoError(t, err)
	require.Len(t, sel.Files, 2)
	assert.NoFileExists(t, filepath.Join(dir, "model.safetensors"))
	assert.FileExists(t, filepath.Join(dir, "tokenizer", "tokenizer.json"))

	_, err = f.Fetch(context.Background(), fetch.Request{Ref: req.Ref, Name: "llama", Include: []string{"*.gguf"}})
	assert.ErrorIs(t, err, fetch.ErrNotFound)
	assert.True(t, fetch.IsPermanent(err))
}

func TestFetch_ExpectedDigest(t *testing.T) {
	srv := registry.Start(t, registry.Options{})
	a, b := fetchtest.Data(100_000), fetchtest.Data(1234)
	multi := newRepo("exp")
	mdMulti := srv.Push(t, multi, "v1", registry.File{Name: "a.bin", Data: a}, registry.File{Name: "b.bin", Data: b})
	single := newRepo("exp")
	mdSingle := srv.Push(t, single, "v1", registry.File{Name: "a.bin", Data: a})
	f := newFetcher(t, newStore(t), Config{})
	md := func(s string) verify.Digest {
		d, err := verify.ParseDigest(s)
		require.NoError(t, err)
		return d
	}
	for _, tc := range []struct {
		name     string
		ref      string
		expected verify.Digest
		wantErr  error
	}{
		{"single, file digest", ref(srv, single, "v1"), fetchtest.DigestOf(a), nil},
		{"single, manifest digest", ref(srv, single, "v1"), md(mdSingle), nil},
		{"single, wrong", ref(srv, single, "v1"), fetchtest.DigestOf(b), fetch.ErrDigestMismatch},
		{"multi, manifest digest", ref(srv, multi, "v1"), md(mdMulti), nil},
		{"multi, a file's digest", ref(srv, multi, "v1"), fetchtest.DigestOf(a), fetch.ErrDigestOnDirectory},
		{"pinned, other manifest", ref(srv, single, mdSingle), md(mdMulti), fetch.ErrDigestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, tc.ref), Name: "m", Expected: tc.expected})
			if tc.wantErr == nil {
				require.NoError(t, err)
				assert.NotEmpty(t, res.Validators.OCIDigest)
				return
			}
			assert.ErrorIs(t, err, tc.wantErr)
			assert.True(t, fetch.IsPermanent(err))
		})
	}
}

func TestFetch_TagVersusDigest(t *testing.T) {
	srv := registry.Start(t, registry.Options{})
	repo := newRepo("tag")
	v1, v2 := fetchtest.Data(200_001), fetchtest.Data(200_002)
	d1 := srv.Push(t, repo, "latest", registry.File{Name: "model.gguf", Data: v1})
	f := newFetcher(t, newStore(t), Config{})
	fetchAs := func(name, r string) fetch.Result {
		t.Helper()
		res, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, r), Name: name})
		require.NoError(t, err, r)
		return res
	}

	res := fetchAs("bytag", ref(srv, repo, "latest"))
	assert.Equal(t, d1, res.Validators.OCIDigest, "the tag is resolved and its digest recorded")
	assert.Equal(t, fetchtest.DigestOf(v1), res.Digest)
	assert.Equal(t, filepath.Join(f.store.ModelDir("bytag"), "model.gguf"), res.LocalPath)

	// The tag moves; a digest reference still names the old artifact.
	d2 := srv.Push(t, repo, "latest", registry.File{Name: "model-v2.gguf", Data: v2})
	require.NotEqual(t, d1, d2)
	res = fetchAs("bytag", ref(srv, repo, "latest"))
	assert.Equal(t, d2, res.Validators.OCIDigest)
	assert.Equal(t, fetchtest.DigestOf(v2), res.Digest)
	assert.Equal(t, filepath.Join(f.store.ModelDir("bytag"), "model-v2.gguf"), res.LocalPath)
	assert.NoFileExists(t, filepath.Join(f.store.ModelDir("bytag"), "model.gguf"), "the old version's file is pruned")

	pinned := fetchAs("pinned", ref(srv, repo, d1))
	assert.Equal(t, d1, pinned.Validators.OCIDigest)
	got, err := os.ReadFile(pinned.LocalPath)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(v1, got), "a digest reference gets the content it pins")

	// A present model pinned by digest needs no network and still says
	// which manifest it is.
	before := srv.Received("")
	again, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, ref(srv, repo, d1)), Name: "pinned",
		Known: &fetch.Known{LocalPath: pinned.LocalPath, Digest: pinned.Digest, Fingerprint: pinned.Fingerprint}})
	require.NoError(t, err)
	assert.Equal(t, d1, again.Validators.OCIDigest)
	assert.False(t, again.Hashed)
	assert.Equal(t, before, srv.Received(""))
}

func TestFetch_TamperedLayerRejected(t *testing.T) {
	srv := registry.Start(t, registry.Options{})
	repo := newRepo("tamper")
	good := fetchtest.Data(2<<20 + 9)
	other := []byte(`{"ok":true}`)
	srv.Push(t, repo, "v1", registry.File{Name: "model.gguf", Data: good})
	srv.Tamper(t, sha(good))
	store := newStore(t)
	f := newFetcher(t, store, Config{})

	_, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, ref(srv, repo, "v1")), Name: "m"})
	require.Error(t, err)
	assert.ErrorIs(t, err, fetch.ErrDigestMismatch)
	assert.True(t, fetch.IsPermanent(err))
	assert.Contains(t, err.Error(), fetchtest.DigestOf(good).Value, "the message names the digest the manifest promised")
	assert.False(t, store.Has(fetchtest.DigestOf(good), -1))
	assert.NoFileExists(t, filepath.Join(store.ModelDir("m"), "model.gguf"), "nothing at the final path")
	ingest, err := os.ReadDir(filepath.Join(store.Dir(), content.IngestDir))
	require.NoError(t, err)
	assert.Empty(t, ingest, "the ingest of a mismatch is deleted")
	blobs, err := os.ReadDir(filepath.Join(store.Dir(), content.BlobsDir, "sha256"))
	require.NoError(t, err)
	assert.Empty(t, blobs)

	// In a multi-layer artifact one bad layer fails the model.
	repo2 := newRepo("tamper")
	srv.Push(t, repo2, "v1", registry.File{Name: "model.gguf", Data: good}, registry.File{Name: "config.json", Data: other})
	_, err = f.Fetch(context.Background(), fetch.Request{Ref: parse(t, ref(srv, repo2, "v1")), Name: "m2"})
	assert.ErrorIs(t, err, fetch.ErrDigestMismatch)
	assert.Contains(t, err.Error(), "model.gguf")
	assert.False(t, store.Has(fetchtest.DigestOf(good), -1))
}

func TestFetch_DedupeAcrossModels(t *testing.T) {
	srv := registry.Start(t, registry.Options{})
	shared := fetchtest.Data(1<<20 + 77)
	a, b := []byte("config of a"), []byte("config of b")
	repoA, repoB := newRepo("dedupe"), newRepo("dedupe")
	srv.Push(t, repoA, "v1", registry.File{Name: "base.safetensors", Data: shared}, registry.File{Name: "a.json", Data: a})
	srv.Push(t, repoB, "v1", registry.File{Name: "weights/base.safetensors", Data: shared}, registry.File{Name: "b.json", Data: b})
	store := newStore(t)
	f := newFetcher(t, store, Config{})

	_, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, ref(srv, repoA, "v1")), Name: "a"})
	require.NoError(t, err)
	sent := srv.BytesSent(sha(shared))
	assert.GreaterOrEqual(t, sent, int64(len(shared)))

	res, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, ref(srv, repoB, "v1")), Name: "b"})
	require.NoError(t, err)
	assert.Equal(t, sent, srv.BytesSent(sha(shared)), "a layer already in blobs/ is not fetched again")
	assert.Zero(t, srv.Received("/v2/"+repoB+"/blobs/"+sha(shared)), "not even probed")
	assert.Equal(t, int64(len(b))+1, srv.BytesSent(sha(b)), "b's own layer: a one-byte probe and the body")
	fa, err := os.Stat(filepath.Join(store.ModelDir("a"), "base.safetensors"))
	require.NoError(t, err)
	fb, err := os.Stat(filepath.Join(store.ModelDir("b"), "weights", "base.safetensors"))
	require.NoError(t, err)
	assert.True(t, os.SameFile(fa, fb), "both models link the one blob")
	assert.Len(t, res.Files, 2)
}

func TestFetch_RefusesUnsafeAndUnsupportedLayers(t *testing.T) {
	srv := registry.Start(t, registry.Options{})
	data := []byte("payload")
	for _, tc := range []struct {
		name    string
		file    registry.File
		wantErr error
	}{
		{"parent escape", registry.File{Name: "../../../evil", Data: data}, content.ErrUnsafePath},
		{"absolute", registry.File{Name: "/tmp/evil", Data: data}, content.ErrUnsafePath},
		{"inner escape", registry.File{Name: "a/../../evil", Data: data}, content.ErrUnsafePath},
		{"backslash escape", registry.File{Name: `..\evil`, Data: data}, content.ErrUnsafePath},
		{"no title", registry.File{Data: data}, ErrUnsupportedArtifact},
		{"oras directory", registry.File{Name: "dir", Data: data, MediaType: ocispec.MediaTypeImageLayerGzip, Annotations: map[string]string{"io.deis.oras.content.unpack": "true"}}, ErrUnsupportedArtifact},
		{"modelpack tar", registry.File{Data: data, MediaType: "application/vnd.cncf.model.weight.v1.tar", Annotations: map[string]string{AnnotationModelPackFilepath: "model.safetensors"}}, ErrUnsupportedArtifact},
		{"kitops tar", registry.File{Name: "model", Data: data, MediaType: "application/vnd.kitops.modelkit.model.v1.tar+gzip"}, ErrUnsupportedArtifact},
		{"modelpack raw escape", registry.File{Data: data, MediaType: "application/vnd.cncf.model.weight.v1.raw", Annotations: map[string]string{AnnotationModelPackFilepath: "../evil"}}, content.ErrUnsafePath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			store, err := content.Open(filepath.Join(root, "a", "b", "state"))
			require.NoError(t, err)
			defer store.Close()
			f := newFetcher(t, store, Config{})
			repo := newRepo("unsafe")
			srv.Push(t, repo, "v1", tc.file, registry.File{Name: "ok.json", Data: []byte("{}")})
			_, err = f.Fetch(context.Background(), fetch.Request{Ref: parse(t, ref(srv, repo, "v1")), Name: "m"})
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.wantErr)
			assert.True(t, fetch.IsPermanent(err))
			assert.Zero(t, srv.Received("/v2/"+repo+"/blobs/"), "refused before any download")
			for _, p := range []string{filepath.Join(root, "evil"), filepath.Join(root, "a", "evil"), filepath.Join(root, "a", "b", "evil"), "/tmp/evil"} {
				assert.NoFileExists(t, p)
			}
			_, err = os.Stat(store.ModelDir("m"))
			assert.True(t, os.IsNotExist(err), "no model tree is started")
		})
	}
}

func TestFetch_ModelPackRawLayers(t *testing.T) {
	srv := registry.Start(t, registry.Options{})
	weights, cfg := fetchtest.Data(300_000), []byte(`{"model":"x"}`)
	repo := newRepo("modelpack")
	md := srv.Push(t, repo, "v1",
		registry.File{Data: weights, MediaType: "application/vnd.cncf.model.weight.v1.raw", Annotations: map[string]string{AnnotationModelPackFilepath: "weights/model.safetensors"}},
		registry.File{Data: cfg, MediaType: "application/vnd.cncf.model.weight.config.v1.raw", Annotations: map[string]string{AnnotationModelPackFilepath: "config.json"}},
		registry.File{Name: "empty.txt", Data: []byte{}},
	)
	store := newStore(t)
	res, err := newFetcher(t, store, Config{}).Fetch(context.Background(), fetch.Request{Ref: parse(t, ref(srv, repo, "v1")), Name: "mp"})
	require.NoError(t, err)
	assert.Equal(t, md, res.Validators.OCIDigest)
	got, err := os.ReadFile(filepath.Join(store.ModelDir("mp"), "weights", "model.safetensors"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(weights, got))
	fi, err := os.Stat(filepath.Join(store.ModelDir("mp"), "empty.txt"))
	require.NoError(t, err, "an empty layer is an empty file")
	assert.Zero(t, fi.Size())
	assert.Len(t, res.Files, 3)
}

func TestFetch_NotFound(t *testing.T) {
	srv := registry.Start(t, registry.Options{})
	repo := newRepo("nf")
	md := srv.Push(t, repo, "v1", registry.File{Name: "m.gguf", Data: []byte("x")})
	f := newFetcher(t, newStore(t), Config{})
	missingDigest := "sha256:" + strings.Repeat("ab", 32)
	for _, r := range []string{
		ref(srv, repo, "v2"),
		ref(srv, "models/never-pushed", "v1"),
		ref(srv, repo, missingDigest),
	} {
		start := time.Now()
		_, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, r), Name: "m"})
		assert.ErrorIs(t, err, fetch.ErrNotFound, r)
		assert.True(t, fetch.IsPermanent(err), r)
		assert.Contains(t, err.Error(), strings.TrimPrefix(r, "oci://"), "the message names the reference")
		assert.Less(t, time.Since(start), 2*time.Second, "not retried")
	}
	_, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, ref(srv, repo, md)), Name: "m"})
	assert.NoError(t, err)
}

func TestFetch_ImageIndexRefused(t *testing.T) {
	srv := registry.Start(t, registry.Options{})
	repo := newRepo("index")
	md := srv.Push(t, repo, "v1", registry.File{Name: "m.gguf", Data: []byte("x")})
	desc, err := srv.Repository(t, repo).Resolve(context.Background(), md)
	require.NoError(t, err)
	idx, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}}})
	require.NoError(t, err)
	srv.PushManifest(t, repo, "multi", ocispec.MediaTypeImageIndex, idx)
	_, err = newFetcher(t, newStore(t), Config{}).Fetch(context.Background(), fetch.Request{Ref: parse(t, ref(srv, repo, "multi")), Name: "m"})
	assert.ErrorIs(t, err, ErrUnsupportedArtifact)
	assert.True(t, fetch.IsPermanent(err))
	assert.Contains(t, err.Error(), "reference one of them by digest")
}

func TestFetch_Offline(t *testing.T) {
	srv := registry.Start(t, registry.Options{})
	repo := newRepo("offline")
	data := fetchtest.Data(10_000)
	srv.Push(t, repo, "v1", registry.File{Name: "m.gguf", Data: data})
	store := newStore(t)
	res, err := newFetcher(t, store, Config{}).Fetch(context.Background(), fetch.Request{Ref: parse(t, ref(srv, repo, "v1")), Name: "m"})
	require.NoError(t, err)

	off := newFetcher(t, store, Config{Offline: true})
	before := srv.Received("")
	got, err := off.Fetch(context.Background(), fetch.Request{Ref: parse(t, ref(srv, repo, "v1")), Name: "m",
		Known: &fetch.Known{LocalPath: res.LocalPath, Digest: res.Digest, Fingerprint: res.Fingerprint}})
	require.NoError(t, err, "a present model is served offline")
	assert.Equal(t, res.LocalPath, got.LocalPath)
	_, err = off.Fetch(context.Background(), fetch.Request{Ref: parse(t, ref(srv, repo, "v1")), Name: "other"})
	assert.ErrorIs(t, err, download.ErrOffline)
	assert.True(t, fetch.IsPermanent(err))
	assert.Equal(t, before, srv.Received(""), "offline means no request at all")
}
