package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(s[:])
}

func get(t *testing.T, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func TestServer_PushPullThroughProxy(t *testing.T) {
	srv := Start(t, Options{})
	require.True(t, strings.HasPrefix(srv.Host, "127.0.0.1:"))
	require.NotEqual(t, srv.Host, srv.RegistryHost)
	a, b := bytes.Repeat([]byte("a"), 100_000), []byte("tokenizer")
	md := srv.Push(t, "models/m1", "v1", File{Name: "model.gguf", Data: a}, File{Name: "tok.json", Data: b})

	resp, raw := get(t, srv.URL+"/v2/models/m1/manifests/v1", map[string]string{"Accept": ocispec.MediaTypeImageManifest})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(raw))
	assert.Equal(t, md, resp.Header.Get("Docker-Content-Digest"))
	var m ocispec.Manifest
	require.NoError(t, json.Unmarshal(raw, &m))
	require.Len(t, m.Layers, 2)
	assert.Equal(t, "model.gguf", m.Layers[0].Annotations[ocispec.AnnotationTitle])
	assert.Equal(t, sha(a), m.Layers[0].Digest.String())

	blob := srv.URL + "/v2/models/m1/blobs/" + sha(a)
	resp, body := get(t, blob, map[string]string{"Range": "bytes=10-19"})
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, fmt.Sprintf("bytes 10-19/%d", len(a)), resp.Header.Get("Content-Range"))
	assert.Equal(t, `"`+sha(a)+`"`, resp.Header.Get("Etag"))
	assert.Equal(t, a[10:20], body)
	assert.Equal(t, int64(10), srv.BytesSent(sha(a)))
	assert.Zero(t, srv.BytesSent(sha(b)), "pushes bypass the proxy")

	reqs := srv.WaitRequests(t, "/v2/models/m1/blobs/", 1)
	require.Len(t, reqs, 1)
	assert.Equal(t, 1, srv.Received("/v2/models/m1/blobs/"))
	assert.Equal(t, Request{Method: "GET", Path: "/v2/models/m1/blobs/" + sha(a), Repo: "models/m1", Digest: sha(a), Status: 206, Range: "bytes=10-19", BodyBytes: 10, Completed: true}, reqs[0])

	resp, _ = get(t, srv.URL+"/v2/models/m1/manifests/nope", nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	// A second push of the same layer under another tag reuses the blob.
	md2 := srv.Push(t, "models/m2", "v1", File{Name: "model.gguf", Data: a})
	assert.NotEqual(t, md, md2)
}

func TestServer_RateAndDrop(t *testing.T) {
	srv := Start(t, Options{})
	data := bytes.Repeat([]byte("0123456789"), 50_000)
	srv.Push(t, "slow/m", "v1", File{Name: "x.bin", Data: data})
	blob := srv.URL + "/v2/slow/m/blobs/" + sha(data)

	srv.SetRate("slow/m", 1<<20)
	start := time.Now()
	_, body := get(t, blob, nil)
	assert.Equal(t, data, body)
	assert.Greater(t, time.Since(start), 300*time.Millisecond, "500 kB at 1 MB/s")
	srv.SetRate("slow/m", 0)

	srv.DropAfter(sha(data), 1000)
	resp, err := http.Get(blob)
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Error(t, err, "the body ends early")
	assert.Len(t, got, 1000)
	_, body = get(t, blob, nil)
	assert.Equal(t, data, body, "only one response is cut")
}

func TestServer_Tamper(t *testing.T) {
	srv := Start(t, Options{})
	data := []byte("weights weights weights")
	srv.Push(t, "models/t", "v1", File{Name: "w.bin", Data: data})
	srv.Tamper(t, sha(data))
	_, body := get(t, srv.URL+"/v2/models/t/blobs/"+sha(data), nil)
	require.Len(t, body, len(data))
	assert.NotEqual(t, data, body)
}

func TestServer_BasicAuth(t *testing.T) {
	srv := Start(t, Options{Users: map[string]string{"alice": "s3cret"}})
	srv.Push(t, "private/m", "v1", File{Name: "m.bin", Data: []byte("x")})
	resp, _ := get(t, srv.URL+"/v2/private/m/manifests/v1", nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Www-Authenticate"), "Basic")

	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/v2/private/m/manifests/v1", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
	req.SetBasicAuth("alice", "s3cret")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestServer_Stop(t *testing.T) {
	srv := Start(t, Options{})
	srv.Stop()
	srv.Stop()
	resp, _ := get(t, srv.URL+"/v2/", nil)
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
}

func TestConf_Render(t *testing.T) {
	out := conf{Root: "/r", Secret: "s", Port: 5000, Htpasswd: "/h"}.render()
	assert.Contains(t, out, "version: 0.1")
	assert.Contains(t, out, `rootdirectory: "/r"`)
	assert.Contains(t, out, "addr: 127.0.0.1:5000")
	assert.Contains(t, out, `path: "/h"`)
	assert.NotContains(t, conf{Root: "/r", Port: 1}.render(), "htpasswd")
}
