package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/fetch/fetchtest"
)

// TestFetch_BlobRedirectDropsCredentials reproduces a registry that keeps
// blobs in object storage and redirects blob requests to a signed URL on
// another host (as distribution with an S3 driver, ECR and GHCR do). The
// registry's credentials must not follow the redirect, and the signed URL
// must not reach an error message. A fixture, since the filesystem-backed
// test registry never redirects.
func TestFetch_BlobRedirectDropsCredentials(t *testing.T) {
	data := fetchtest.Data(3<<20 + 5)
	layer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(data), Size: int64(len(data)),
		Annotations: map[string]string{ocispec.AnnotationTitle: "model.gguf"}}
	manifest, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.DescriptorEmptyJSON, Layers: []ocispec.Descriptor{layer}})
	require.NoError(t, err)
	md := digest.FromBytes(manifest)

	var mu sync.Mutex
	var storageAuth []string
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		storageAuth = append(storageAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.Query().Get("X-Amz-Signature") != "plantedSignature" {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		http.ServeContent(w, r, "blob", time.Time{}, bytes.NewReader(data))
	}))
	defer storage.Close()
	// Another host name for the same loopback address: leaving the
	// registry's origin is what must drop credentials.
	su, err := url.Parse(storage.URL)
	require.NoError(t, err)
	storageURL := "http://localhost:" + su.Port() + "/blobs/" + layer.Digest.Encoded() + "?X-Amz-Signature=plantedSignature"

	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != testUser || p != testPassword {
			w.Header().Set("WWW-Authenticate", `Basic realm="fixture"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/v2/models/r/manifests/v1":
			w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
			w.Header().Set("Docker-Content-Digest", md.String())
			w.Header().Set("Content-Length", strconv.Itoa(len(manifest)))
			w.Write(manifest)
		case "/v2/models/r/blobs/" + layer.Digest.String():
			http.Redirect(w, r, storageURL, http.StatusTemporaryRedirect)
		default:
			http.NotFound(w, r)
		}
	}))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	cfg := filepath.Join(t.TempDir(), "config.json")
	writeDockerConfig(t, cfg, host, testUser, testPassword)

	store := newStore(t)
	f := newFetcher(t, store, Config{DockerConfig: cfg})
	r := parse(t, "oci://"+host+"/models/r:v1")
	res, err := f.Fetch(context.Background(), fetch.Request{Ref: r, Name: "m", Expected: fetchtest.DigestOf(data)})
	require.NoError(t, err)
	assert.Equal(t, md.String(), res.Validators.OCIDigest)
	got, err := os.ReadFile(res.LocalPath)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got))
	mu.Lock()
	require.NotEmpty(t, storageAuth)
	for _, a := range storageAuth {
		assert.Empty(t, a, "registry credentials sent to the storage host")
	}
	mu.Unlock()

	// With the storage host gone, the failure names the layer, not the
	// signed URL.
	storage.Close()
	_, err = newFetcher(t, newStore(t), Config{DockerConfig: cfg}).Fetch(context.Background(), fetch.Request{Ref: r, Name: "m"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "plantedSignature")
	assert.Contains(t, err.Error(), "model.gguf")
}
