package hf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	"github.com/model-provisioner/model-provisioner/fetch/https"
	"github.com/model-provisioner/model-provisioner/internal/testserver/hubtest"
)

const token = "hf_plantedTokenThatMustNeverLeak0123456789"

func testDownload() download.Options {
	return download.Options{PartSize: 1 << 20, Parts: 4, Stall: 2 * time.Second, RetryBase: 10 * time.Millisecond, Headroom: -1}
}

func newHubFetcher(t *testing.T, hub *hubtest.Hub, store *content.Store, tok string, offline bool) *Fetcher {
	t.Helper()
	f, err := New(store, Config{Endpoint: hub.URL, Token: tok, Client: https.ClientConfig{RootCAs: hub.CertPool()}, Download: testDownload(), Offline: offline})
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

func parse(t *testing.T, s string) fetch.Ref {
	t.Helper()
	r, err := fetch.ParseRef(s, "/")
	require.NoError(t, err)
	return r
}

func TestConformance_hubtest(t *testing.T) {
	hub := hubtest.New(t)
	type published struct{ repo, sha string }
	var mu sync.Mutex
	refs := map[string]published{}
	n := 0
	publish := func(data []byte, opts ...hubtest.RepoOption) string {
		mu.Lock()
		n++
		repo := fmt.Sprintf("r%d", n)
		mu.Unlock()
		hub.AddRepo("org", repo, "main", map[string][]byte{"sub/model.gguf": data}, opts...)
		ref := "hf:org/" + repo + "/sub/model.gguf@main"
		mu.Lock()
		refs[ref] = published{repo: repo, sha: hubtest.SHA256(data)}
		mu.Unlock()
		return ref
	}
	fetchtest.Run(t, fetchtest.Target{
		Scheme: fetch.SchemeHF,
		NewFetcher: func(t *testing.T, store *content.Store) fetch.Fetcher {
			return newHubFetcher(t, hub, store, token, false)
		},
		Publish: func(t *testing.T, data []byte) string { return publish(data) },
		Missing: func(t *testing.T) string { return "hf:org/no-such-repo/model.gguf@main" },
		PublishTruncated: func(t *testing.T, data []byte, after int64) string {
			ref := publish(data)
			hub.TruncateCDN(1, after)
			return ref
		},
		PublishSlow: func(t *testing.T, data []byte, rate int) string {
			return publish(data, hubtest.CDNRate(int64(rate)))
		},
		BytesServed: func(t *testing.T, ref string) int64 {
			mu.Lock()
			p := refs[ref]
			mu.Unlock()
			return hub.CDNBytesSentForRepo("org", p.repo, p.sha)
		},
	})
}

func TestFetch_TokenStaysOnTheHub(t *testing.T) {
	hub := hubtest.New(t)
	data := fetchtest.Data(2 << 20)
	commit := hub.AddRepo("org", "private", "main", map[string][]byte{"m.gguf": data}, hubtest.Private(token))
	f := newHubFetcher(t, hub, newStore(t), token, false)
	res, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, "hf:org/private/m.gguf"), Name: "m"})
	require.NoError(t, err)
	assert.Equal(t, fetchtest.DigestOf(data), res.Digest, "verified against the Hub's LFS sha256")
	assert.Equal(t, commit, res.Validators.Revision, "the revision is pinned to the commit the Hub reported")
	require.NotEmpty(t, hub.CDNRequests())
	for _, r := range hub.CDNRequests() {
		assert.Empty(t, r.Header.Get("Authorization"), "the token must not reach the storage host")
	}
	sawToken := false
	for _, r := range hub.HubRequests() {
		sawToken = sawToken || r.Header.Get("Authorization") == "Bearer "+token
	}
	assert.True(t, sawToken, "the Hub itself gets the token")

	// Without the token: a clear, permanent error that names no secret.
	_, err = newHubFetcher(t, hub, newStore(t), "", false).Fetch(context.Background(), fetch.Request{Ref: parse(t, "hf:org/private/m.gguf"), Name: "m"})
	require.Error(t, err)
	assert.True(t, fetch.IsPermanent(err))
	assert.Contains(t, err.Error(), "HF_TOKEN")
}

