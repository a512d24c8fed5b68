package s3

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/fetch/download"
	"github.com/model-provisioner/model-provisioner/fetch/fetchtest"
)

// listing is an S3 endpoint that lists whatever keys it is given and serves
// any object as the same bytes. Amazon S3 stores keys such as "a/../b" and
// "a//b" as they are; the posix store of versitygw cannot hold them, so a
// hostile listing is played by this fixture instead.
type listing struct {
	mu   sync.Mutex
	keys []string
	gets int
}

type listResult struct {
	XMLName     xml.Name `xml:"ListBucketResult"`
	Name        string
	Prefix      string
	KeyCount    int
	MaxKeys     int
	IsTruncated bool
	Contents    []listEntry
}

type listEntry struct {
	Key          string
	Size         int64
	ETag         string
	LastModified string
}

func (l *listing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.URL.Query().Get("list-type") == "2" {
		res := listResult{Name: bucket, Prefix: r.URL.Query().Get("prefix"), MaxKeys: 1000}
		for _, k := range l.keys {
			res.Contents = append(res.Contents, listEntry{Key: k, Size: 5, ETag: `"e"`, LastModified: "2024-01-01T00:00:00.000Z"})
		}
		res.KeyCount = len(res.Contents)
		w.Header().Set("Content-Type", "application/xml")
		xml.NewEncoder(w).Encode(res)
		return
	}
	l.gets++
	w.Header().Set("ETag", `"e"`)
	w.Header().Set("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")
	w.Header().Set("Content-Length", "5")
	if r.Method == http.MethodGet {
		io.WriteString(w, "owned")
	}
}

func TestFetch_PrefixRejectsUnsafeKeys(t *testing.T) {
	for _, key := range []string{"pre/../escape", "pre/../../etc/cron.d/x", "pre//abs", "pre/./x", "pre/a/../../b"} {
		t.Run(key, func(t *testing.T) {
			l := &listing{keys: []string{"pre/config.json", key}}
			srv := httptest.NewServer(l)
			t.Cleanup(srv.Close)
			state := t.TempDir()
			store, err := content.Open(state)
			require.NoError(t, err)
			t.Cleanup(func() { store.Close() })
			canary := filepath.Join(state, content.ModelsDir, "canary")
			require.NoError(t, os.MkdirAll(canary, 0o755))

			f := newFetcher(t, store, Config{Endpoint: srv.URL, AccessKey: "k", SecretKey: "s", Download: testOptions()})
			_, err = f.Fetch(context.Background(), fetch.Request{Ref: parse(t, "s3://models/pre/"), Name: "m"})
			require.Error(t, err)
			assert.ErrorIs(t, err, content.ErrUnsafePath)
			assert.True(t, fetch.IsPermanent(err))
			assert.Contains(t, err.Error(), key, "the message names the key")

			l.mu.Lock()
			assert.Zero(t, l.gets, "nothing is fetched from a prefix with an unsafe key")
			l.mu.Unlock()
			entries, err := os.ReadDir(canary)
			require.NoError(t, err)
			assert.Empty(t, entries)
			assert.Equal(t, []string{"canary"}, dirNames(t, filepath.Join(state, content.ModelsDir)))
			assert.NoFileExists(t, filepath.Join(state, "escape"))
			assert.NoFileExists(t, filepath.Join(state, "abs"))
		})
	}

	t.Run("excluded by include", func(t *testing.T) {
		l := &listing{keys: []string{"pre/config.json", "pre/../escape"}}
		srv := httptest.NewServer(l)
		t.Cleanup(srv.Close)
		store := newStore(t)
		f := newFetcher(t, store, Config{Endpoint: srv.URL, AccessKey: "k", SecretKey: "s", Download: testOptions()})
		res, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, "s3://models/pre/"), Name: "m", Include: []string{"*.json"}})
		require.NoError(t, err, "a key the include patterns leave out is never used")
		assert.Equal(t, []string{"config.json"}, paths(res.Files))
	})
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestSource_Range checks the guards of a ranged read against the real
// server: exact bytes for a range, and a changed or shrunk object reported
// as download.ErrChanged rather than read.
func TestSource_Range(t *testing.T) {
	srv := startServer(t)
	data := fetchtest.Data(100_000)
	obj := srv.Put(t, bucket, "r/model.gguf", data, nil)
	f := newFetcher(t, newStore(t), serverConfig(srv))
	src := f.source(bucket, "r/model.gguf", "")
	info, err := src.Stat(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(len(data)), info.Size)
	assert.Equal(t, `"`+obj.ETag+`"`, info.ETag)
	assert.True(t, info.Ranges)

	tests := []struct {
		name     string
		off, end int64
		info     download.Info
		want     []byte
		wantErr  error
	}{
		{name: "whole", off: 0, end: -1, info: info, want: data},
		{name: "middle", off: 10, end: 20, info: info, want: data[10:20]},
		{name: "to the end", off: 99_990, end: -1, info: info, want: data[99_990:]},
		{name: "head", off: 0, end: 5, info: info, want: data[:5]},
		{name: "changed ETag", off: 10, end: -1, info: download.Info{Size: info.Size, ETag: `"0123456789abcdef"`, Ranges: true}, wantErr: download.ErrChanged},
		{name: "changed ETag, whole object", off: 0, end: -1, info: download.Info{Size: info.Size, ETag: `"0123456789abcdef"`, Ranges: true}, wantErr: download.ErrChanged},
		{name: "object shrank", off: 200_000, end: -1, info: download.Info{Size: 300_000, Ranges: true}, wantErr: download.ErrChanged},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := src.Range(context.Background(), tc.off, tc.end, tc.info)
			if tc.wantErr != nil {
				require.Error(t, err)
				assert.ErrorIs(t, err, tc.wantErr)
				assert.False(t, strings.Contains(err.Error(), srv.SecretKey))
				return
			}
			require.NoError(t, err)
			defer body.Close()
			got, err := io.ReadAll(body)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
