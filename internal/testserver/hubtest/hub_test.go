package hubtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	weights = bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB: LFS
	cfgJSON = []byte(`{"architectures":["LlamaForCausalLM"]}`)
)

func newHub(t *testing.T, opts ...Option) (*Hub, string) {
	h := New(t, opts...)
	commit := h.AddRepo("org", "model", "main", map[string][]byte{
		"config.json":             cfgJSON,
		"model.safetensors":       weights,
		"sub/dir/tokenizer.json":  []byte(`{}`),
		"sub/dir/big.gguf":        append([]byte("GGUF"), weights...),
		"sub/other/notes.txt":     []byte("hello"),
		"sub/other/deeper/x.bin":  weights[:2048],
		"zzz/last.bin":            weights[:4096],
		"sub/dir/space name.json": []byte(`[]`),
	})
	return h, commit
}

// noRedirect is a client that returns redirects instead of following them.
func noRedirect(h *Hub) *http.Client {
	c := h.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func do(t *testing.T, c *http.Client, method, u string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func TestHub_ResolveLFS(t *testing.T) {
	h, commit := newHub(t)
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		t.Run(method, func(t *testing.T) {
			resp, body := do(t, noRedirect(h), method, h.ResolveURL("org", "model", "main", "model.safetensors"), nil)
			require.Equal(t, http.StatusFound, resp.StatusCode)
			assert.Equal(t, commit, resp.Header.Get("X-Repo-Commit"))
			assert.Equal(t, `"`+SHA256(weights)+`"`, resp.Header.Get("X-Linked-Etag"))
			assert.Equal(t, fmt.Sprint(len(weights)), resp.Header.Get("X-Linked-Size"))
			assert.Regexp(t, `^"[0-9a-f]{40}"$`, resp.Header.Get("ETag"))
			assert.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))
			loc, err := url.Parse(resp.Header.Get("Location"))
			require.NoError(t, err)
			assert.Equal(t, "https", loc.Scheme)
			assert.Equal(t, "localhost", loc.Hostname(), "the CDN must be another host than the Hub")
			assert.NotEqual(t, "localhost", regexp.MustCompile(`//([^:/]+)`).FindStringSubmatch(h.URL)[1])
			assert.True(t, strings.HasSuffix(loc.Path, "/"+SHA256(weights)), loc.Path)
			for _, k := range []string{"X-Amz-Signature", "X-Amz-Credential", "X-Amz-Expires", "X-Amz-Date"} {
				assert.NotEmpty(t, loc.Query().Get(k), k)
			}
			if method == http.MethodGet {
				assert.Equal(t, resp.ContentLength, int64(len(body)))
				assert.Contains(t, string(body), "Redirecting to https://localhost:")
			} else {
				assert.Empty(t, body)
				assert.Positive(t, resp.ContentLength, "HEAD keeps the redirect body's length")
			}
		})
	}
}

func TestHub_ResolveGitFile(t *testing.T) {
	h, commit := newHub(t)
	etag := `"` + GitBlobID(cfgJSON) + `"`
	for _, tc := range []struct {
		name, method, revision string
		header                 http.Header
		status                 int
		body                   []byte
	}{
		{name: "head", method: http.MethodHead, revision: "main", status: 200},
		{name: "get", method: http.MethodGet, revision: "main", status: 200, body: cfgJSON},
		{name: "by commit", method: http.MethodGet, revision: commit, status: 200, body: cfgJSON},
		{name: "range", method: http.MethodGet, revision: "main", header: http.Header{"Range": {"bytes=2-5"}}, status: 206, body: cfgJSON[2:6]},
		{name: "not modified", method: http.MethodGet, revision: "main", header: http.Header{"If-None-Match": {etag}}, status: 304, body: []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, noRedirect(h), tc.method, h.ResolveURL("org", "model", tc.revision, "config.json"), tc.header)
			require.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, commit, resp.Header.Get("X-Repo-Commit"))
			assert.Equal(t, etag, resp.Header.Get("ETag"))
			assert.Empty(t, resp.Header.Get("X-Linked-Etag"))
			assert.Empty(t, resp.Header.Get("Location"))
			if tc.body != nil {
				assert.Equal(t, string(tc.body), string(body))
			}
			if tc.status == 200 {
				assert.Equal(t, int64(len(cfgJSON)), resp.ContentLength)
			}
		})
	}
	// The git blob id is git's own.
	if git, err := exec.LookPath("git"); err == nil {
		cmd := exec.Command(git, "hash-object", "--stdin")
		cmd.Stdin = bytes.NewReader(cfgJSON)
		out, err := cmd.Output()
		require.NoError(t, err)
		assert.Equal(t, strings.TrimSpace(string(out)), GitBlobID(cfgJSON))
	}
}

