package s3srv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"go/build"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/model-provisioner/model-provisioner/internal/testserver"
)

// NotInstalled is the message a test fails or skips with when there is no
// versitygw binary.
const NotInstalled = "versitygw not installed: run scripts/install-test-deps " +
	"(go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)"

// startTimeout bounds how long Start waits for the server to answer.
const startTimeout = 15 * time.Second

// Server is a running versitygw behind a counting proxy. Its methods are
// safe for concurrent use.
type Server struct {
	// Endpoint is the proxy's base URL (http://127.0.0.1:PORT, or https://
	// for StartTLS): what the fetcher under test is configured with.
	Endpoint string
	// ServerEndpoint is versitygw's own base URL, bypassing the proxy.
	ServerEndpoint string
	// AccessKey and SecretKey are the root account's credentials; Region is
	// the region the server signs for.
	AccessKey, SecretKey, Region string
	// DataDir is the posix backend's directory: one subdirectory per
	// bucket.
	DataDir string
	// CAFile is a PEM file holding the CA that issued the server
	// certificate, and CertPool trusts it; both are empty without TLS.
	CAFile   string
	CertPool *x509.CertPool
	// Client talks to the server directly, as the root account.
	Client *minio.Client

	httpClient *http.Client
	proxy      *proxy
	proc       *testserver.Process
	stopOnce   sync.Once
}

// Object identifies a stored object version.
type Object struct {
	// ETag without quotes, and the version id ("" unless the bucket is
	// versioned).
	ETag, VersionID string
}

// Available reports whether a versitygw binary can be found.
func Available() bool {
	_, ok := binary()
	return ok
}

// binary finds versitygw on PATH, in $GOBIN or in $GOPATH/bin, where go
// install puts it and where a non-login shell's PATH often does not reach.
func binary() (string, bool) {
	var candidates []string
	if d := os.Getenv("GOBIN"); d != "" {
		candidates = append(candidates, filepath.Join(d, "versitygw"))
	}
	for _, gp := range filepath.SplitList(build.Default.GOPATH) {
		candidates = append(candidates, filepath.Join(gp, "bin", "versitygw"))
	}
	if p, ok := testserver.FindBinary("versitygw", candidates...); ok {
		return p, true
	}
	if d := goEnvGOBIN(); d != "" {
		return testserver.FindBinary(filepath.Join(d, "versitygw"))
	}
	return "", false
}

// goEnvGOBIN returns GOBIN as set with go env -w, which the environment
// does not show; "" when unset or when go is not at hand.
func goEnvGOBIN() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOBIN").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// Start runs versitygw over a fresh temporary directory on a free loopback
// port, with a counting proxy in front of it, and returns once it answers.
// Both are stopped when the test ends. Without a versitygw binary the test
// is skipped, or fails when the CI environment variable is set, so CI
// cannot pass by skipping.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartTLS is Start with HTTPS on both the server and the proxy, under a
// certificate for 127.0.0.1 and localhost issued by a CA made for this
// server (see CAFile and CertPool).
func StartTLS(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

func start(t testing.TB, useTLS bool) *Server {
	t.Helper()
	bin, ok := binary()
	testserver.SkipWithout(t, ok, NotInstalled)
	root := t.TempDir()
	s := &Server{
		AccessKey: "AKIAMODELPROVTEST",
		SecretKey: randomSecret(t),
		Region:    "us-east-1",
		DataDir:   filepath.Join(root, "data"),
	}
	versions := filepath.Join(root, "versions")
	for _, d := range []string{s.DataDir, versions} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("s3srv.Start: %v", err)
		}
	}
	args := []string{"--access", s.AccessKey, "--secret", s.SecretKey, "--region", s.Region, "--quiet"}
	scheme := "http"
	tr := &http.Transport{DisableCompression: true, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	var leaf *tls.Certificate
	if useTLS {
		scheme = "https"
		ca := testserver.NewCA(t)
		l := ca.Issue(t)
		leaf = &l.TLS
		certFile, keyFile := filepath.Join(root, "server.crt"), filepath.Join(root, "server.key")
		if err := os.WriteFile(certFile, l.CertPEM, 0o644); err != nil {
			t.Fatalf("s3srv.Start: %v", err)
		}
		if err := os.WriteFile(keyFile, l.KeyPEM, 0o600); err != nil {
			t.Fatalf("s3srv.Start: %v", err)
		}
		args = append(args, "--cert", certFile, "--key", keyFile)
		s.CAFile = ca.WriteCAFile(t, root)
		s.CertPool = ca.Pool
		tr.TLSClientConfig = &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
	}
	s.httpClient = &http.Client{Transport: tr}

	// A port found free may be taken before the server binds it; the
	// server then exits and another port is tried.
	const attempts = 5
	var addr string
	var err error
	for i := 1; ; i++ {
		addr, err = freeAddr()
		if err != nil {
			t.Fatalf("s3srv.Start: %v", err)
		}
		s.ServerEndpoint = scheme + "://" + addr
		err = s.launch(bin, append(args, "--port", addr, "posix", "--versioning-dir", versions, s.DataDir))
		if err == nil {
			break
		}
		if errors.Is(err, errExited) && i < attempts {
			continue
		}
		t.Fatalf("s3srv.Start: %v", err)
	}
	t.Cleanup(s.Stop)

	s.Client, err = minio.New(addr, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure:       useTLS,
		Transport:    tr,
		Region:       s.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatalf("s3srv.Start: client: %v", err)
	}
	s.proxy, err = startProxy(s.ServerEndpoint, tr, leaf)
	if err != nil {
		t.Fatalf("s3srv.Start: proxy: %v", err)
	}
	t.Cleanup(s.proxy.close)
	s.Endpoint = scheme + "://" + s.proxy.addr
	return s
}

