package hubtest

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/model-provisioner/model-provisioner/internal/testserver"
)

// Defaults of the Hub's options.
const (
	DefaultTreePageSize = 1000
	DefaultLFSThreshold = 1 << 10
)

// Option configures a Hub.
type Option func(*config)

type config struct {
	pageSize     int
	lfsThreshold int64
	resolveCache bool
}

// WithTreePageSize sets how many entries one page of the tree API holds
// (default DefaultTreePageSize, as on the Hub).
func WithTreePageSize(n int) Option { return func(c *config) { c.pageSize = n } }

// WithLFSThreshold sets the size from which files are stored in LFS and
// redirected to the CDN (default DefaultLFSThreshold). Smaller files are
// kept in git and served by the Hub itself.
func WithLFSThreshold(n int64) Option { return func(c *config) { c.lfsThreshold = n } }

// WithResolveCache answers resolve requests for files kept in git with a 307
// to a relative /api/resolve-cache/... URL on the Hub, carrying
// X-Repo-Commit, instead of a direct 200: what huggingface.co does for such
// files since mid-2025. The cache URL then answers 200 with the content.
func WithResolveCache() Option { return func(c *config) { c.resolveCache = true } }

// Request is a snapshot of one request a server received.
type Request struct {
	Method string
	// URL is absolute: scheme, host as sent, path and query.
	URL    string
	Header http.Header
	// Status and BodyBytes describe the response; BodyBytes is what the
	// handler wrote, before a truncation closed the connection.
	Status    int
	BodyBytes int64
}

// Hub is a Hugging Face Hub fixture. Its methods are safe for concurrent
// use; AddRepo and SetRef report misuse through the t given to New.
//
// Headers of GET and HEAD /{org}/{name}/resolve/{revision}/{path}:
//
//   - LFS file: 302 Found; Location: the CDN URL, signed S3-style
//     (X-Amz-Credential, X-Amz-Signature, X-Amz-Expires, ...);
//     X-Repo-Commit: <commit>; X-Linked-Etag: "<sha256>"; X-Linked-Size:
//     <size>; ETag: "<git blob id of the LFS pointer>"; Accept-Ranges:
//     bytes; Content-Type: text/plain; charset=utf-8; Content-Length: the
//     length of the short redirect body.
//   - File kept in git: 200 (206 for a Range, 304 for a matching
//     If-None-Match); ETag: "<git blob id>"; X-Repo-Commit; Accept-Ranges;
//     Content-Length; Content-Type from the extension. With
//     WithResolveCache, first a 307 with X-Repo-Commit and a relative
//     Location.
//   - Errors carry X-Error-Code and X-Error-Message and a JSON body
//     {"error": message}: missing or private repository 401 RepoNotFound;
//     gated repository 401 GatedRepo without a token, 403 GatedRepo with a
//     token not granted; unknown revision 404 RevisionNotFound; missing file
//     404 EntryNotFound (with X-Repo-Commit).
//
// The CDN answers with http.ServeContent: ETag "<sha256>" (strong), a fixed
// Last-Modified, Accept-Ranges, Content-Range, and Content-Disposition from
// the signed URL. A URL whose signature does not match, or that
// ExpireCDNURLs invalidated, gets 403 with an S3-style XML error.
//
// As on the Hub: the 302 with X-Repo-Commit, X-Linked-Etag (quoted sha256)
// and X-Linked-Size for LFS files, and no credentials needed at the storage
// host; ETag as the git blob id for files in git, with If-None-Match
// answered 304; the X-Error-Code values and their statuses, including 401
// for missing repositories and the 401/403 split for gated ones, and their
// messages for gated and missing repositories; X-Repo-Commit on
// EntryNotFound; the 307 to /api/resolve-cache for small files; tree
// entries' fields (oid is the blob id of the LFS pointer, size the real
// size) and pagination by a Link rel="next" URL with a cursor parameter;
// sha and siblings in the revision API. Not necessarily as on the Hub: the
// ETag header on the 302 (clients should prefer X-Linked-Etag), the other
// error messages, the order of tree entries, the page size, the CDN's ETag
// (storage hosts send an MD5 or multipart ETag) and its URL layout, and
// Xet-backed files (X-Xet-Hash), which are not modelled.
type Hub struct {
	// URL is the Hub endpoint, e.g. https://127.0.0.1:PORT: what
	// HF_ENDPOINT would be set to.
	URL string
	// Server is the Hub's server.
	Server *httptest.Server
	// CDN is the storage host. Its URL names the host "localhost" so that
	// it differs from the Hub's by host name.
	CDN *httptest.Server
	// CAFile is a PEM file with the CA of both servers (SSL_CERT_FILE for a
	// subprocess).
	CAFile string

	t      testing.TB
	pool   *x509.CertPool
	secret []byte

	mu        sync.Mutex
	cfg       config
	repos     map[string]*repo
	repoKeys  map[string]*repo  // idHex(org/name) -> repo: the CDN's path prefix
	blobs     map[string][]byte // sha256 -> content: what the CDN stores
	seq       int
	epoch     int
	hubFail   failure
	cdnFail   failure
	truncates []int64

	// logMu guards the request logs apart from mu: handlers write, and so
	// record, while holding mu.
	logMu  sync.Mutex
	hubLog []*Request
	cdnLog []*Request
}