func TestHub_ResolveCache(t *testing.T) {
	h, commit := newHub(t, WithResolveCache())
	resp, _ := do(t, noRedirect(h), http.MethodHead, h.ResolveURL("org", "model", "main", "config.json"), nil)
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	assert.Equal(t, commit, resp.Header.Get("X-Repo-Commit"))
	loc := resp.Header.Get("Location")
	assert.True(t, strings.HasPrefix(loc, "/api/resolve-cache/models/org/model/"+commit+"/config.json?"), loc)

	resp, body := do(t, h.Client(), http.MethodGet, h.ResolveURL("org", "model", "main", "config.json"), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, cfgJSON, body)
	assert.Equal(t, `"`+GitBlobID(cfgJSON)+`"`, resp.Header.Get("ETag"))

	// LFS files still go to the CDN.
	resp, _ = do(t, noRedirect(h), http.MethodHead, h.ResolveURL("org", "model", "main", "model.safetensors"), nil)
	assert.Equal(t, http.StatusFound, resp.StatusCode)
}

func TestHub_Errors(t *testing.T) {
	h, commit := newHub(t)
	h.AddRepo("org", "gated", "main", map[string][]byte{"a.bin": weights}, Gated("hf_good"))
	h.AddRepo("org", "private", "main", map[string][]byte{"a.bin": weights}, Private("hf_good"))
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	for _, tc := range []struct {
		name   string
		url    string
		header http.Header
		status int
		code   string
		commit string
	}{
		{name: "missing repo", url: h.ResolveURL("org", "nope", "main", "a.bin"), status: 401, code: "RepoNotFound"},
		{name: "missing repo with token", url: h.ResolveURL("org", "nope", "main", "a.bin"), header: bearer("hf_good"), status: 401, code: "RepoNotFound"},
		{name: "missing file", url: h.ResolveURL("org", "model", "main", "nope.bin"), status: 404, code: "EntryNotFound", commit: commit},
		{name: "missing revision", url: h.ResolveURL("org", "model", "v9", "config.json"), status: 404, code: "RevisionNotFound"},
		{name: "short commit", url: h.ResolveURL("org", "model", commit[:7], "config.json"), status: 404, code: "RevisionNotFound"},
		{name: "gated without token", url: h.ResolveURL("org", "gated", "main", "a.bin"), status: 401, code: "GatedRepo"},
		{name: "gated with other token", url: h.ResolveURL("org", "gated", "main", "a.bin"), header: bearer("hf_other"), status: 403, code: "GatedRepo"},
		{name: "gated with token", url: h.ResolveURL("org", "gated", "main", "a.bin"), header: bearer("hf_good"), status: 302},
		{name: "private without token", url: h.ResolveURL("org", "private", "main", "a.bin"), status: 401, code: "RepoNotFound"},
		{name: "private with other token", url: h.ResolveURL("org", "private", "main", "a.bin"), header: bearer("hf_other"), status: 401, code: "RepoNotFound"},
		{name: "private with token", url: h.ResolveURL("org", "private", "main", "a.bin"), header: bearer("hf_good"), status: 302},
		{name: "gated tree without token", url: h.URL + "/api/models/org/gated/tree/main", status: 401, code: "GatedRepo"},
		{name: "gated revision api", url: h.URL + "/api/models/org/gated/revision/main", header: bearer("hf_good"), status: 200},
		{name: "tree of missing dir", url: h.URL + "/api/models/org/model/tree/main/nope", status: 404, code: "EntryNotFound", commit: commit},
		{name: "revision api unknown", url: h.URL + "/api/models/org/model/revision/nope", status: 404, code: "RevisionNotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{http.MethodHead, http.MethodGet} {
				resp, body := do(t, noRedirect(h), method, tc.url, tc.header)
				require.Equal(t, tc.status, resp.StatusCode, method)
				assert.Equal(t, tc.code, resp.Header.Get("X-Error-Code"), method)
				if tc.code != "" {
					assert.Equal(t, tc.commit, resp.Header.Get("X-Repo-Commit"), method)
					assert.NotEmpty(t, resp.Header.Get("X-Error-Message"))
					if method == http.MethodGet {
						var e struct{ Error string }
						require.NoError(t, json.Unmarshal(body, &e))
						assert.Equal(t, resp.Header.Get("X-Error-Message"), e.Error)
					}
				}
			}
		})
	}
}

