package https

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
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
)

// object is one file served by a fixture, with the faults to inject.
type object struct {
	data          []byte
	etag          string
	truncateFirst int64 // drop the connection of the first response after this many bytes
	rate          int   // bytes per second; 0 = unlimited
	ignoreRange   bool  // answer every request with 200 and the whole body
	wrongRange    bool  // answer range requests with a Content-Range off by one
	stallAfter    int64 // stop sending (without closing) after this many bytes, once
	status        []int // statuses to answer first, one per request
	retryAfter    string
}

// fixture is an httptest server for protocol behaviour no real server shows
// on demand: drops, stalls, ignored and wrong ranges, changed ETags, 429s.
type fixture struct {
	srv    *httptest.Server
	mu     sync.Mutex
	files  map[string]*object
	served map[string]int64
	reqs   []*http.Request
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{files: map[string]*object{}, served: map[string]int64{}}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(f.srv.Certificate())
	return p
}

func (f *fixture) put(path string, o *object) string {
	if o.etag == "" {
		o.etag = fmt.Sprintf(`"%x"`, fetchtest.DigestOf(o.data).Value[:16])
	}
	f.mu.Lock()
	f.files[path] = o
	f.mu.Unlock()
	return f.srv.URL + path
}

func (f *fixture) bytesServed(path string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served[path]
}

func (f *fixture) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r.Clone(context.Background()))
	o := f.files[r.URL.Path]
	var status int
	if o != nil && len(o.status) > 0 {
		status, o.status = o.status[0], o.status[1:]
	}
	f.mu.Unlock()
	if o == nil {
		http.NotFound(w, r)
		return
	}
	if status != 0 {
		if o.retryAfter != "" {
			w.Header().Set("Retry-After", o.retryAfter)
		}
		http.Error(w, http.StatusText(status), status)
		return
	}
	cw := &countingWriter{ResponseWriter: w, f: f, path: r.URL.Path, o: o}
	w.Header().Set("ETag", o.etag)
	switch {
	case o.ignoreRange:
		w.Header().Set("Content-Length", fmt.Sprint(len(o.data)))
		cw.Write(o.data)
	case o.wrongRange && r.Header.Get("Range") != "" && r.Header.Get("Range") != "bytes=0-0":
		var start int64
		fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-", &start)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start+1, len(o.data)-1, len(o.data)))
		w.WriteHeader(http.StatusPartialContent)
		cw.Write(o.data[start+1:])
	default:
		http.ServeContent(cw, r, "", time.Unix(1_700_000_000, 0), bytes.NewReader(o.data))
	}
}

type countingWriter struct {
	http.ResponseWriter
	f    *fixture
	path string
	o    *object
	sent int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), 32<<10)]
		c.f.mu.Lock()
		trunc, stall := c.o.truncateFirst, c.o.stallAfter
		c.f.mu.Unlock()
		if trunc > 0 && c.sent+int64(len(chunk)) > trunc {
			chunk = chunk[:trunc-c.sent]
			n, _ := c.ResponseWriter.Write(chunk)
			c.account(n)
			c.f.mu.Lock()
			c.o.truncateFirst = 0
			c.f.mu.Unlock()
			panic(http.ErrAbortHandler) // drops the connection mid-body
		}
		if stall > 0 && c.sent >= stall {
			c.f.mu.Lock()
			c.o.stallAfter = 0
			c.f.mu.Unlock()
			if fl, ok := c.ResponseWriter.(http.Flusher); ok {
				fl.Flush()
			}
			time.Sleep(3 * time.Second) // longer than the client's stall timeout
			panic(http.ErrAbortHandler)
		}
		n, err := c.ResponseWriter.Write(chunk)
		c.account(n)
		written += n
		if err != nil {
			return written, err
		}
		if c.o.rate > 0 {
			time.Sleep(time.Duration(float64(n) / float64(c.o.rate) * float64(time.Second)))
		}
		p = p[n:]
	}
	return written, nil
}

func (c *countingWriter) account(n int) {
	c.sent += int64(n)
	c.f.mu.Lock()
	c.f.served[c.path] += int64(n)
	c.f.mu.Unlock()
}

func testOptions() download.Options {
	return download.Options{PartSize: 1 << 20, Parts: 4, Stall: time.Second, RetryBase: 10 * time.Millisecond, Headroom: -1, Checkpoint: 256 << 10}
}

func newFetcher(t *testing.T, store *content.Store, pool *x509.CertPool) *Fetcher {
	f, err := New(store, Config{Client: ClientConfig{RootCAs: pool}, Download: testOptions()})
	require.NoError(t, err)
	return f
}

