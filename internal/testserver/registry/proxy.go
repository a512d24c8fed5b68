package registry

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Request is one request the proxy forwarded, logged when its response
// ended (including when the client went away mid-body).
type Request struct {
	Method string
	// Path is the request path, e.g. /v2/models/m1/blobs/sha256:...
	Path string
	// Repo and Digest are set for blob requests.
	Repo, Digest string
	Status       int
	// Range is the Range request header, empty when absent.
	Range string
	// Authorized is true when the request carried an Authorization header.
	Authorized bool
	// BodyBytes are the body bytes written to the client.
	BodyBytes int64
	// Completed is false when the response was cut short.
	Completed bool
}

// proxy forwards to the registry, counting, throttling and cutting blob
// responses as the test asks.
type proxy struct {
	addr string
	srv  *http.Server
	rp   *httputil.ReverseProxy
	done chan struct{}

	mu       sync.Mutex
	log      []Request
	received []string                 // paths, in arrival order
	sent     map[string]*atomic.Int64 // blob digest -> body bytes sent
	rates    map[string]int           // repository -> bytes per second
	drops    map[string]int64         // blob digest -> cut the next response after n bytes
}

func startProxy(target string) (*proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{
		addr:  ln.Addr().String(),
		done:  make(chan struct{}),
		sent:  map[string]*atomic.Int64{},
		rates: map[string]int{},
		drops: map[string]int64{},
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			// The registry builds Location headers from Host; keep the
			// proxy's so that clients stay on it.
			r.Out.Host = r.In.Host
		},
		// Bytes go out as they arrive, so counts and throttling see the
		// transfer as the client does.
		FlushInterval: -1,
		// A client cancelling a download mid-body is what these tests do;
		// the proxy's complaints about it are noise.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

func (p *proxy) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx); err != nil {
		p.srv.Close()
	}
	<-p.done
}

// blobPath splits /v2/<repo>/blobs/<digest>.
func blobPath(path string) (repo, digest string, ok bool) {
	rest, found := strings.CutPrefix(path, "/v2/")
	if !found {
		return "", "", false
	}
	i := strings.LastIndex(rest, "/blobs/")
	if i <= 0 {
		return "", "", false
	}
	repo, digest = rest[:i], rest[i+len("/blobs/"):]
	if !strings.HasPrefix(digest, "sha256:") || strings.Contains(digest, "/") {
		return "", "", false
	}
	return repo, digest, true
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, Range: r.Header.Get("Range"), Authorized: r.Header.Get("Authorization") != ""}
	m := &meter{ResponseWriter: w, ctx: r.Context(), drop: -1}
	p.mu.Lock()
	p.received = append(p.received, r.URL.Path)
	p.mu.Unlock()
	if repo, digest, ok := blobPath(r.URL.Path); ok && r.Method == http.MethodGet {
		rec.Repo, rec.Digest = repo, digest
		p.mu.Lock()
		m.counter = p.counter(digest)
		m.rate = p.rates[repo]
		if n, armed := p.drops[digest]; armed {
			m.drop = n
			m.claim = func() bool {
				p.mu.Lock()
				defer p.mu.Unlock()
				_, still := p.drops[digest]
				delete(p.drops, digest)
				return still
			}
		}
		p.mu.Unlock()
	}
	defer func() {
		rec.Status, rec.BodyBytes = m.status, m.n
		if rec.Status == 0 {
			rec.Status = http.StatusOK
		}
		rec.Completed = !m.cut && r.Context().Err() == nil
		p.mu.Lock()
		p.log = append(p.log, rec)
		p.mu.Unlock()
	}()
	p.rp.ServeHTTP(m, r)
}

// counter returns the byte counter of digest; p.mu must be held.
func (p *proxy) counter(digest string) *atomic.Int64 {
	c, ok := p.sent[digest]
	if !ok {
		c = &atomic.Int64{}
		p.sent[digest] = c
	}
	return c
}

// meter counts, throttles and, when asked, cuts a response body.
type meter struct {
	http.ResponseWriter
	ctx     context.Context
	status  int
	n       int64
	counter *atomic.Int64
	rate    int
	start   time.Time
	drop    int64 // cut after this many body bytes; -1: never
	claim   func() bool
	cut     bool
}

