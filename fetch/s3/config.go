package s3

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/model-provisioner/model-provisioner/fetch/download"
	"github.com/model-provisioner/model-provisioner/redact"
)

// DefaultEndpoint is Amazon S3; the client addresses the bucket's regional
// host from there.
const DefaultEndpoint = "https://s3.amazonaws.com"

// DefaultRegion is the region requests are signed for when none is
// configured and the endpoint is not Amazon's. S3-compatible stores
// commonly accept it whatever their own setting.
const DefaultRegion = "us-east-1"

// Config configures a Fetcher. The zero value talks to Amazon S3 with
// credentials from the environment; ConfigFromEnv fills the rest from the
// standard AWS variables.
type Config struct {
	// Endpoint is the S3 API's base URL, e.g. https://s3.example.com or
	// http://127.0.0.1:9000 (default DefaultEndpoint). Without a scheme,
	// https is assumed. It carries no path and no credentials.
	Endpoint string
	// Region is signed into every request. Empty: discovered per bucket
	// on Amazon S3, DefaultRegion elsewhere.
	Region string
	// PathStyle addresses buckets as ENDPOINT/BUCKET/KEY instead of
	// BUCKET.ENDPOINT/KEY. Nil: path style for any endpoint but Amazon's,
	// which is what S3-compatible stores expect.
	PathStyle *bool

	// AccessKey, SecretKey and SessionToken are explicit credentials,
	// normally left empty so that New finds them in the environment, the
	// credentials directory or a profile. They are never logged.
	AccessKey, SecretKey, SessionToken string
	// Profile names the AWS profile to use (default $AWS_PROFILE, else
	// "default"). A profile named here or in AWS_PROFILE must exist.
	Profile string
	// CredentialsDir holds credential files (default
	// $CREDENTIALS_DIRECTORY, where systemd's LoadCredential= puts them).
	CredentialsDir string

	// RootCAs replaces the system roots when set (tests, private CAs).
	// AWS_CA_BUNDLE, when set, is added on top of them; SSL_CERT_FILE and
	// SSL_CERT_DIR already shape the system roots.
	RootCAs *x509.CertPool
	// ConnectTimeout, TLSTimeout and HeaderTimeout bound the phases before
	// a body starts (defaults 10s, 10s, 30s). The body itself is guarded
	// by the download's stall detector, never by a whole-request timeout.
	ConnectTimeout, TLSTimeout, HeaderTimeout time.Duration

	// Download tunes parts, retries, stall detection and free-space
	// headroom.
	Download download.Options
	// Offline forbids network access: only models already present are
	// served.
	Offline bool
	// Concurrency bounds the objects of one prefix fetched at once
	// (default 4).
	Concurrency int
	// UserAgent, as NAME/VERSION, is added to the client's User-Agent.
	UserAgent string
}

// ConfigFromEnv returns the configuration the standard AWS variables
// describe: the endpoint from AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL
// (both ignored when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true), and the
// region from AWS_REGION, else AWS_DEFAULT_REGION. PathStyle is left nil,
// so that New decides it for the final endpoint (path style for any but
// Amazon's) even when the caller overlays its own endpoint on the result.
// Credentials are not read here: New looks them up.
func ConfigFromEnv() Config {
	var c Config
	if !envTrue("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") {
		c.Endpoint = firstEnv("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
	}
	c.Region = firstEnv("AWS_REGION", "AWS_DEFAULT_REGION")
	return c
}

// usePathStyle decides the addressing style for an endpoint host: as
// configured, else path style for any endpoint but Amazon's.
func usePathStyle(cfg Config, host string) bool {
	if cfg.PathStyle != nil {
		return *cfg.PathStyle
	}
	return !isAWS(host)
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(os.Getenv(n)); v != "" {
			return v
		}
	}
	return ""
}

func envTrue(name string) bool {
	return strings.EqualFold(strings.TrimSpace(os.Getenv(name)), "true")
}

// parseEndpoint returns the endpoint's host[:port] and whether it uses TLS.
func parseEndpoint(raw string) (host string, secure bool, err error) {
	if raw == "" {
		raw = DefaultEndpoint
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("endpoint %q is not a URL", redact.URLString(raw))
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return "", false, fmt.Errorf("endpoint %q: scheme must be https or http", redact.URL(u))
	case u.Host == "":
		return "", false, fmt.Errorf("endpoint %q has no host", redact.URL(u))
	case u.User != nil:
		return "", false, fmt.Errorf("endpoint %q carries credentials; give them through the environment, the credentials directory or a profile instead", redact.URL(u))
	case strings.Trim(u.Path, "/") != "" || u.RawQuery != "":
		return "", false, fmt.Errorf("endpoint %q has a path or query; give only scheme, host and port", redact.URL(u))
	}
	return u.Host, u.Scheme == "https", nil
}

