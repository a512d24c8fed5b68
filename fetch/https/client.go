package https

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ClientConfig tunes the HTTP client of a fetcher.
type ClientConfig struct {
	// RootCAs replaces the system roots when set (tests, private CAs).
	// SSL_CERT_FILE and SSL_CERT_DIR already extend the system roots.
	RootCAs *x509.CertPool
	// ConnectTimeout, TLSTimeout and HeaderTimeout bound the phases before a
	// body starts (defaults 10s, 10s, 30s). The body itself is guarded by
	// the download's stall detector, never by a whole-request timeout.
	ConnectTimeout, TLSTimeout, HeaderTimeout time.Duration
	// AllowHTTP permits plain http:// URLs and redirects to them.
	AllowHTTP bool
}

// ErrInsecureRedirect is returned when a redirect would downgrade https to
// http.
var ErrInsecureRedirect = errors.New("refusing redirect from https to http")

// NewClient returns an HTTP client for model downloads: proxies from the
// environment (HTTPS_PROXY, NO_PROXY; how a P2P layer is put in front),
// bounded connection set-up, no transparent compression (ranges address the
// stored bytes), and redirects that drop credentials when they leave the
// original host and never downgrade to plain HTTP.
func NewClient(cfg ClientConfig) *http.Client {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.TLSTimeout <= 0 {
		cfg.TLSTimeout = 10 * time.Second
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = 30 * time.Second
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   cfg.TLSTimeout,
		ResponseHeaderTimeout: cfg.HeaderTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		DisableCompression:    true,
		// Parallel parts want parallel connections; HTTP/2 would multiplex
		// them over one TCP stream and one congestion window.
		ForceAttemptHTTP2: false,
	}
	if cfg.RootCAs != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: checkRedirect(cfg.AllowHTTP),
	}
}

// checkRedirect enforces the redirect policy. The standard client keeps
// Authorization on redirects to subdomains of the original host; a model
// hub redirecting to its storage CDN is exactly such a case, and the token
// must not follow, so credentials are dropped on any change of host.
func checkRedirect(allowHTTP bool) func(req *http.Request, via []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		first := via[0]
		// A downgrade is refused even where plain http:// is allowed: the
		// operator asked for TLS and the server must not take it away.
		if first.URL.Scheme == "https" && req.URL.Scheme != "https" {
			return fmt.Errorf("%w: %s redirected to a %s URL", ErrInsecureRedirect, first.URL.Host, req.URL.Scheme)
		}
		if req.URL.Scheme != "https" && !allowHTTP {
			return fmt.Errorf("%w: redirect to a %s URL while plain http is not allowed", ErrInsecureRedirect, req.URL.Scheme)
		}
		if req.URL.Host != first.URL.Host {
			req.Header.Del("Authorization")
			req.Header.Del("Cookie")
			req.Header.Del("Proxy-Authorization")
		}
		return nil
	}
}
