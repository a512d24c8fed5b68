package s3srv

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Request is one request the proxy relayed.
type Request struct {
	Method string
	// Status is the server's answer.
	Status int
	// Range is the request's Range header, if any.
	Range string
	// VersionID is the versionId query parameter, if any.
	VersionID string
}

// objState is what the proxy knows and does for one bucket/key path.
type objState struct {
	served   int64
	reqs     []Request
	rate     int   // bytes per second per response; 0 unlimited
	truncate int64 // cut the next GET response after this many bytes
}

// proxy relays requests to the server unchanged, counting body bytes per
// object and injecting the faults asked for.
type proxy struct {
	addr string
	srv  *http.Server
	rp   *httputil.ReverseProxy

	mu   sync.Mutex
	objs map[string]*objState
}

func startProxy(backend string, tr *http.Transport, leaf *tls.Certificate) (*proxy, error) {
	target, err := url.Parse(backend)
	if err != nil {
		return nil, err
	}
	p := &proxy{objs: map[string]*objState{}}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = target.Scheme
			r.Out.URL.Host = target.Host
			// The client signed the Host it connected to; the server
			// must see the same one for the signature to match.
			r.Out.Host = r.In.Host
		},
		Transport:     tr,
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if leaf != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*leaf}, MinVersion: tls.VersionTLS12})
	}
	p.addr = ln.Addr().String()
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go p.srv.Serve(ln)
	return p, nil
}

func (p *proxy) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx); err != nil {
		p.srv.Close()
	}
}

func (p *proxy) obj(name string) *objState {
	o := p.objs[name]
	if o == nil {
		o = &objState{}
		p.objs[name] = o
	}
	return o
}

func (p *proxy) set(name string, fn func(*objState)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p.obj(name))
}

func (p *proxy) served(name string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.obj(name).served
}

func (p *proxy) requests(name string) []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.obj(name).reqs...)
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Path-style addressing: /bucket/key, or /bucket/ for a listing.
	name := strings.TrimPrefix(r.URL.Path, "/")
	if !strings.Contains(name, "/") {
		name += "/"
	}
	p.mu.Lock()
	o := p.obj(name)
	i := len(o.reqs)
	o.reqs = append(o.reqs, Request{Method: r.Method, Range: r.Header.Get("Range"), VersionID: r.URL.Query().Get("versionId")})
	cw := &countingWriter{ResponseWriter: w, p: p, o: o, i: i, rate: o.rate}
	if r.Method == http.MethodGet && o.truncate > 0 {
		cw.cut, o.truncate = o.truncate, 0
	}
	p.mu.Unlock()
	p.rp.ServeHTTP(cw, r)
}

// countingWriter counts the body bytes of one response and applies its
// rate limit or cut.
type countingWriter struct {
	http.ResponseWriter
	p    *proxy
	o    *objState
	i    int
	rate int
	cut  int64
	sent int64
}

func (c *countingWriter) WriteHeader(code int) {
	c.p.mu.Lock()
	c.o.reqs[c.i].Status = code
	c.p.mu.Unlock()
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		chunk := b[:min(len(b), 32<<10)]
		if c.cut > 0 && c.sent+int64(len(chunk)) >= c.cut {
			n, _ := c.ResponseWriter.Write(chunk[:c.cut-c.sent])
			c.account(n)
			c.Flush()
			// Aborting the handler closes the connection mid-body.
			panic(http.ErrAbortHandler)
		}
		n, err := c.ResponseWriter.Write(chunk)
		c.account(n)
		written += n
		if err != nil {
			return written, err
		}
		if c.rate > 0 {
			c.Flush()
			time.Sleep(time.Duration(float64(n) / float64(c.rate) * float64(time.Second)))
		}
		b = b[n:]
	}
	return written, nil
}

func (c *countingWriter) account(n int) {
	c.sent += int64(n)
	c.p.mu.Lock()
	c.o.served += int64(n)
	c.p.mu.Unlock()
}

// Flush sends what was written so far, so a throttled or cut response
// reaches the client as it would over a slow or failing network.
func (c *countingWriter) Flush() {
	_ = http.NewResponseController(c.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