func TestHub_Tree(t *testing.T) {
	h, commit := newHub(t, WithTreePageSize(3))
	client := h.Client()

	// list follows Link rel="next" like a client would.
	list := func(t *testing.T, u string) ([]treeEntry, int) {
		t.Helper()
		var all []treeEntry
		pages := 0
		for u != "" {
			resp, body := do(t, client, http.MethodGet, u, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			var page []treeEntry
			require.NoError(t, json.Unmarshal(body, &page))
			assert.LessOrEqual(t, len(page), 3)
			all = append(all, page...)
			pages++
			u = ""
			if link := resp.Header.Get("Link"); link != "" {
				m := regexp.MustCompile(`^<([^>]+)>; rel="next"$`).FindStringSubmatch(link)
				require.NotNil(t, m, link)
				assert.Contains(t, m[1], "cursor=")
				assert.True(t, strings.HasPrefix(m[1], h.URL+"/api/models/org/model/tree/"), m[1])
				u = m[1]
			}
		}
		return all, pages
	}
	paths := func(es []treeEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Type[:1]+":"+e.Path)
		}
		return out
	}

	all, pages := list(t, h.URL+"/api/models/org/model/tree/main?recursive=true")
	assert.Equal(t, []string{
		"f:config.json", "f:model.safetensors", "d:sub", "d:sub/dir", "f:sub/dir/big.gguf",
		"f:sub/dir/space name.json", "f:sub/dir/tokenizer.json", "d:sub/other", "d:sub/other/deeper",
		"f:sub/other/deeper/x.bin", "f:sub/other/notes.txt", "d:zzz", "f:zzz/last.bin",
	}, paths(all))
	assert.Equal(t, 5, pages)

	byPath := map[string]treeEntry{}
	for _, e := range all {
		byPath[e.Path] = e
	}
	st := byPath["model.safetensors"]
	require.NotNil(t, st.LFS)
	assert.Equal(t, SHA256(weights), st.LFS.OID)
	assert.Equal(t, int64(len(weights)), st.Size)
	assert.Equal(t, int64(len(weights)), st.LFS.Size)
	assert.Equal(t, newFile("x", weights, true).gitOID, st.OID, "oid is the pointer's blob id")
	assert.InDelta(t, 134, st.LFS.PointerSize, 4)
	cfg := byPath["config.json"]
	assert.Nil(t, cfg.LFS)
	assert.Equal(t, GitBlobID(cfgJSON), cfg.OID)
	assert.Regexp(t, `^[0-9a-f]{40}$`, byPath["sub/dir"].OID)
	assert.NotEqual(t, byPath["sub/dir"].OID, byPath["sub/other"].OID)

	top, _ := list(t, h.URL+"/api/models/org/model/tree/"+commit)
	assert.Equal(t, []string{"f:config.json", "f:model.safetensors", "d:sub", "d:zzz"}, paths(top))

	// A subdirectory, escaped as one segment the way huggingface_hub sends it.
	sub, _ := list(t, h.URL+"/api/models/org/model/tree/main/sub%2Fdir?recursive=1")
	assert.Equal(t, []string{"f:sub/dir/big.gguf", "f:sub/dir/space name.json", "f:sub/dir/tokenizer.json"}, paths(sub))
	sub2, _ := list(t, h.URL+"/api/models/org/model/tree/main/sub/other?recursive=false")
	assert.Equal(t, []string{"d:sub/other/deeper", "f:sub/other/notes.txt"}, paths(sub2))

	resp, _ := do(t, client, http.MethodGet, h.URL+"/api/models/org/model/tree/main?cursor=garbage", nil)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestHub_RevisionAPI(t *testing.T) {
	h, commit := newHub(t)
	h.SetRef("org", "model", "refs/pr/1", commit)
	for _, u := range []string{
		h.URL + "/api/models/org/model/revision/main",
		h.URL + "/api/models/org/model/revision/" + commit,
		h.URL + "/api/models/org/model/revision/refs%2Fpr%2F1",
		h.URL + "/api/models/org/model/revision/refs/pr/1",
		h.URL + "/api/models/org/model",
	} {
		resp, body := do(t, h.Client(), http.MethodGet, u+"?blobs=true", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, u)
		var info struct {
			ID       string `json:"id"`
			SHA      string `json:"sha"`
			Siblings []struct {
				RFilename string `json:"rfilename"`
				Size      int64  `json:"size"`
				LFS       *struct {
					SHA256 string `json:"sha256"`
				} `json:"lfs"`
			} `json:"siblings"`
		}
		require.NoError(t, json.Unmarshal(body, &info))
		assert.Equal(t, "org/model", info.ID)
		assert.Equal(t, commit, info.SHA)
		require.Len(t, info.Siblings, 8)
		assert.Equal(t, "config.json", info.Siblings[0].RFilename)
		assert.Nil(t, info.Siblings[0].LFS)
		assert.Equal(t, "model.safetensors", info.Siblings[1].RFilename)
		require.NotNil(t, info.Siblings[1].LFS)
		assert.Equal(t, SHA256(weights), info.Siblings[1].LFS.SHA256)
	}
	// Resolve accepts the same spellings of a ref.
	for _, rev := range []string{"refs%2Fpr%2F1", "refs/pr/1"} {
		resp, _ := do(t, noRedirect(h), http.MethodHead, h.URL+"/org/model/resolve/"+rev+"/config.json", nil)
		assert.Equal(t, http.StatusOK, resp.StatusCode, rev)
	}
}

