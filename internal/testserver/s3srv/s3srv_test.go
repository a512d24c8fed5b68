package s3srv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// proxyClient talks to s through the proxy, as a fetcher would.
func proxyClient(t *testing.T, s *Server) *minio.Client {
	t.Helper()
	host := strings.TrimPrefix(strings.TrimPrefix(s.Endpoint, "http://"), "https://")
	tr := &http.Transport{DisableCompression: true}
	c, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure:       strings.HasPrefix(s.Endpoint, "https://"),
		Transport:    tr,
		Region:       s.Region,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	require.NoError(t, err)
	return c
}

func TestStart_PutGetThroughProxy(t *testing.T) {
	s := Start(t)
	require.True(t, strings.HasPrefix(s.Endpoint, "http://127.0.0.1:"), s.Endpoint)
	s.CreateBucket(t, "models")
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	sum := sha256.Sum256(data)
	obj := s.Put(t, "models", "dir/with space/model.bin", data, map[string]string{
		"sha256":                hex.EncodeToString(sum[:]),
		"x-amz-checksum-sha256": base64.StdEncoding.EncodeToString(sum[:]),
	})
	assert.NotEmpty(t, obj.ETag)

	c := proxyClient(t, s)
	ctx := context.Background()
	info, err := c.StatObject(ctx, "models", "dir/with space/model.bin", minio.StatObjectOptions{Checksum: true})
	require.NoError(t, err, "a signed request passes the proxy unchanged")
	assert.Equal(t, int64(len(data)), info.Size)
	assert.Equal(t, obj.ETag, info.ETag)
	assert.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), info.ChecksumSHA256, "the server keeps the checksum")
	assert.Equal(t, hex.EncodeToString(sum[:]), info.Metadata.Get("X-Amz-Meta-Sha256"))

	r, err := c.GetObject(ctx, "models", "dir/with space/model.bin", minio.GetObjectOptions{})
	require.NoError(t, err)
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, data, got)
	assert.Equal(t, int64(len(data)), s.BytesServed("models", "dir/with space/model.bin"))
	reqs := s.Requests("models", "dir/with space/model.bin")
	require.Len(t, reqs, 2)
	assert.Equal(t, http.MethodHead, reqs[0].Method)
	assert.Equal(t, http.StatusOK, reqs[0].Status)
	assert.Equal(t, http.MethodGet, reqs[1].Method)
}

func TestStart_Faults(t *testing.T) {
	s := Start(t)
	s.CreateBucket(t, "models")
	data := bytes.Repeat([]byte("x"), 1<<20)
	s.Put(t, "models", "cut.bin", data, nil)
	s.Put(t, "models", "slow.bin", data, nil)
	c := proxyClient(t, s)
	ctx := context.Background()

	s.TruncateOnce("models", "cut.bin", 100_000)
	r, err := c.GetObject(ctx, "models", "cut.bin", minio.GetObjectOptions{})
	require.NoError(t, err)
	got, err := io.ReadAll(r)
	require.Error(t, err, "the body is cut short")
	assert.Len(t, got, 100_000)
	r, err = c.GetObject(ctx, "models", "cut.bin", minio.GetObjectOptions{})
	require.NoError(t, err)
	got, err = io.ReadAll(r)
	require.NoError(t, err, "only the next response is cut")
	assert.Len(t, got, len(data))

	s.Throttle("models", "slow.bin", 2<<20)
	start := time.Now()
	r, err = c.GetObject(ctx, "models", "slow.bin", minio.GetObjectOptions{})
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, r)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 400*time.Millisecond, "1 MiB at 2 MiB/s")
}

func TestStart_Versioning(t *testing.T) {
	s := Start(t)
	s.CreateBucket(t, "versioned")
	s.EnableVersioning(t, "versioned")
	v1 := s.Put(t, "versioned", "m.bin", []byte("one"), nil)
	v2 := s.Put(t, "versioned", "m.bin", []byte("two"), nil)
	require.NotEmpty(t, v1.VersionID, "versitygw keeps versions with --versioning-dir")
	require.NotEqual(t, v1.VersionID, v2.VersionID)
	r, err := proxyClient(t, s).GetObject(context.Background(), "versioned", "m.bin", minio.GetObjectOptions{VersionID: v1.VersionID})
	require.NoError(t, err)
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, "one", string(got))
}

func TestStartTLS(t *testing.T) {
	s := StartTLS(t)
	require.True(t, strings.HasPrefix(s.Endpoint, "https://127.0.0.1:"), s.Endpoint)
	require.NotNil(t, s.CertPool)
	s.CreateBucket(t, "models")
	s.Put(t, "models", "a.bin", []byte("abc"), nil)
	host := strings.TrimPrefix(s.Endpoint, "https://")
	c, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure:       true,
		Transport:    &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CertPool, MinVersion: tls.VersionTLS12}},
		Region:       s.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	require.NoError(t, err)
	_, err = c.StatObject(context.Background(), "models", "a.bin", minio.StatObjectOptions{})
	require.NoError(t, err)
}