func TestConformance_httptest(t *testing.T) {
	fx := newFixture(t)
	n := 0
	next := func() string { n++; return fmt.Sprintf("/m%d/model.gguf", n) }
	fetchtest.Run(t, fetchtest.Target{
		Scheme: fetch.SchemeHTTPS,
		NewFetcher: func(t *testing.T, store *content.Store) fetch.Fetcher {
			return newFetcher(t, store, fx.pool())
		},
		Publish: func(t *testing.T, data []byte) string { return fx.put(next(), &object{data: data}) },
		Missing: func(t *testing.T) string { return fx.srv.URL + "/missing/model.gguf" },
		PublishTruncated: func(t *testing.T, data []byte, n int64) string {
			return fx.put(next(), &object{data: data, truncateFirst: n})
		},
		PublishSlow: func(t *testing.T, data []byte, rate int) string {
			return fx.put(next(), &object{data: data, rate: rate})
		},
		BytesServed: func(t *testing.T, ref string) int64 {
			return fx.bytesServed(strings.TrimPrefix(ref, fx.srv.URL))
		},
	})
}

func ensure(t *testing.T, f *Fetcher, raw string, data []byte) (fetch.Result, error) {
	t.Helper()
	ref, err := fetch.ParseRef(raw, "/")
	require.NoError(t, err)
	return f.Fetch(context.Background(), fetch.Request{Ref: ref, Name: "m", Expected: fetchtest.DigestOf(data)})
}

func newStore(t *testing.T) *content.Store {
	s, err := content.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFetch_Misbehaviour(t *testing.T) {
	data := fetchtest.Data(3 << 20)
	tests := []struct {
		name    string
		obj     *object
		wantErr error
	}{
		{name: "stall is detected and resumed", obj: &object{stallAfter: 1 << 20}},
		{name: "200 to a range request restarts cleanly", obj: &object{ignoreRange: true}},
		{name: "wrong Content-Range is rejected", obj: &object{wrongRange: true}, wantErr: download.ErrBadRange},
		{name: "429 with Retry-After is retried", obj: &object{status: []int{429, 503}, retryAfter: "0"}},
		{name: "403 is permanent", obj: &object{status: []int{403, 403, 403, 403, 403, 403, 403, 403}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			tc.obj.data = data
			url := fx.put("/x/model.gguf", tc.obj)
			f := newFetcher(t, newStore(t), fx.pool())
			start := time.Now()
			res, err := ensure(t, f, url, data)
			switch {
			case tc.name == "403 is permanent":
				require.Error(t, err)
				assert.True(t, fetch.IsPermanent(err))
				assert.Contains(t, err.Error(), "403")
				fx.mu.Lock()
				assert.Len(t, fx.reqs, 1, "a permanent failure is not retried")
				fx.mu.Unlock()
			case tc.wantErr != nil:
				require.Error(t, err)
				assert.ErrorIs(t, err, tc.wantErr)
			default:
				require.NoError(t, err)
				assert.Equal(t, fetchtest.DigestOf(data), res.Digest)
			}
			assert.Less(t, time.Since(start), 20*time.Second)
		})
	}
}

func TestFetch_ChangedETagRestartsFromZero(t *testing.T) {
	fx := newFixture(t)
	old := fetchtest.Data(4 << 20)
	url := fx.put("/x/model.gguf", &object{data: old, rate: 1 << 20})
	store := newStore(t)
	f := newFetcher(t, store, fx.pool())
	ref, err := fetch.ParseRef(url, "/")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	_, err = f.Fetch(ctx, fetch.Request{Ref: ref, Name: "m", Progress: func(done, total int64) {
		if done > 256<<10 {
			once.Do(cancel)
		}
	}})
	require.ErrorIs(t, err, context.Canceled)

	// The file is replaced on the server: same URL, new bytes, new ETag.
	neu := fetchtest.Data(4<<20 + 1)
	fx.put("/x/model.gguf", &object{data: neu})
	res, err := f.Fetch(context.Background(), fetch.Request{Ref: ref, Name: "m"})
	require.NoError(t, err)
	assert.Equal(t, fetchtest.DigestOf(neu), res.Digest, "never a splice of two versions")
}

func TestFetch_RedirectDropsTokenAcrossHosts(t *testing.T) {
	// Plain HTTP on both ends, so that one server can be reached under two
	// host names (127.0.0.1 and localhost) without a certificate for each.
	var mu sync.Mutex
	var seen []http.Header
	data := fetchtest.Data(1 << 20)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "", time.Unix(1_700_000_000, 0), bytes.NewReader(data))
	}))
	defer target.Close()
	dst := strings.Replace(target.URL, "127.0.0.1", "localhost", 1) + "/blob/model.gguf"
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, dst, http.StatusFound)
	}))
	defer origin.Close()
	client := NewClient(ClientConfig{AllowHTTP: true})
	src := &Source{Client: client, URL: mustURL(t, origin.URL+"/m.gguf"), Header: http.Header{
		"Authorization": {"Bearer hf_secretsecretsecretsecret"},
		"Cookie":        {"session=secret"},
	}}
	res, err := download.Fetch(context.Background(), newStore(t), "k", src, fetchtest.DigestOf(data), testOptions())
	require.NoError(t, err)
	assert.Equal(t, fetchtest.DigestOf(data), res.Digest)
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, seen)
	for _, h := range seen {
		assert.Empty(t, h.Get("Authorization"), "the token must not reach another host")
		assert.Empty(t, h.Get("Cookie"), "cookies must not reach another host")
	}
}