// isAWS reports whether host is an Amazon S3 endpoint.
func isAWS(host string) bool {
	return s3utils.IsAmazonEndpoint(url.URL{Host: host})
}

// newTransport returns the HTTP transport for S3 requests: proxies from the
// environment, bounded connection set-up, no transparent compression
// (ranges address the stored bytes) and the trust roots of rootCAs.
func newTransport(cfg Config) (*http.Transport, error) {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.TLSTimeout <= 0 {
		cfg.TLSTimeout = 10 * time.Second
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = 30 * time.Second
	}
	pool, err := rootCAs(cfg.RootCAs)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   cfg.TLSTimeout,
		ResponseHeaderTimeout: cfg.HeaderTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		DisableCompression:    true,
		// Parallel parts want parallel connections; HTTP/2 would multiplex
		// them over one TCP stream and one congestion window.
		ForceAttemptHTTP2: false,
	}, nil
}

// rootCAs returns the roots servers are verified against: base (nil: the
// system roots) plus the PEM bundle AWS_CA_BUNDLE names, which is how AWS
// tooling is pointed at a private CA. Some clients refuse to combine that
// variable with a custom transport; here it is simply added to the pool.
// A bundle that cannot be read or holds no certificate is an error rather
// than silently ignored: the operator asked for it.
func rootCAs(base *x509.CertPool) (*x509.CertPool, error) {
	bundle := strings.TrimSpace(os.Getenv("AWS_CA_BUNDLE"))
	if bundle == "" {
		return base, nil
	}
	data, err := os.ReadFile(bundle)
	if err != nil {
		return nil, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
	}
	var pool *x509.CertPool
	if base != nil {
		pool = base.Clone()
	} else if pool, err = x509.SystemCertPool(); err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("AWS_CA_BUNDLE %s holds no PEM certificate", bundle)
	}
	return pool, nil
}

// Credential file names in the credentials directory, in order of
// preference: the agent's own, then the AWS variable names.
var credentialFiles = [][3]string{
	{"s3-access-key-id", "s3-secret-access-key", "s3-session-token"},
	{"aws_access_key_id", "aws_secret_access_key", "aws_session_token"},
}

// resolveCredentials finds the credentials to sign with, in order: the
// explicit Config keys; AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with
// AWS_SESSION_TOKEN); the credentials directory; the AWS profile in the
// shared credentials and config files; else none, and requests go
// unsigned (public buckets). It also returns where they came from, for
// messages; never the values.
func resolveCredentials(cfg Config) (*credentials.Credentials, string, error) {
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		if cfg.AccessKey == "" || cfg.SecretKey == "" {
			return nil, "", errors.New("access key and secret key must be configured together")
		}
		return credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken), "the agent configuration", nil
	}

	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	switch {
	case id != "" && secret != "":
		return credentials.NewStaticV4(id, secret, os.Getenv("AWS_SESSION_TOKEN")), "the environment (AWS_ACCESS_KEY_ID)", nil
	case id != "":
		return nil, "", errors.New("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
	case secret != "":
		return nil, "", errors.New("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
	}

	dir := cfg.CredentialsDir
	if dir == "" {
		dir = os.Getenv("CREDENTIALS_DIRECTORY")
	}
	if dir != "" {
		for _, names := range credentialFiles {
			id, err := readCredential(dir, names[0])
			if err != nil {
				return nil, "", err
			}
			secret, err := readCredential(dir, names[1])
			if err != nil {
				return nil, "", err
			}
			switch {
			case id == "" && secret == "":
				continue
			case id == "" || secret == "":
				return nil, "", fmt.Errorf("credentials directory %s: %s and %s must both be present", dir, names[0], names[1])
			}
			token, err := readCredential(dir, names[2])
			if err != nil {
				return nil, "", err
			}
			return credentials.NewStaticV4(id, secret, token), "the credentials directory (" + filepath.Join(dir, names[0]) + ")", nil
		}
	}

	profile, named := cfg.Profile, cfg.Profile != ""
	if !named {
		profile = os.Getenv("AWS_PROFILE")
		named = profile != ""
	}
	if !named {
		profile = "default"
	}
	fc := credentials.NewFileAWSCredentials("", profile)
	v, err := fc.Get()
	switch {
	case err == nil && v.AccessKeyID != "":
		return fc, fmt.Sprintf("the AWS profile %q", profile), nil
	case named && err != nil:
		return nil, "", fmt.Errorf("AWS profile %q: %s", profile, redact.String(err.Error()))
	case named:
		return nil, "", fmt.Errorf("AWS profile %q holds no credentials", profile)
	}
	return credentials.NewStatic("", "", "", credentials.SignatureAnonymous), "none (unsigned requests)", nil
}

// readCredential returns the trimmed content of dir/name, or "" when there
// is no such file.
func readCredential(dir, name string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read credential %s: %w", filepath.Join(dir, name), err)
	}
	return strings.TrimSpace(string(data)), nil
}
