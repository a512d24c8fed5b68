package hubtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// cdnModTime is the Last-Modified of every CDN object.
var cdnModTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// urlTTL is how long a signed URL is valid, as X-Amz-Expires says.
const urlTTL = time.Hour

// fakeAccessKey is the access key id in X-Amz-Credential. It is not a
// secret, but a client must still keep the whole signed query out of logs.
const fakeAccessKey = "AKIAHUBTESTFIXTURE00"

// signedURL is a CDN URL for f in the style of a presigned S3 GET: the
// object key is the LFS oid under a per-repository prefix, and the query
// carries the credential scope, the validity and the signature. Called with
// h.mu held.
func (h *Hub) signedURL(rp *repo, f *file) string {
	now := time.Now().UTC()
	repoKey := idHex(rp.id())
	p := fmt.Sprintf("/repos/%s/%s/%s/%s", repoKey[:2], repoKey[2:4], repoKey, f.sha256)
	date := now.Format("20060102T150405Z")
	expires := strconv.Itoa(int(urlTTL.Seconds()))
	base := path.Base(f.path)
	q := url.Values{}
	q.Set("response-content-disposition", fmt.Sprintf(`inline; filename*=UTF-8''%s; filename="%s";`, url.PathEscape(base), base))
	q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
	q.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	q.Set("X-Amz-Credential", fakeAccessKey+"/"+now.Format("20060102")+"/us-east-1/s3/aws4_request")
	q.Set("X-Amz-Date", date)
	q.Set("X-Amz-Expires", expires)
	q.Set("X-Amz-SignedHeaders", "host")
	q.Set("x-id", "GetObject")
	q.Set("X-Amz-Signature", h.sign(h.epoch, p, date, expires))
	return h.CDN.URL + p + "?" + q.Encode()
}

// sign is the signature of a CDN URL: an HMAC over the path and validity
// with a key made for this Hub, and the epoch ExpireCDNURLs advances.
func (h *Hub) sign(epoch int, p, date, expires string) string {
	m := hmac.New(sha256.New, h.secret)
	fmt.Fprintf(m, "%d\n%s\n%s\n%s", epoch, p, date, expires)
	return hex.EncodeToString(m.Sum(nil))
}