type failure struct {
	count      int
	status     int
	retryAfter time.Duration
}

// New starts a Hub and its CDN; both stop when the test ends.
func New(t testing.TB, opts ...Option) *Hub {
	t.Helper()
	cfg := config{pageSize: DefaultTreePageSize, lfsThreshold: DefaultLFSThreshold}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.pageSize <= 0 {
		t.Fatalf("hubtest: tree page size %d", cfg.pageSize)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatalf("hubtest: %v", err)
	}
	h := &Hub{
		t:        t,
		secret:   secret,
		cfg:      cfg,
		repos:    map[string]*repo{},
		repoKeys: map[string]*repo{},
		blobs:    map[string][]byte{},
	}
	ca := testserver.NewCA(t)
	h.pool = ca.Pool
	h.CAFile = ca.WriteCAFile(t, t.TempDir())
	leaf := ca.Issue(t)

	// The CDN starts first: the Hub's handlers read its URL, and must see
	// it set before they run.
	h.CDN = startTLS(t, leaf, h.recorder(&h.cdnLog, http.HandlerFunc(h.serveCDN)))
	_, port, _ := net.SplitHostPort(h.CDN.Listener.Addr().String())
	h.CDN.URL = "https://localhost:" + port
	h.Server = startTLS(t, leaf, h.recorder(&h.hubLog, http.HandlerFunc(h.serveHub)))
	h.URL = h.Server.URL
	return h
}

func startTLS(t testing.TB, leaf testserver.Leaf, handler http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(handler)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// CertPool trusts the CA of the Hub and the CDN, and nothing else.
func (h *Hub) CertPool() *x509.CertPool { return h.pool }

// Client returns a client trusting both servers. Like the standard client
// it follows redirects, and drops Authorization when one leaves the Hub's
// host.
func (h *Hub) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:    &tls.Config{RootCAs: h.pool, MinVersion: tls.VersionTLS12},
		DisableCompression: true,
	}}
}