func (m *meter) WriteHeader(code int) {
	if m.status == 0 {
		m.status = code
	}
	m.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's Flush.
func (m *meter) Unwrap() http.ResponseWriter { return m.ResponseWriter }

func (m *meter) Flush() {
	if f, ok := m.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (m *meter) Write(b []byte) (int, error) {
	if m.status == 0 {
		m.status = http.StatusOK
	}
	if m.start.IsZero() {
		m.start = time.Now()
	}
	written := 0
	for len(b) > 0 {
		chunk := b
		if m.rate > 0 {
			// Quanta of a fiftieth of a second keep the rate smooth.
			chunk = b[:min(len(b), max(m.rate/50, 1))]
		}
		last := false
		if m.drop >= 0 && m.n+int64(len(chunk)) > m.drop && m.status < 300 {
			// Of parallel responses, only the first to get this far is
			// cut.
			if m.claim() {
				chunk = chunk[:m.drop-m.n]
				last = true
			} else {
				m.drop = -1
			}
		}
		n, err := m.ResponseWriter.Write(chunk)
		m.n += int64(n)
		written += n
		if m.counter != nil {
			m.counter.Add(int64(n))
		}
		if err != nil {
			return written, err
		}
		if last {
			m.Flush()
			m.cut = true
			// The server closes the connection without finishing the
			// response: what a network failure mid-body looks like.
			panic(http.ErrAbortHandler)
		}
		b = b[n:]
		if m.rate > 0 {
			m.Flush()
			due := m.start.Add(time.Duration(float64(m.n) / float64(m.rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-m.ctx.Done():
					t.Stop()
					return written, errors.New("client went away")
				case <-t.C:
				}
			}
		}
	}
	return written, nil
}

// BytesSent returns the body bytes the proxy has sent for the blob digest
// (sha256:HEX) so far, across all repositories and requests: what a
// download, its retries and its resumed attempts cost the registry.
func (s *Server) BytesSent(digest string) int64 {
	s.proxy.mu.Lock()
	c := s.proxy.counter(digest)
	s.proxy.mu.Unlock()
	return c.Load()
}

// Requests returns the finished requests whose path starts with prefix
// (every request when prefix is empty), in the order they ended. A request
// whose response the client has just read may not be logged yet; see
// WaitRequests and Received.
func (s *Server) Requests(prefix string) []Request {
	s.proxy.mu.Lock()
	defer s.proxy.mu.Unlock()
	var out []Request
	for _, r := range s.proxy.log {
		if strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// Received counts the requests whose path starts with prefix (all when
// prefix is empty) that have arrived so far, finished or not: what a test
// asserting "no network access" compares before and after.
func (s *Server) Received(prefix string) int {
	s.proxy.mu.Lock()
	defer s.proxy.mu.Unlock()
	n := 0
	for _, p := range s.proxy.received {
		if strings.HasPrefix(p, prefix) {
			n++
		}
	}
	return n
}

// WaitRequests waits up to ten seconds until at least n requests whose path
// starts with prefix have finished, and returns them. A response can reach
// the client a moment before the proxy logs it. It fails the test on
// timeout.
func (s *Server) WaitRequests(t testing.TB, prefix string, n int) []Request {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rs := s.Requests(prefix)
		if len(rs) >= n {
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry proxy logged %d requests for %q within 10s, want %d", len(rs), prefix, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SetRate limits the blob responses of repo to about bytesPerSec per
// response (as nginx's limit_rate does per connection); 0 removes the
// limit. Requests already running keep the rate they started with.
func (s *Server) SetRate(repo string, bytesPerSec int) {
	s.proxy.mu.Lock()
	defer s.proxy.mu.Unlock()
	if bytesPerSec <= 0 {
		delete(s.proxy.rates, repo)
		return
	}
	s.proxy.rates[repo] = bytesPerSec
}

// DropAfter makes the next response for blob digest that would send more
// than n body bytes end after n of them, with the connection closed.
func (s *Server) DropAfter(digest string, n int64) {
	s.proxy.mu.Lock()
	defer s.proxy.mu.Unlock()
	s.proxy.drops[digest] = n
}