// serveCDN answers GET and HEAD of a signed object URL.
func (h *Hub) serveCDN(w http.ResponseWriter, r *http.Request) {
	if f, ok := h.takeFailure(&h.cdnFail); ok {
		writeFailure(w, f, "application/xml", s3Error("ServiceUnavailable", "Please reduce your request rate."))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s3Fail(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
		return
	}
	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(segs) != 5 || segs[0] != "repos" {
		s3Fail(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	oid := segs[4]
	q := r.URL.Query()
	date, expires, sig := q.Get("X-Amz-Date"), q.Get("X-Amz-Expires"), q.Get("X-Amz-Signature")

	h.mu.Lock()
	epoch := h.epoch
	data, found := h.blobs[oid]
	valid, stale := false, false
	for e := epoch; e >= 0 && !valid; e-- {
		if hmac.Equal([]byte(sig), []byte(h.sign(e, r.URL.Path, date, expires))) {
			valid, stale = true, e != epoch
		}
	}
	var truncateAfter int64 = -1
	if len(h.truncates) > 0 {
		truncateAfter = h.truncates[0]
	}
	var rate int64
	if rp, ok := h.repoKeys[segs[3]]; ok {
		rate = rp.cfg.cdnRate
	}
	h.mu.Unlock()

	switch {
	case !valid:
		s3Fail(w, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
		return
	case stale || expired(date, expires):
		s3Fail(w, http.StatusForbidden, "AccessDenied", "Request has expired")
		return
	case !found:
		s3Fail(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	if cd := q.Get("response-content-disposition"); cd != "" {
		w.Header().Set("Content-Disposition", cd)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+oid+`"`)
	if truncateAfter >= 0 && r.Method == http.MethodGet {
		w = &truncatingWriter{ResponseWriter: w, h: h, at: truncateAfter, pos: -1}
	}
	if rate > 0 && r.Method == http.MethodGet {
		w = &pacedWriter{ResponseWriter: w, rate: rate, start: time.Now(), ctx: r.Context()}
	}
	http.ServeContent(w, r, "", cdnModTime, bytes.NewReader(data))
}

func expired(date, expires string) bool {
	t, err := time.Parse("20060102T150405Z", date)
	if err != nil {
		return true
	}
	secs, err := strconv.Atoi(expires)
	if err != nil {
		return true
	}
	return time.Now().After(t.Add(time.Duration(secs) * time.Second))
}

func s3Error(code, message string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n<Error><Code>" + code + "</Code><Message>" + message + "</Message></Error>"
}

func s3Fail(w http.ResponseWriter, status int, code, message string) {
	writeFailure(w, failure{status: status}, "application/xml", s3Error(code, message))
}

// truncatingWriter drops the connection where a response's body reaches
// object offset at, consuming one pending TruncateCDN. A response that does
// not cross that offset (a one-byte probe, a part before it, a resume from
// it) passes untouched and leaves the truncation pending. The bytes before
// the cut are flushed to the socket first, so the client holds exactly the
// object's bytes up to the offset when the connection ends early.
type truncatingWriter struct {
	http.ResponseWriter
	h       *Hub
	at      int64
	pos     int64 // object offset of the next body byte; -1 before the first
	disable bool
}

func (t *truncatingWriter) Write(p []byte) (int, error) {
	if t.pos < 0 {
		t.pos, t.disable = bodyStart(t.Header())
	}
	if t.disable || t.pos >= t.at || t.pos+int64(len(p)) <= t.at {
		t.pos += int64(len(p))
		return t.ResponseWriter.Write(p)
	}
	t.h.mu.Lock()
	take := len(t.h.truncates) > 0
	if take {
		t.h.truncates = t.h.truncates[1:]
	}
	t.h.mu.Unlock()
	if !take {
		// Another response used the last truncation meanwhile.
		t.disable = true
		return t.ResponseWriter.Write(p)
	}
	t.ResponseWriter.Write(p[:t.at-t.pos])
	http.NewResponseController(t.ResponseWriter).Flush()
	// ErrAbortHandler makes the server close the connection without
	// logging, leaving the response short of its Content-Length.
	panic(http.ErrAbortHandler)
}

// pacedWriter sends a body at about rate bytes per second, in slices of a
// twentieth of a second, flushing each so the client sees steady progress.
type pacedWriter struct {
	http.ResponseWriter
	rate  int64
	start time.Time
	sent  int64
	ctx   context.Context
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	slice := max(p.rate/20, 1)
	written := 0
	for written < len(b) {
		due := p.start.Add(time.Duration(float64(p.sent) / float64(p.rate) * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			select {
			case <-time.After(wait):
			case <-p.ctx.Done():
				return written, p.ctx.Err()
			}
		}
		n := int(min(int64(len(b)-written), slice))
		m, err := p.ResponseWriter.Write(b[written : written+n])
		written += m
		p.sent += int64(m)
		if err != nil {
			return written, err
		}
		http.NewResponseController(p.ResponseWriter).Flush()
	}
	return written, nil
}

func (p *pacedWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// bodyStart is the object offset where a response's body starts, from the
// Content-Range ServeContent set; multipart answers are never truncated.
func bodyStart(h http.Header) (int64, bool) {
	cr := h.Get("Content-Range")
	if cr == "" {
		return 0, strings.HasPrefix(h.Get("Content-Type"), "multipart/")
	}
	var start, end, size int64
	if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &start, &end, &size); err != nil {
		return 0, true
	}
	return start, false
}

func (t *truncatingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// recorder records each request before passing it on, and the status and
// body size of its response as they are written. Both are recorded before
// the bytes go out, so a client that has read a response finds it counted.
func (h *Hub) recorder(log *[]*Request, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &Request{
			Method: r.Method,
			URL:    "https://" + r.Host + r.URL.RequestURI(),
			Header: r.Header.Clone(),
		}
		h.logMu.Lock()
		*log = append(*log, rec)
		h.logMu.Unlock()
		next.ServeHTTP(&countingWriter{ResponseWriter: w, h: h, rec: rec}, r)
	})
}

type countingWriter struct {
	http.ResponseWriter
	h   *Hub
	rec *Request
}

func (c *countingWriter) WriteHeader(status int) {
	c.h.logMu.Lock()
	if c.rec.Status == 0 {
		c.rec.Status = status
	}
	c.h.logMu.Unlock()
	c.ResponseWriter.WriteHeader(status)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.h.logMu.Lock()
	if c.rec.Status == 0 {
		c.rec.Status = http.StatusOK
	}
	c.rec.BodyBytes += int64(len(p))
	c.h.logMu.Unlock()
	n, err := c.ResponseWriter.Write(p)
	if n < len(p) {
		c.h.logMu.Lock()
		c.rec.BodyBytes -= int64(len(p) - n)
		c.h.logMu.Unlock()
	}
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// idHex is a stable hex id derived from s.
func idHex(s string) string { return SHA256([]byte(s)) }