func TestHub_MoveBranch(t *testing.T) {
	h, first := newHub(t)
	second := h.AddRepo("org", "model", "main", map[string][]byte{"config.json": []byte(`{"v":2}`)})
	assert.NotEqual(t, first, second)
	assert.Equal(t, second, h.Commit("org", "model", "main"))
	// Same files again: still a new commit, as the parent changed.
	third := h.AddRepo("org", "model", "main", map[string][]byte{"config.json": []byte(`{"v":2}`)})
	assert.NotEqual(t, second, third)

	_, body := do(t, h.Client(), http.MethodGet, h.ResolveURL("org", "model", "main", "config.json"), nil)
	assert.Equal(t, `{"v":2}`, string(body))
	// The old commit still serves the old content: a pinned download is
	// unaffected by the branch moving.
	_, body = do(t, h.Client(), http.MethodGet, h.ResolveURL("org", "model", first, "config.json"), nil)
	assert.Equal(t, string(cfgJSON), string(body))
	resp, _ := do(t, noRedirect(h), http.MethodHead, h.ResolveURL("org", "model", "main", "model.safetensors"), nil)
	assert.Equal(t, "EntryNotFound", resp.Header.Get("X-Error-Code"))

	h.SetRef("org", "model", "main", first)
	assert.Equal(t, first, h.Commit("org", "model", "main"))
	_, body = do(t, h.Client(), http.MethodGet, h.ResolveURL("org", "model", "main", "config.json"), nil)
	assert.Equal(t, string(cfgJSON), string(body))
}

func mustRequest(t *testing.T, u, rng string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	req.Header.Set("Range", rng)
	return req
}

// cdnURL resolves an LFS file and returns its CDN location.
func cdnURL(t *testing.T, h *Hub, file string) string {
	t.Helper()
	resp, _ := do(t, noRedirect(h), http.MethodHead, h.ResolveURL("org", "model", "main", file), nil)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	return resp.Header.Get("Location")
}

