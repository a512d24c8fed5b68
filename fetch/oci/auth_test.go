package oci

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/fetch/fetchtest"
	"github.com/model-provisioner/model-provisioner/internal/testserver/registry"
)

const (
	testUser     = "puller"
	testPassword = "plantedRegistryPassword-0123456789"
)

// writeDockerConfig writes a Docker config file with one auths entry, as
// `docker login` does without a credential helper.
func writeDockerConfig(t *testing.T, path, host, user, password string) {
	t.Helper()
	cfg := map[string]any{"auths": map[string]any{
		host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))},
	}}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, raw, 0o600))
}

// TestFetch_DockerConfigAuth pulls from a registry with htpasswd basic
// authentication, with credentials from a Docker config file.
func TestFetch_DockerConfigAuth(t *testing.T) {
	srv := registry.Start(t, registry.Options{Users: map[string]string{testUser: testPassword}})
	data := fetchtest.Data(1<<20 + 3)
	repo := newRepo("private")
	md := srv.Push(t, repo, "v1", registry.File{Name: "model.gguf", Data: data})
	r := parse(t, ref(srv, repo, "v1"))
	dir := t.TempDir()

	t.Run("right credentials", func(t *testing.T) {
		cfg := filepath.Join(dir, "good", "config.json")
		writeDockerConfig(t, cfg, srv.Host, testUser, testPassword)
		res, err := newFetcher(t, newStore(t), Config{DockerConfig: cfg}).Fetch(context.Background(), fetch.Request{Ref: r, Name: "m", Expected: fetchtest.DigestOf(data)})
		require.NoError(t, err)
		assert.Equal(t, md, res.Validators.OCIDigest)
		blobs := "/v2/" + repo + "/blobs/"
		for _, req := range srv.WaitRequests(t, blobs, srv.Received(blobs)) {
			assert.True(t, req.Authorized, "blob requests authenticate too: %+v", req)
		}
	})

	t.Run("wrong credentials", func(t *testing.T) {
		cfg := filepath.Join(dir, "bad", "config.json")
		writeDockerConfig(t, cfg, srv.Host, testUser, "not-the-password")
		manifests := "/v2/" + repo + "/manifests/"
		before := srv.Received(manifests)
		start := time.Now()
		_, err := newFetcher(t, newStore(t), Config{DockerConfig: cfg}).Fetch(context.Background(), fetch.Request{Ref: r, Name: "m"})
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrUnauthorized)
		assert.True(t, fetch.IsPermanent(err), "refused credentials are not retried: %v", err)
		assert.LessOrEqual(t, srv.Received(manifests)-before, 2, "one challenge and one refused attempt, no retries")
		assert.Less(t, time.Since(start), 2*time.Second)
		assert.Contains(t, err.Error(), cfg, "the message says where the credentials came from")
		assert.NotContains(t, err.Error(), "not-the-password")
	})

	t.Run("no credentials", func(t *testing.T) {
		_, err := newFetcher(t, newStore(t), Config{}).Fetch(context.Background(), fetch.Request{Ref: r, Name: "m"})
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrNoCredentials)
		assert.True(t, fetch.IsPermanent(err))
		assert.Contains(t, err.Error(), srv.Host)
	})

	t.Run("credentials for another registry", func(t *testing.T) {
		cfg := filepath.Join(dir, "other", "config.json")
		writeDockerConfig(t, cfg, "registry.example.com", testUser, testPassword)
		_, err := newFetcher(t, newStore(t), Config{DockerConfig: cfg}).Fetch(context.Background(), fetch.Request{Ref: r, Name: "m"})
		assert.ErrorIs(t, err, ErrNoCredentials)
	})

	t.Run("unreadable config", func(t *testing.T) {
		cfg := filepath.Join(dir, "broken", "config.json")
		require.NoError(t, os.MkdirAll(filepath.Dir(cfg), 0o700))
		require.NoError(t, os.WriteFile(cfg, []byte("{not json"), 0o600))
		_, err := newFetcher(t, newStore(t), Config{DockerConfig: cfg}).Fetch(context.Background(), fetch.Request{Ref: r, Name: "m"})
		require.Error(t, err)
		assert.True(t, fetch.IsPermanent(err), "%v", err)
		assert.Contains(t, err.Error(), cfg)
	})
}

// TestFetch_SystemdCredential finds the Docker config in the service's
// credentials directory when no file is configured.
func TestFetch_SystemdCredential(t *testing.T) {
	srv := registry.Start(t, registry.Options{Users: map[string]string{testUser: testPassword}})
	repo := newRepo("private")
	srv.Push(t, repo, "v1", registry.File{Name: "model.gguf", Data: []byte("weights")})
	creds := t.TempDir()
	writeDockerConfig(t, filepath.Join(creds, CredentialFile), srv.Host, testUser, testPassword)
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	t.Setenv("DOCKER_CONFIG", t.TempDir())

	f, err := New(newStore(t), Config{Download: testDownload()})
	require.NoError(t, err)
	_, err = f.Fetch(context.Background(), fetch.Request{Ref: parse(t, ref(srv, repo, "v1")), Name: "m"})
	require.NoError(t, err)
}

func TestConfigFiles(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "/run/credentials/model-provisioner.service")
	t.Setenv("DOCKER_CONFIG", "/etc/docker-cfg")
	assert.Equal(t, []string{"/run/credentials/model-provisioner.service/docker-config.json", "/etc/docker-cfg/config.json"}, configFiles(""))
	assert.Equal(t, []string{"/srv/auth.json", "/run/credentials/model-provisioner.service/docker-config.json"}, configFiles("/srv/auth.json"))
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("HOME", "/home/agent")
	assert.Equal(t, []string{"/home/agent/.docker/config.json"}, configFiles(""))
}

func TestPlainHTTP(t *testing.T) {
	l, err := parseInsecure([]string{"registry.lan", "mirror.lan:5000", "10.1.0.0/16", "[fd00::1]:5000"})
	require.NoError(t, err)
	for _, tc := range []struct {
		registry string
		plain    bool
	}{
		{"127.0.0.1:5000", true},
		{"127.0.0.2", true},
		{"localhost:5000", true},
		{"[::1]:5000", true},
		{"registry.lan", true},
		{"registry.lan:443", true},
		{"mirror.lan:5000", true},
		{"mirror.lan:5001", false},
		{"10.1.2.3:5000", true},
		{"10.2.0.1:5000", false},
		{"[fd00::1]:5000", true},
		{"ghcr.io", false},
		{"localhost.example.com", false},
	} {
		assert.Equal(t, tc.plain, l.plainHTTP(tc.registry), tc.registry)
	}
	for _, bad := range []string{"", "http://registry.lan", "registry.lan/path"} {
		_, err := parseInsecure([]string{bad})
		assert.Error(t, err, "%q", bad)
	}
}