// AddRepo commits files (path -> content) to branch revision of org/name,
// creating the repository on first use, and returns the new commit id. The
// files replace the branch's whole tree; the previous head becomes the
// commit's parent, so adding the same files again still makes a new commit,
// as `git commit --allow-empty` would. Files of at least the LFS threshold
// go to LFS and are served from the CDN.
func (h *Hub) AddRepo(org, name, revision string, files map[string][]byte, opts ...RepoOption) string {
	h.t.Helper()
	if org == "" || name == "" || strings.Contains(org, "/") || strings.Contains(name, "/") {
		h.t.Fatalf("hubtest: invalid repository id %q/%q", org, name)
	}
	if revision == "" || isCommitID(revision) {
		h.t.Fatalf("hubtest: revision %q must be a branch name", revision)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	key := org + "/" + name
	r, ok := h.repos[key]
	if !ok {
		r = &repo{
			org: org, name: name,
			cfg:     repoConfig{tokens: map[string]bool{}, lfsThreshold: -1},
			commits: map[string]*commit{},
			refs:    map[string]string{},
			created: baseTime.Add(time.Duration(h.seq) * time.Minute),
		}
		h.repos[key] = r
		h.repoKeys[idHex(key)] = r
	}
	for _, o := range opts {
		o(&r.cfg)
	}
	threshold := h.cfg.lfsThreshold
	if r.cfg.lfsThreshold >= 0 {
		threshold = r.cfg.lfsThreshold
	}
	fs := make(map[string]*file, len(files))
	for p, data := range files {
		if !validPath(p) {
			h.t.Fatalf("hubtest: invalid file path %q", p)
		}
		data = append([]byte(nil), data...)
		f := newFile(p, data, int64(len(data)) >= threshold)
		fs[p] = f
		if f.lfs {
			h.blobs[f.sha256] = data
		}
	}
	for p := range fs {
		// A path cannot be both a file and a directory.
		for d := dirOf(p); d != ""; d = dirOf(d) {
			if _, clash := fs[d]; clash {
				h.t.Fatalf("hubtest: %q is both a file and a directory", d)
			}
		}
	}
	h.seq++
	c := buildCommit(fs, r.refs[revision], h.seq, "Update "+revision)
	r.commits[c.sha] = c
	r.refs[revision] = c.sha
	return c.sha
}

// SetRef points branch ref of org/name at commit, a commit id returned by
// AddRepo for that repository: to move a branch back, or to create another
// one. It fails the test if either is unknown.
func (h *Hub) SetRef(org, name, ref, commitID string) {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.repos[org+"/"+name]
	if !ok {
		h.t.Fatalf("hubtest: no repository %s/%s", org, name)
	}
	if _, ok := r.commits[commitID]; !ok {
		h.t.Fatalf("hubtest: %s/%s has no commit %s", org, name, commitID)
	}
	if ref == "" || isCommitID(ref) {
		h.t.Fatalf("hubtest: invalid ref %q", ref)
	}
	r.refs[ref] = commitID
}

// Commit returns the commit id branch ref of org/name points at, or "".
func (h *Hub) Commit(org, name, ref string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r, ok := h.repos[org+"/"+name]; ok {
		return r.refs[ref]
	}
	return ""
}

// ResolveURL is the Hub URL of a file: {URL}/{org}/{name}/resolve/{revision}/{path}.
func (h *Hub) ResolveURL(org, name, revision, filePath string) string {
	return h.URL + "/" + org + "/" + name + "/resolve/" + escapeSegment(revision) + "/" + escapePath(filePath)
}

// FailHub makes the next n Hub requests fail with status, with a
// Retry-After header (whole seconds, rounded up) when retryAfter > 0.
func (h *Hub) FailHub(n, status int, retryAfter time.Duration) {
	h.mu.Lock()
	h.hubFail = failure{count: n, status: status, retryAfter: retryAfter}
	h.mu.Unlock()
}

// FailCDN makes the next n CDN requests fail with status, with a
// Retry-After header (whole seconds, rounded up) when retryAfter > 0.
func (h *Hub) FailCDN(n, status int, retryAfter time.Duration) {
	h.mu.Lock()
	h.cdnFail = failure{count: n, status: status, retryAfter: retryAfter}
	h.mu.Unlock()
}

// TruncateCDN makes the next n CDN responses that would send the object's
// byte at offset after stop just before it and close the connection, as a
// dropped transfer does: a whole-object GET ends after after bytes, and of
// parallel ranged parts only the one spanning the offset is cut. Headers,
// including Content-Length, are those of the whole response. Responses
// that do not cross the offset (a one-byte probe, a resume from it) leave
// the truncation pending.
func (h *Hub) TruncateCDN(n int, after int64) {
	h.mu.Lock()
	for i := 0; i < n; i++ {
		h.truncates = append(h.truncates, after)
	}
	h.mu.Unlock()
}

// ExpireCDNURLs invalidates every CDN URL handed out so far: they answer
// 403 "Request has expired", as a signed URL does when its validity ends
// during a long download. New resolves get fresh URLs.
func (h *Hub) ExpireCDNURLs() {
	h.mu.Lock()
	h.epoch++
	h.mu.Unlock()
}

// HubRequests returns snapshots of the requests the Hub received, in order.
func (h *Hub) HubRequests() []Request { return h.snapshot(&h.hubLog) }

// CDNRequests returns snapshots of the requests the CDN received, in order:
// tests assert that no Authorization header ever reached it.
func (h *Hub) CDNRequests() []Request { return h.snapshot(&h.cdnLog) }

// CDNBytesSent is the body bytes the CDN wrote for the blob with this
// sha256 over all requests, in every repository that holds it.
func (h *Hub) CDNBytesSent(sha256 string) int64 {
	return h.cdnBytes("/" + sha256)
}

// CDNBytesSentForRepo is CDNBytesSent counting only the downloads of the
// blob as a file of org/name. Tests that publish the same bytes in several
// repositories of one Hub tell their downloads apart with it.
func (h *Hub) CDNBytesSentForRepo(org, name, sha256 string) int64 {
	return h.cdnBytes("/" + idHex(org+"/"+name) + "/" + sha256)
}

// cdnBytes sums the body bytes of CDN requests whose path ends in suffix.
func (h *Hub) cdnBytes(suffix string) int64 {
	var n int64
	for _, r := range h.CDNRequests() {
		p := r.URL
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		if strings.HasSuffix(p, suffix) {
			n += r.BodyBytes
		}
	}
	return n
}

// ResetRequests forgets the recorded requests of both servers.
func (h *Hub) ResetRequests() {
	h.logMu.Lock()
	h.hubLog, h.cdnLog = nil, nil
	h.logMu.Unlock()
}

func (h *Hub) snapshot(log *[]*Request) []Request {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	out := make([]Request, len(*log))
	for i, r := range *log {
		out[i] = *r
		out[i].Header = r.Header.Clone()
	}
	return out
}

// takeFailure consumes one injected failure, if any is pending.
func (h *Hub) takeFailure(f *failure) (failure, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f.count <= 0 {
		return failure{}, false
	}
	f.count--
	return *f, true
}

func isCommitID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func dirOf(p string) string {
	i := strings.LastIndex(p, "/")
	if i < 0 {
		return ""
	}
	return p[:i]
}