func TestCDN_Range(t *testing.T) {
	h, _ := newHub(t)
	loc := cdnURL(t, h, "model.safetensors")
	etag := `"` + SHA256(weights) + `"`
	for _, tc := range []struct {
		name         string
		header       http.Header
		status       int
		body         []byte
		contentRange string
	}{
		{name: "whole", status: 200, body: weights},
		{name: "range", header: http.Header{"Range": {"bytes=100-199"}}, status: 206, body: weights[100:200],
			contentRange: fmt.Sprintf("bytes 100-199/%d", len(weights))},
		{name: "open range", header: http.Header{"Range": {"bytes=65000-"}}, status: 206, body: weights[65000:],
			contentRange: fmt.Sprintf("bytes 65000-%d/%d", len(weights)-1, len(weights))},
		{name: "if-range match", header: http.Header{"Range": {"bytes=0-9"}, "If-Range": {etag}}, status: 206, body: weights[:10],
			contentRange: fmt.Sprintf("bytes 0-9/%d", len(weights))},
		{name: "if-range stale", header: http.Header{"Range": {"bytes=0-9"}, "If-Range": {`"other"`}}, status: 200, body: weights},
		{name: "unsatisfiable", header: http.Header{"Range": {"bytes=99999999-"}}, status: 416,
			contentRange: fmt.Sprintf("bytes */%d", len(weights))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, h.Client(), http.MethodGet, loc, tc.header)
			require.Equal(t, tc.status, resp.StatusCode)
			if tc.body != nil {
				assert.True(t, bytes.Equal(tc.body, body), "body differs")
			}
			assert.Equal(t, tc.contentRange, resp.Header.Get("Content-Range"))
			if tc.status < 300 {
				assert.Equal(t, etag, resp.Header.Get("ETag"))
				assert.NotEmpty(t, resp.Header.Get("Last-Modified"))
				assert.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))
				assert.Contains(t, resp.Header.Get("Content-Disposition"), `filename="model.safetensors"`)
			}
		})
	}
}

func TestCDN_TokenNeverForwarded(t *testing.T) {
	h, _ := newHub(t)
	h.AddRepo("org", "gated", "main", map[string][]byte{"w.bin": weights}, Gated("hf_secret"))
	req, err := http.NewRequest(http.MethodGet, h.ResolveURL("org", "gated", "main", "w.bin"), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer hf_secret")
	resp, err := h.Client().Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, weights, body)

	hub := h.HubRequests()
	require.Len(t, hub, 1)
	assert.Equal(t, "Bearer hf_secret", hub[0].Header.Get("Authorization"))
	assert.Equal(t, http.StatusFound, hub[0].Status)
	cdn := h.CDNRequests()
	require.Len(t, cdn, 1)
	assert.Empty(t, cdn[0].Header.Get("Authorization"), "the token reached the CDN")
	assert.True(t, strings.HasPrefix(cdn[0].URL, h.CDN.URL+"/repos/"), cdn[0].URL)
	assert.Equal(t, int64(len(weights)), cdn[0].BodyBytes)
	assert.Equal(t, int64(len(weights)), h.CDNBytesSent(SHA256(weights)))
	assert.Equal(t, int64(len(weights)), h.CDNBytesSentForRepo("org", "gated", SHA256(weights)))
	assert.Zero(t, h.CDNBytesSentForRepo("org", "model", SHA256(weights)), "same bytes, other repository")

	h.ResetRequests()
	assert.Empty(t, h.HubRequests())
	assert.Empty(t, h.CDNRequests())
}

