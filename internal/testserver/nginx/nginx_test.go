package nginx

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const fileSize = 10 << 20

// writeFile creates a random fileSize file in a fresh t.TempDir(), which
// the testing package makes 0700, and returns the directory and contents.
func writeFile(t *testing.T, name string) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	data := make([]byte, fileSize)
	_, err := rand.Read(data)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o600))
	return dir, data
}

func TestStart_RangeRequests(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tls    bool
		scheme string
	}{
		{name: "plain", scheme: "http://"},
		{name: "tls", tls: true, scheme: "https://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, data := writeFile(t, "models/model.gguf")
			srv := Start(t, Options{Root: root, TLS: tc.tls})
			require.True(t, strings.HasPrefix(srv.URL, tc.scheme+"127.0.0.1:"), srv.URL)
			if tc.tls {
				require.NotNil(t, srv.CertPool)
				pem, err := os.ReadFile(srv.CAFile)
				require.NoError(t, err)
				assert.Contains(t, string(pem), "BEGIN CERTIFICATE")
			}
			client := srv.Client()
			url := srv.FileURL("models/model.gguf")

			req, err := http.NewRequest(http.MethodGet, url, nil)
			require.NoError(t, err)
			req.Header.Set("Range", "bytes=1000-1999")
			resp, err := client.Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)

			assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
			assert.Equal(t, fmt.Sprintf("bytes 1000-1999/%d", fileSize), resp.Header.Get("Content-Range"))
			assert.Regexp(t, regexp.MustCompile(`^"[0-9a-f]+-[0-9a-f]+"$`), resp.Header.Get("ETag"), "strong mtime-size ETag")
			assert.NotEmpty(t, resp.Header.Get("Last-Modified"))
			assert.True(t, bytes.Equal(data[1000:2000], body), "range body differs")
			if tc.tls {
				require.NotNil(t, resp.TLS)
			}

			// If-Range with the ETag keeps the range; a stale one gets the
			// whole file.
			req.Header.Set("If-Range", resp.Header.Get("ETag"))
			resp2, err := client.Do(req)
			require.NoError(t, err)
			io.Copy(io.Discard, resp2.Body)
			resp2.Body.Close()
			assert.Equal(t, http.StatusPartialContent, resp2.StatusCode)

			resp3, err := client.Get(url)
			require.NoError(t, err)
			full, err := io.ReadAll(resp3.Body)
			resp3.Body.Close()
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp3.StatusCode)
			assert.Equal(t, len(data), len(full))

			reqs := srv.WaitRequests(t, "/models/model.gguf", 3)
			require.Len(t, reqs, 3)
			assert.Equal(t, Request{
				Method: "GET", URI: "/models/model.gguf", Path: "/models/model.gguf",
				Status: 206, Range: "bytes=1000-1999", BodyBytes: 1000, Completed: true, Time: reqs[0].Time,
			}, reqs[0])
			assert.Equal(t, 200, reqs[2].Status)
			assert.Empty(t, reqs[2].Range)
			assert.Equal(t, int64(2000+fileSize), srv.BytesSent("/models/model.gguf"))
			assert.Zero(t, srv.BytesSent("/other"))
			assert.Len(t, srv.Requests(""), 3)
		})
	}
}

// TestStart_RateLimitAbort kills a client in the middle of a rate-limited
// transfer: the log records a partial, incomplete response.
func TestStart_RateLimitAbort(t *testing.T) {
	root, _ := writeFile(t, "big.bin")
	srv := Start(t, Options{Root: root, TLS: true, RateLimit: "2m"})

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.FileURL("big.bin"), nil)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	_, err = io.CopyN(io.Discard, resp.Body, 256<<10)
	require.NoError(t, err)
	cancel()
	resp.Body.Close()

	reqs := srv.WaitRequests(t, "/big.bin", 1)
	assert.False(t, reqs[0].Completed)
	assert.Equal(t, 200, reqs[0].Status)
	assert.Less(t, reqs[0].BodyBytes, int64(fileSize/2), "a 2 MB/s limit sends far less than the file in the time taken")
	assert.GreaterOrEqual(t, reqs[0].BodyBytes, int64(256<<10))
}

func TestServer_Stop(t *testing.T) {
	root, _ := writeFile(t, "a.bin")
	srv := Start(t, Options{Root: root})
	resp, err := srv.Client().Head(srv.FileURL("a.bin"))
	require.NoError(t, err)
	resp.Body.Close()
	srv.Stop()
	srv.Stop()
	client := srv.Client()
	client.Timeout = 2 * time.Second
	_, err = client.Head(srv.FileURL("a.bin"))
	assert.Error(t, err, "server still answering after Stop")
}

func TestStart_ServerConfig(t *testing.T) {
	root, _ := writeFile(t, "target.bin")
	srv := Start(t, Options{Root: root, ServerConfig: "        location = /moved { return 302 /target.bin; }"})
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Get(srv.FileURL("moved"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusFound, resp.StatusCode)
	assert.True(t, strings.HasSuffix(resp.Header.Get("Location"), "/target.bin"), resp.Header.Get("Location"))
}

func TestRender_TempPathsInsidePrefix(t *testing.T) {
	c := conf{Prefix: "/p", Root: "/r", Port: 8080, Modules: map[string]bool{"proxy": true, "uwsgi": false}}
	out := c.render()
	assert.Contains(t, out, `client_body_temp_path "/p/tmp/client_body";`)
	assert.Contains(t, out, `proxy_temp_path "/p/tmp/proxy";`)
	assert.NotContains(t, out, "uwsgi_temp_path")
	assert.Contains(t, out, `pid "/p/nginx.pid";`)
	assert.Contains(t, out, "listen 127.0.0.1:8080;")
	assert.NotContains(t, out, "ssl")
}

func TestParseLine(t *testing.T) {
	r, ok := parseLine("GET\t/a%20b.bin?x=1\t206\t42\tbytes=0-41\t-\t1700000000.123")
	require.True(t, ok)
	assert.Equal(t, "/a b.bin", r.Path)
	assert.Equal(t, "/a%20b.bin?x=1", r.URI)
	assert.False(t, r.Completed)
	assert.Equal(t, int64(42), r.BodyBytes)
	assert.Equal(t, time.Unix(1700000000, 123e6), r.Time)
	_, ok = parseLine("garbage")
	assert.False(t, ok)
}