var errExited = errors.New("versitygw exited during start-up")

// launch starts the server and waits until it answers HTTP as versitygw:
// a connection accepted by another process that took the port must not be
// mistaken for it.
func (s *Server) launch(bin string, args []string) error {
	proc, err := testserver.StartProcess(exec.Command(bin, args...), syscall.SIGKILL)
	if err != nil {
		return err
	}
	s.proc = proc

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-proc.Exited():
			return fmt.Errorf("%w (%v):\n%s", errExited, proc.State(), proc.Output())
		default:
		}
		if s.answers() {
			return nil
		}
		if time.Now().After(deadline) {
			proc.Stop(syscall.SIGKILL, 0)
			return fmt.Errorf("versitygw did not answer on %s within %v:\n%s", s.ServerEndpoint, startTimeout, proc.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answers reports whether versitygw serves requests at ServerEndpoint. An
// unauthenticated request is refused, but the refusal names the server.
func (s *Server) answers() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.ServerEndpoint+"/", nil)
	if err != nil {
		return false
	}
	resp, err := s.httpClient.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return strings.EqualFold(resp.Header.Get("Server"), "VERSITYGW")
}

// Stop ends the server: SIGTERM, then SIGKILL if it has not exited after a
// few seconds. It is idempotent and runs automatically when the test ends;
// call it directly to take the server away in the middle of a test.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.proc != nil {
			s.proc.Stop(syscall.SIGTERM, 3*time.Second)
		}
	})
}

// Output returns what the server printed, for failure messages.
func (s *Server) Output() string {
	if s.proc == nil {
		return ""
	}
	return s.proc.Output()
}

// CreateBucket creates a bucket. It fails the test on error.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// EnableVersioning turns versioning on for bucket, so that every Put keeps
// the previous version and returns a version id.
func (s *Server) EnableVersioning(t testing.TB, bucket string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Client.EnableVersioning(ctx, bucket); err != nil {
		t.Fatalf("enable versioning on %s: %v", bucket, err)
	}
}

// Put stores data as bucket/key. Entries of meta whose name starts with
// "x-amz-" are sent as request headers as they are (for example
// x-amz-checksum-sha256, which the server checks and then stores); any
// other entry becomes user metadata (x-amz-meta-NAME). It fails the test
// on error.
func (s *Server) Put(t testing.TB, bucket, key string, data []byte, meta map[string]string) Object {
	t.Helper()
	u, err := url.Parse(s.ServerEndpoint + "/" + bucket + "/" + s3utils.EncodePath(key))
	if err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
	req, err := http.NewRequest(http.MethodPut, u.String(), bytes.NewReader(data))
	if err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
	req.ContentLength = int64(len(data))
	sum := sha256.Sum256(data)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	req.Header.Set("Content-Type", "application/octet-stream")
	for k, v := range meta {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-") {
			req.Header.Set(k, v)
		} else {
			req.Header.Set("X-Amz-Meta-"+k, v)
		}
	}
	req = signer.SignV4(*req, s.AccessKey, s.SecretKey, "", s.Region)
	resp, err := s.httpClient.Do(req)
	if err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("put %s/%s: %s: %s", bucket, key, resp.Status, body)
	}
	return Object{ETag: strings.Trim(resp.Header.Get("ETag"), `"`), VersionID: resp.Header.Get("X-Amz-Version-Id")}
}

// Delete removes bucket/key (in a versioned bucket: adds a delete marker).
func (s *Server) Delete(t testing.TB, bucket, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Client.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("delete %s/%s: %v", bucket, key, err)
	}
}

// BytesServed returns the response body bytes the proxy relayed for
// bucket/key, over all requests so far.
func (s *Server) BytesServed(bucket, key string) int64 {
	return s.proxy.served(bucket + "/" + key)
}

// Requests returns the requests the proxy relayed for bucket/key, in
// order. A listing of a bucket is recorded under key "".
func (s *Server) Requests(bucket, key string) []Request {
	return s.proxy.requests(bucket + "/" + key)
}

// Throttle makes the proxy relay response bodies for bucket/key at about
// bytesPerSec per response (0: unlimited), so that a download stays in
// flight long enough to be interrupted.
func (s *Server) Throttle(bucket, key string, bytesPerSec int) {
	s.proxy.set(bucket+"/"+key, func(o *objState) { o.rate = bytesPerSec })
}

// TruncateOnce makes the proxy drop the connection of the next GET response
// for bucket/key after n body bytes, the way a network failure cuts a
// transfer short.
func (s *Server) TruncateOnce(bucket, key string, n int64) {
	s.proxy.set(bucket+"/"+key, func(o *objState) { o.truncate = n })
}

// freeAddr asks the kernel for a free loopback port.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomSecret(t testing.TB) string {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("s3srv: secret: %v", err)
	}
	return hex.EncodeToString(b)
}
