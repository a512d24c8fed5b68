package nginx

import (
	"bufio"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Request is one line of the access log. nginx writes it when the response
// ends, including when the client went away mid-body.
type Request struct {
	Method string
	// URI is the request target as sent, with its query.
	URI string
	// Path is URI's path, unescaped.
	Path   string
	Status int
	// Range is the Range request header, empty when absent.
	Range string
	// BodyBytes is $body_bytes_sent: body bytes nginx handed to the kernel,
	// an upper bound of what the client received.
	BodyBytes int64
	// Completed is false when the connection ended before the response did.
	Completed bool
	// Time is when nginx logged the request.
	Time time.Time
}

// Requests returns the logged requests for path (slash-separated, as in a
// URL, escaped or not), or every request when path is empty, in log order.
func (s *Server) Requests(path string) []Request {
	f, err := os.Open(s.AccessLog)
	if err != nil {
		return nil
	}
	defer f.Close()
	want := unescape(path)
	var out []Request
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		r, ok := parseLine(sc.Text())
		if ok && (want == "" || r.Path == want) {
			out = append(out, r)
		}
	}
	return out
}

// BytesSent sums the body bytes sent for every request of path: what a
// download, its retries and its resumed attempts cost the server.
func (s *Server) BytesSent(path string) int64 {
	var n int64
	for _, r := range s.Requests(path) {
		n += r.BodyBytes
	}
	return n
}

// WaitRequests waits up to ten seconds until at least n requests for path
// are logged and returns them. A killed client's request is logged only
// when nginx notices the closed connection, which a rate limit can delay by
// about a second. It fails the test on timeout.
func (s *Server) WaitRequests(t testing.TB, path string, n int) []Request {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rs := s.Requests(path)
		if len(rs) >= n {
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx logged %d requests for %q within 10s, want %d: %+v", len(rs), path, n, rs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func parseLine(line string) (Request, bool) {
	f := strings.Split(line, "\t")
	if len(f) != 7 {
		return Request{}, false
	}
	status, err := strconv.Atoi(f[2])
	if err != nil {
		return Request{}, false
	}
	body, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return Request{}, false
	}
	r := Request{
		Method:    f[0],
		URI:       f[1],
		Status:    status,
		BodyBytes: body,
		Range:     dash(f[4]),
		Completed: f[5] == "OK",
	}
	path, _, _ := strings.Cut(r.URI, "?")
	r.Path = unescape(path)
	if sec, frac, ok := strings.Cut(f[6], "."); ok {
		s, err1 := strconv.ParseInt(sec, 10, 64)
		ms, err2 := strconv.ParseInt(frac, 10, 64)
		if err1 == nil && err2 == nil {
			r.Time = time.Unix(s, ms*int64(time.Millisecond))
		}
	}
	return r, true
}

func dash(v string) string {
	if v == "-" {
		return ""
	}
	return v
}

func unescape(p string) string {
	if u, err := url.PathUnescape(p); err == nil {
		return u
	}
	return p
}
