package s3

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/internal/testserver"
	"github.com/model-provisioner/model-provisioner/internal/testserver/s3srv"
)

// awsVars are the variables that steer S3 configuration and credentials;
// clearEnv unsets them for one test so the host's own cannot leak in.
var awsVars = []string{
	"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
	"AWS_REGION", "AWS_DEFAULT_REGION",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY",
	"AWS_PROFILE", "CREDENTIALS_DIRECTORY",
}

func clearEnv(t *testing.T) {
	t.Helper()
	for _, v := range awsVars {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	// No shared credentials or config file unless a test writes one.
	dir := t.TempDir()
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		endpoint  string
		region    string
		pathStyle bool
	}{
		{name: "nothing set: Amazon S3", endpoint: "", pathStyle: false},
		{name: "generic endpoint", env: map[string]string{"AWS_ENDPOINT_URL": "http://minio.internal:9000"}, endpoint: "http://minio.internal:9000", pathStyle: true},
		{name: "S3 endpoint wins", env: map[string]string{"AWS_ENDPOINT_URL": "https://other.example", "AWS_ENDPOINT_URL_S3": "https://s3.example.com"}, endpoint: "https://s3.example.com", pathStyle: true},
		{name: "configured endpoints ignored", env: map[string]string{"AWS_ENDPOINT_URL_S3": "https://s3.example.com", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, endpoint: "", pathStyle: false},
		{name: "regional AWS endpoint", env: map[string]string{"AWS_ENDPOINT_URL_S3": "https://s3.eu-west-1.amazonaws.com"}, endpoint: "https://s3.eu-west-1.amazonaws.com", pathStyle: false},
		{name: "AWS_REGION", env: map[string]string{"AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "us-west-2"}, region: "eu-central-1"},
		{name: "AWS_DEFAULT_REGION", env: map[string]string{"AWS_DEFAULT_REGION": "us-west-2"}, region: "us-west-2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c := ConfigFromEnv()
			assert.Equal(t, tc.endpoint, c.Endpoint)
			assert.Equal(t, tc.region, c.Region)
			assert.Nil(t, c.PathStyle, "decided by New for the final endpoint")
			host, _, err := parseEndpoint(c.Endpoint)
			require.NoError(t, err)
			assert.Equal(t, tc.pathStyle, usePathStyle(c, host))
			assert.Empty(t, c.AccessKey+c.SecretKey+c.SessionToken, "credentials are New's business")
		})
	}
}

func TestUsePathStyle(t *testing.T) {
	yes, no := true, false
	assert.True(t, usePathStyle(Config{}, "minio.internal:9000"))
	assert.False(t, usePathStyle(Config{}, "s3.amazonaws.com"))
	assert.False(t, usePathStyle(Config{}, "s3.dualstack.eu-west-1.amazonaws.com"))
	assert.True(t, usePathStyle(Config{PathStyle: &yes}, "s3.amazonaws.com"), "configured wins")
	assert.False(t, usePathStyle(Config{PathStyle: &no}, "minio.internal:9000"), "configured wins")
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in     string
		host   string
		secure bool
		errHas string
	}{
		{in: "", host: "s3.amazonaws.com", secure: true},
		{in: "http://127.0.0.1:9000", host: "127.0.0.1:9000"},
		{in: "https://s3.example.com/", host: "s3.example.com", secure: true},
		{in: "s3.example.com:8443", host: "s3.example.com:8443", secure: true},
		{in: "ftp://s3.example.com", errHas: "scheme"},
		{in: "https://user:hunter2@s3.example.com", errHas: "carries credentials"},
		{in: "https://s3.example.com/base", errHas: "path"},
		{in: "https://", errHas: "no host"},
	}
	for _, tc := range tests {
		host, secure, err := parseEndpoint(tc.in)
		if tc.errHas != "" {
			require.Error(t, err, tc.in)
			assert.Contains(t, err.Error(), tc.errHas)
			assert.NotContains(t, err.Error(), "hunter2")
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.host, host, tc.in)
		assert.Equal(t, tc.secure, secure, tc.in)
	}
}

func TestResolveCredentials(t *testing.T) {
	const secret = "s3cr3t-value-that-must-never-show"
	writeDir := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for name, v := range files {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600))
		}
		return dir
	}
	writeProfile := func(t *testing.T, body string) {
		require.NoError(t, os.WriteFile(os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), []byte(body), 0o600))
	}
	tests := []struct {
		name    string
		cfg     Config
		env     map[string]string
		dir     map[string]string
		profile string
		// wantID is the access key expected; "" means unsigned.
		wantID, wantSource, wantErr string
	}{
		{
			name:   "config wins over everything",
			cfg:    Config{AccessKey: "CFGKEY", SecretKey: secret},
			env:    map[string]string{"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": secret},
			wantID: "CFGKEY", wantSource: "configuration",
		},
		{
			name:   "environment before the credentials directory",
			env:    map[string]string{"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": secret},
			dir:    map[string]string{"s3-access-key-id": "DIRKEY", "s3-secret-access-key": secret},
			wantID: "ENVKEY", wantSource: "AWS_ACCESS_KEY_ID",
		},
		{
			name:    "credentials directory before the profile",
			dir:     map[string]string{"s3-access-key-id": "DIRKEY", "s3-secret-access-key": secret, "s3-session-token": "tok"},
			profile: "[default]\naws_access_key_id = PROFKEY\naws_secret_access_key = " + secret + "\n",
			wantID:  "DIRKEY", wantSource: "s3-access-key-id",
		},
		{
			name:   "credentials directory, AWS file names",
			dir:    map[string]string{"aws_access_key_id": "DIRKEY2", "aws_secret_access_key": secret},
			wantID: "DIRKEY2", wantSource: "aws_access_key_id",
		},
		{
			name:    "default profile",
			profile: "[default]\naws_access_key_id = PROFKEY\naws_secret_access_key = " + secret + "\n",
			wantID:  "PROFKEY", wantSource: `profile "default"`,
		},
		{
			name:    "AWS_PROFILE",
			env:     map[string]string{"AWS_PROFILE": "models"},
			profile: "[default]\naws_access_key_id = PROFKEY\naws_secret_access_key = x\n[models]\naws_access_key_id = MODELSKEY\naws_secret_access_key = " + secret + "\n",
			wantID:  "MODELSKEY", wantSource: `profile "models"`,
		},
		{name: "nothing: unsigned", wantSource: "unsigned"},
		{name: "half a pair in the config", cfg: Config{AccessKey: "CFGKEY"}, wantErr: "together"},
		{name: "half a pair in the environment", env: map[string]string{"AWS_ACCESS_KEY_ID": "ENVKEY"}, wantErr: "AWS_SECRET_ACCESS_KEY is not"},
		{name: "half a pair in the directory", dir: map[string]string{"s3-secret-access-key": secret}, wantErr: "must both be present"},
		{name: "named profile missing", env: map[string]string{"AWS_PROFILE": "nope"}, profile: "[default]\naws_access_key_id = A\naws_secret_access_key = B\n", wantErr: `AWS profile "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if tc.dir != nil {
				t.Setenv("CREDENTIALS_DIRECTORY", writeDir(t, tc.dir))
			}
			if tc.profile != "" {
				writeProfile(t, tc.profile)
			}
			creds, source, err := resolveCredentials(tc.cfg)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.NotContains(t, err.Error(), secret)
				return
			}
			require.NoError(t, err)
			assert.Contains(t, source, tc.wantSource)
			assert.NotContains(t, source, secret)
			v, err := creds.Get()
			require.NoError(t, err)
			assert.Equal(t, tc.wantID, v.AccessKeyID)
			if tc.wantID == "" {
				assert.Equal(t, credentials.SignatureAnonymous, v.SignerType)
			} else {
				assert.Equal(t, secret, v.SecretAccessKey)
			}
		})
	}
}

// TestFetch_EnvironmentOnly is the one-shot ensure on a host configured
// the AWS way: nothing but environment variables, or a systemd
// credentials directory, or a profile.
func TestFetch_EnvironmentOnly(t *testing.T) {
	srv := startServer(t)
	data := []byte("model bytes from an environment-configured fetcher")
	srv.Put(t, bucket, "env/model.gguf", data, nil)
	setups := map[string]func(t *testing.T){
		"environment": func(t *testing.T) {
			t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
			t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
		},
		"credentials directory": func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "s3-access-key-id"), []byte(srv.AccessKey), 0o600))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "s3-secret-access-key"), []byte(srv.SecretKey), 0o600))
			t.Setenv("CREDENTIALS_DIRECTORY", dir)
		},
		"profile": func(t *testing.T) {
			t.Setenv("AWS_PROFILE", "gpu-fleet")
			body := "[gpu-fleet]\naws_access_key_id = " + srv.AccessKey + "\naws_secret_access_key = " + srv.SecretKey + "\n"
			require.NoError(t, os.WriteFile(os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), []byte(body), 0o600))
		},
	}
	for name, setup := range setups {
		t.Run(name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("AWS_ENDPOINT_URL_S3", srv.Endpoint)
			t.Setenv("AWS_REGION", srv.Region)
			setup(t)
			cfg := ConfigFromEnv()
			cfg.Download = testOptions()
			f := newFetcher(t, newStore(t), cfg)
			assert.NotContains(t, f.CredentialSource(), srv.SecretKey)
			res, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, "s3://models/env/model.gguf"), Name: "env"})
			require.NoError(t, err, "credentials from %s", f.CredentialSource())
			got, err := os.ReadFile(res.LocalPath)
			require.NoError(t, err)
			assert.Equal(t, data, got)
		})
	}
}

// TestFetch_TLSAndAWSCABundle checks that AWS_CA_BUNDLE is honoured by the
// fetcher's own transport, on top of the configured or system roots, over
// HTTPS to a real server.
func TestFetch_TLSAndAWSCABundle(t *testing.T) {
	srv := s3srv.StartTLS(t)
	srv.CreateBucket(t, bucket)
	data := []byte("over tls")
	srv.Put(t, bucket, "tls/model.gguf", data, nil)
	hostBundle := os.Getenv("AWS_CA_BUNDLE") // what this host sets, if anything
	if hostBundle == "" {
		hostBundle = "/etc/ssl/certs/ca-certificates.crt"
	}
	otherCA := testserver.NewCA(t)
	tests := []struct {
		name     string
		bundle   string
		roots    bool // trust the server's CA through Config.RootCAs
		wantErr  string
		newError bool
	}{
		{name: "bundle names the server's CA", bundle: srv.CAFile},
		{name: "host bundle set, server's CA configured", bundle: hostBundle, roots: true},
		{name: "no bundle, server's CA configured", roots: true},
		{name: "bundle of another CA", bundle: otherCA.WriteCAFile(t, t.TempDir()), wantErr: "AWS_CA_BUNDLE"},
		{name: "unreadable bundle", bundle: filepath.Join(t.TempDir(), "missing.pem"), wantErr: "AWS_CA_BUNDLE", newError: true},
		{name: "bundle without certificates", bundle: writeFile(t, "not a certificate"), wantErr: "no PEM certificate", newError: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.bundle == hostBundle {
				if _, err := os.Stat(hostBundle); err != nil {
					t.Skipf("no CA bundle at %s on this host", hostBundle)
				}
			}
			t.Setenv("AWS_CA_BUNDLE", tc.bundle)
			cfg := serverConfig(srv)
			if !tc.roots {
				cfg.RootCAs = nil
			}
			f, err := New(newStore(t), cfg)
			if tc.newError {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			res, err := f.Fetch(context.Background(), fetch.Request{Ref: parse(t, "s3://models/tls/model.gguf"), Name: "tls"})
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.True(t, fetch.IsPermanent(err), "an untrusted certificate is not retried: %v", err)
				assert.Contains(t, err.Error(), tc.wantErr, "the message says how to trust the CA")
				return
			}
			require.NoError(t, err)
			got, err := os.ReadFile(res.LocalPath)
			require.NoError(t, err)
			assert.Equal(t, data, got)
		})
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestNew_Errors(t *testing.T) {
	clearEnv(t)
	store := newStore(t)
	_, err := New(nil, Config{})
	assert.Error(t, err)
	_, err = New(store, Config{Endpoint: "https://key:hunter2@s3.example.com"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
	_, err = New(store, Config{SecretKey: "hunter2"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
	assert.True(t, strings.Contains(err.Error(), "credentials"))
}