func TestFetch_ExpectedDigestDisagreesWithHub(t *testing.T) {
	hub := hubtest.New(t)
	data := fetchtest.Data(2 << 20)
	hub.AddRepo("org", "m", "main", map[string][]byte{"m.gguf": data})
	wrong := fetchtest.DigestOf([]byte("pinned elsewhere"))
	_, err := newHubFetcher(t, hub, newStore(t), "", false).Fetch(context.Background(), fetch.Request{Ref: parse(t, "hf:org/m/m.gguf"), Name: "m", Expected: wrong})
	require.ErrorIs(t, err, fetch.ErrDigestMismatch)
	assert.Contains(t, err.Error(), wrong.Value)
	assert.Contains(t, err.Error(), fetchtest.DigestOf(data).Value)
	assert.Empty(t, hub.CDNRequests(), "a known mismatch downloads nothing")
}

func TestFetch_PinnedRevision(t *testing.T) {
	hub := hubtest.New(t)
	v1 := fetchtest.Data(2 << 20)
	c1 := hub.AddRepo("org", "m", "main", map[string][]byte{"m.gguf": v1})
	hub.AddRepo("org", "m", "main", map[string][]byte{"m.gguf": fetchtest.Data(2<<20 + 5)})
	f := newHubFetcher(t, hub, newStore(t), "", false)
	res, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, "hf:org/m/m.gguf@"+c1), Name: "m"})
	require.NoError(t, err)
	assert.Equal(t, fetchtest.DigestOf(v1), res.Digest, "a commit pin gets that commit's bytes, whatever main says")
	assert.Equal(t, c1, res.Validators.Revision)
}

func TestFetch_SmallGitFileAndResolveCache(t *testing.T) {
	for _, opts := range [][]hubtest.Option{nil, {hubtest.WithResolveCache()}} {
		hub := hubtest.New(t, opts...)
		cfg := []byte(`{"architectures":["LlamaForCausalLM"],"max_position_embeddings":4096}`)
		commit := hub.AddRepo("org", "m", "main", map[string][]byte{"config.json": cfg})
		res, err := newHubFetcher(t, hub, newStore(t), token, false).Fetch(context.Background(), fetch.Request{Ref: parse(t, "hf:org/m/config.json"), Name: "m"})
		require.NoError(t, err)
		got, err := os.ReadFile(res.LocalPath)
		require.NoError(t, err)
		assert.Equal(t, cfg, got)
		assert.Equal(t, commit, res.Validators.Revision)
	}
}

