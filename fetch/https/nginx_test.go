package https

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/fetch/fetchtest"
	"github.com/model-provisioner/model-provisioner/internal/testserver/nginx"
)

// TestConformance_nginx runs the conformance suite against a real nginx
// serving files over TLS with its own Range, If-Range and ETag handling.
// A second nginx on the same files limits the rate, for the cases that
// interrupt a download mid-way.
func TestConformance_nginx(t *testing.T) {
	root, err := os.MkdirTemp("", "nginx-root-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	fast := nginx.Start(t, nginx.Options{Root: root, TLS: true})
	slow := nginx.Start(t, nginx.Options{Root: root, TLS: true, RateLimit: "1m"})
	var n atomic.Int64
	publish := func(t *testing.T, srv *nginx.Server, data []byte) string {
		rel := fmt.Sprintf("m%d/model.gguf", n.Add(1))
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		return srv.FileURL(rel)
	}
	fetchtest.Run(t, fetchtest.Target{
		Scheme: fetch.SchemeHTTPS,
		NewFetcher: func(t *testing.T, store *content.Store) fetch.Fetcher {
			f, err := New(store, Config{Client: ClientConfig{RootCAs: mergePools(fast, slow)}, Download: testOptions()})
			if err != nil {
				t.Fatal(err)
			}
			return f
		},
		Publish: func(t *testing.T, data []byte) string { return publish(t, fast, data) },
		Missing: func(t *testing.T) string { return fast.FileURL("missing/model.gguf") },
		PublishSlow: func(t *testing.T, data []byte, _ int) string {
			return publish(t, slow, data)
		},
		BytesServed: func(t *testing.T, ref string) int64 {
			for _, srv := range []*nginx.Server{fast, slow} {
				if rel, ok := strings.CutPrefix(ref, srv.URL); ok {
					return fast.BytesSent(rel) + slow.BytesSent(rel)
				}
			}
			t.Fatalf("unknown ref %s", ref)
			return 0
		},
	})
}

// mergePools trusts the CAs of several servers.
func mergePools(srvs ...*nginx.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, s := range srvs {
		if pem, err := os.ReadFile(s.CAFile); err == nil {
			pool.AppendCertsFromPEM(pem)
		}
	}
	return pool
}