func TestCDN_Faults(t *testing.T) {
	h, _ := newHub(t)
	loc := cdnURL(t, h, "model.safetensors")

	t.Run("fail", func(t *testing.T) {
		h.FailCDN(2, http.StatusTooManyRequests, 1500*time.Millisecond)
		for i := 0; i < 2; i++ {
			resp, _ := do(t, h.Client(), http.MethodGet, loc, nil)
			assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
			assert.Equal(t, "2", resp.Header.Get("Retry-After"))
		}
		resp, _ := do(t, h.Client(), http.MethodGet, loc, nil)
		assert.Equal(t, http.StatusOK, resp.StatusCode)

		h.FailCDN(1, http.StatusInternalServerError, 0)
		resp, _ = do(t, h.Client(), http.MethodGet, loc, nil)
		assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
		assert.Empty(t, resp.Header.Get("Retry-After"))
	})

	t.Run("hub fail", func(t *testing.T) {
		h.FailHub(1, http.StatusServiceUnavailable, time.Second)
		resp, _ := do(t, noRedirect(h), http.MethodHead, h.ResolveURL("org", "model", "main", "config.json"), nil)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.Equal(t, "1", resp.Header.Get("Retry-After"))
		resp, _ = do(t, noRedirect(h), http.MethodHead, h.ResolveURL("org", "model", "main", "config.json"), nil)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("truncate", func(t *testing.T) {
		h.TruncateCDN(2, 1000)
		// Neither a probe nor a part ending before the offset is cut.
		resp, body := do(t, h.Client(), http.MethodGet, loc, http.Header{"Range": {"bytes=0-0"}})
		assert.Equal(t, weights[:1], body)
		resp, body = do(t, h.Client(), http.MethodGet, loc, http.Header{"Range": {"bytes=0-999"}})
		assert.Equal(t, weights[:1000], body)

		// A part spanning the offset ends there.
		resp, err := h.Client().Do(mustRequest(t, loc, "bytes=500-4999"))
		require.NoError(t, err)
		assert.Equal(t, int64(4500), resp.ContentLength)
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.Equal(t, weights[500:1000], got)

		resp, err = h.Client().Get(loc)
		require.NoError(t, err)
		assert.Equal(t, int64(len(weights)), resp.ContentLength)
		got, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Error(t, err)
		assert.True(t, errors.Is(err, io.ErrUnexpectedEOF), "%v", err)
		assert.Equal(t, weights[:1000], got)

		// Resume from where it broke; the truncations are used up.
		resp, body = do(t, h.Client(), http.MethodGet, loc, http.Header{"Range": {"bytes=1000-"}})
		assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
		assert.Equal(t, weights[1000:], body)
		resp, body = do(t, h.Client(), http.MethodGet, loc, nil)
		assert.Equal(t, weights, body)
	})

	t.Run("tampered url", func(t *testing.T) {
		u, err := url.Parse(loc)
		require.NoError(t, err)
		q := u.Query()
		q.Set("X-Amz-Expires", "999999")
		u.RawQuery = q.Encode()
		resp, body := do(t, h.Client(), http.MethodGet, u.String(), nil)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.Contains(t, string(body), "SignatureDoesNotMatch")
	})

	t.Run("expired", func(t *testing.T) {
		h.ExpireCDNURLs()
		resp, body := do(t, h.Client(), http.MethodGet, loc, nil)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.Contains(t, string(body), "Request has expired")
		fresh := cdnURL(t, h, "model.safetensors")
		resp, _ = do(t, h.Client(), http.MethodGet, fresh, nil)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})
}

func TestCDN_Rate(t *testing.T) {
	h := New(t)
	h.AddRepo("org", "slow", "main", map[string][]byte{"w.bin": weights}, CDNRate(256<<10))
	start := time.Now()
	resp, body := do(t, h.Client(), http.MethodGet, h.ResolveURL("org", "slow", "main", "w.bin"), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, weights, body)
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "64 KiB at 256 KiB/s")

	// A client that goes away stops the transfer.
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.ResolveURL("org", "slow", "main", "w.bin"), nil)
	require.NoError(t, err)
	resp, err = h.Client().Do(req)
	require.NoError(t, err)
	_, err = io.ReadFull(resp.Body, make([]byte, 1000))
	require.NoError(t, err)
	cancel()
	resp.Body.Close()
	require.Eventually(t, func() bool {
		rs := h.CDNRequests()
		return len(rs) == 2 && rs[1].BodyBytes < int64(len(weights))
	}, 5*time.Second, 10*time.Millisecond)
}

func TestHub_LFSThreshold(t *testing.T) {
	h := New(t, WithLFSThreshold(10))
	h.AddRepo("a", "b", "main", map[string][]byte{"small": []byte("123456789"), "big": []byte("1234567890")})
	h.AddRepo("a", "c", "main", map[string][]byte{"big": []byte("1234567890")}, LFSThreshold(100))
	for _, tc := range []struct {
		repo, file string
		status     int
	}{
		{"b", "small", 200}, {"b", "big", 302}, {"c", "big", 200},
	} {
		resp, _ := do(t, noRedirect(h), http.MethodHead, h.ResolveURL("a", tc.repo, "main", tc.file), nil)
		assert.Equal(t, tc.status, resp.StatusCode, "%s/%s", tc.repo, tc.file)
	}
}

func TestHub_CAFile(t *testing.T) {
	h, _ := newHub(t)
	pem, err := os.ReadFile(h.CAFile)
	require.NoError(t, err)
	assert.Contains(t, string(pem), "BEGIN CERTIFICATE")
	assert.Equal(t, ".pem", filepath.Ext(h.CAFile))
}

func TestGitIDs(t *testing.T) {
	// Known git ids: the empty blob and the empty tree.
	assert.Equal(t, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", GitBlobID(nil))
	c := buildCommit(map[string]*file{}, "", 0, "x")
	assert.Equal(t, "4b825dc642cb6eb9a060e54bf8d69288fbee4904", c.dirs[""])
	assert.Regexp(t, `^[0-9a-f]{40}$`, c.sha)
}