func TestFetch_RepoWithIncludePatterns(t *testing.T) {
	hub := hubtest.New(t, hubtest.WithTreePageSize(2))
	files := map[string][]byte{
		"config.json":                      []byte(`{"max_position_embeddings":8192}`),
		"tokenizer.json":                   []byte(`{"model":{}}`),
		"model-00001-of-00002.safetensors": fetchtest.Data(2 << 20),
		"model-00002-of-00002.safetensors": fetchtest.Data(2<<20 + 1),
		"original/consolidated.pth":        fetchtest.Data(1 << 20),
		"README.md":                        []byte("# readme"),
	}
	commit := hub.AddRepo("org", "llm", "main", files)
	store := newStore(t)
	f := newHubFetcher(t, hub, store, "", false)
	req := fetch.Request{Ref: parse(t, "hf:org/llm@main"), Name: "llm", Include: []string{"*.safetensors", "*.json"}}
	res, err := f.Fetch(context.Background(), req)
	require.NoError(t, err)
	assert.True(t, res.IsDir)
	assert.Equal(t, store.ModelDir("llm"), res.LocalPath)
	assert.Equal(t, commit, res.Validators.Revision)
	require.Len(t, res.Files, 4, "tree pages are followed and patterns applied")
	for _, fl := range res.Files {
		got, err := os.ReadFile(filepath.Join(res.LocalPath, fl.Path))
		require.NoError(t, err)
		assert.Equal(t, files[fl.Path], got, fl.Path)
		assert.Equal(t, fetchtest.DigestOf(files[fl.Path]), fl.Digest)
	}
	assert.NoFileExists(t, filepath.Join(res.LocalPath, "README.md"))
	assert.NoDirExists(t, filepath.Join(res.LocalPath, "original"))

	// Present: no network at all, even offline.
	hub.ResetRequests()
	req.Known = &fetch.Known{Files: res.Files}
	again, err := newHubFetcher(t, hub, store, "", true).Fetch(context.Background(), req)
	require.NoError(t, err)
	assert.Len(t, again.Files, 4)
	assert.Empty(t, hub.HubRequests())
	assert.Empty(t, hub.CDNRequests())

	// Offline and absent: the clear error.
	_, err = newHubFetcher(t, hub, newStore(t), "", true).Fetch(context.Background(), fetch.Request{Ref: parse(t, "hf:org/llm@main"), Name: "llm"})
	require.ErrorIs(t, err, download.ErrOffline)
	assert.Contains(t, err.Error(), "offline and not present")
}

func TestFetch_HubErrors(t *testing.T) {
	hub := hubtest.New(t)
	hub.AddRepo("org", "m", "main", map[string][]byte{"m.gguf": fetchtest.Data(2 << 20)})
	hub.AddRepo("org", "gated", "main", map[string][]byte{"m.gguf": fetchtest.Data(2 << 20)}, hubtest.Gated("hf_someoneElsesTokenxxxxxxxxxxxxxx"))
	f := newHubFetcher(t, hub, newStore(t), "", false)
	tests := []struct {
		ref, want string
		notFound  bool
	}{
		{"hf:org/m/nope.gguf", "not found", true},
		{"hf:org/m/m.gguf@no-such-branch", "revision", true},
		{"hf:org/none/m.gguf", "repository not found", true},
		{"hf:org/gated/m.gguf", "gated", false},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, tc.ref), Name: "m"})
			require.Error(t, err)
			assert.True(t, fetch.IsPermanent(err), "%v", err)
			assert.Contains(t, strings.ToLower(err.Error()), tc.want)
			assert.Equal(t, tc.notFound, errorsIsNotFound(err))
		})
	}
}

func errorsIsNotFound(err error) bool { return fetchIsNotFound(err) }

func TestFetch_RetriesHub429(t *testing.T) {
	hub := hubtest.New(t)
	data := fetchtest.Data(2 << 20)
	hub.AddRepo("org", "m", "main", map[string][]byte{"m.gguf": data})
	hub.FailHub(2, 429, time.Second)
	start := time.Now()
	res, err := newHubFetcher(t, hub, newStore(t), "", false).Fetch(context.Background(), fetch.Request{Ref: parse(t, "hf:org/m/m.gguf"), Name: "m"})
	require.NoError(t, err)
	assert.Equal(t, fetchtest.DigestOf(data), res.Digest)
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "Retry-After is honoured")
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pats []string
		name string
		want bool
	}{
		{nil, "a/b.bin", true},
		{[]string{"*.safetensors"}, "model.safetensors", true},
		{[]string{"*.safetensors"}, "sub/model.safetensors", false},
		{[]string{"**/*.json"}, "a/b/c.json", true},
		{[]string{"**/*.json"}, "c.json", true},
		{[]string{"original/*"}, "original/x.pth", true},
		{[]string{"tokenizer*"}, "tokenizer_config.json", true},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, Match(tc.pats, tc.name), "%v %s", tc.pats, tc.name)
	}
}

func fetchIsNotFound(err error) bool { return errors.Is(err, fetch.ErrNotFound) }