func TestFetch_RefusesDowngradeRedirect(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x")) }))
	defer plain.Close()
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/m.gguf", http.StatusFound)
	}))
	defer origin.Close()
	pool := x509.NewCertPool()
	pool.AddCert(origin.Certificate())
	f := newFetcher(t, newStore(t), pool)
	f.cfg.Client.AllowHTTP = true
	f.client = NewClient(ClientConfig{RootCAs: pool, AllowHTTP: true})
	_, err := ensure(t, f, origin.URL+"/m.gguf", []byte("x"))
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInsecureRedirect)
}

func TestFetch_HTTPNeedsPermission(t *testing.T) {
	f := newFetcher(t, newStore(t), nil)
	_, err := ensure(t, f, "http://127.0.0.1:1/m.gguf", []byte("x"))
	require.ErrorIs(t, err, ErrHTTPNotAllowed)
	assert.True(t, fetch.IsPermanent(err))
}

func TestFetch_RedactsSignedURLInErrors(t *testing.T) {
	f := newFetcher(t, newStore(t), nil)
	_, err := ensure(t, f, "https://user:hunter2hunter2@127.0.0.1:1/m.gguf?X-Amz-Signature=deadbeefdeadbeef&X-Amz-Credential=AKIAEXAMPLE", []byte("x"))
	require.Error(t, err)
	for _, secret := range []string{"hunter2hunter2", "deadbeefdeadbeef", "AKIAEXAMPLE"} {
		assert.NotContains(t, err.Error(), secret)
	}
}

func TestFetch_PreflightRefusesWithoutSpace(t *testing.T) {
	fx := newFixture(t)
	data := fetchtest.Data(1 << 20)
	url := fx.put("/x/model.gguf", &object{data: data})
	f, err := New(newStore(t), Config{Client: ClientConfig{RootCAs: fx.pool()}, Download: download.Options{Headroom: 1 << 62}})
	require.NoError(t, err)
	_, err = ensure(t, f, url, data)
	require.Error(t, err)
	assert.ErrorIs(t, err, content.ErrNoSpace)
	assert.True(t, fetch.IsPermanent(err))
	assert.Equal(t, int64(0), fx.bytesServed("/x/model.gguf")-1, "nothing downloaded beyond the probe")
}

func TestFetch_OfflineNotPresent(t *testing.T) {
	f, err := New(newStore(t), Config{Offline: true})
	require.NoError(t, err)
	_, err = ensure(t, f, "https://example.invalid/m.gguf", []byte("x"))
	require.Error(t, err)
	assert.True(t, errors.Is(err, download.ErrOffline))
	assert.Contains(t, err.Error(), "offline and not present")
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

func TestFetch_OfflineServesPresentModel(t *testing.T) {
	fx := newFixture(t)
	data := fetchtest.Data(1 << 20)
	url := fx.put("/x/model.gguf", &object{data: data})
	store := newStore(t)
	online := newFetcher(t, store, fx.pool())
	ref, err := fetch.ParseRef(url, "/")
	require.NoError(t, err)
	res, err := online.Fetch(context.Background(), fetch.Request{Ref: ref, Name: "m"})
	require.NoError(t, err)
	fx.srv.Close() // no network from here on

	offline, err := New(store, Config{Offline: true})
	require.NoError(t, err)
	known := &fetch.Known{LocalPath: res.LocalPath, Digest: res.Digest, Fingerprint: res.Fingerprint}
	again, err := offline.Fetch(context.Background(), fetch.Request{Ref: ref, Name: "m", Known: known})
	require.NoError(t, err, "a present, verified model stays available offline")
	assert.Equal(t, res.LocalPath, again.LocalPath)
	assert.False(t, again.Hashed)
}
