package https

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/model-provisioner/model-provisioner/fetch/download"
	"github.com/model-provisioner/model-provisioner/redact"
)

// Source is one URL read by byte range over HTTP. It implements
// download.Source.
type Source struct {
	Client *http.Client
	URL    *url.URL
	// Header is added to every request (e.g. Authorization for the Hub; it
	// is dropped by the client when a redirect leaves the host).
	Header http.Header
	// UserAgent identifies the agent to servers.
	UserAgent string
}

var _ download.Source = (*Source)(nil)

// String returns the URL with every secret removed.
func (s *Source) String() string { return redact.URL(s.URL) }

func (s *Source) request(ctx context.Context, method string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.URL.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", s, redact.String(err.Error()))
	}
	for k, v := range s.Header {
		req.Header[k] = v
	}
	if s.UserAgent != "" {
		req.Header.Set("User-Agent", s.UserAgent)
	}
	return req, nil
}

// do sends req and turns transport errors into redacted ones: the standard
// client's errors quote the URL, query string and all.
func (s *Source) do(req *http.Request) (*http.Response, error) {
	resp, err := s.Client.Do(req)
	if err != nil {
		return nil, Redacted("", err)
	}
	return resp, nil
}

// Redacted returns err with its message passed through redact.String and
// prefixed, keeping err as the cause for errors.Is/As. The standard HTTP
// client's errors quote the request URL, query string and all.
func Redacted(prefix string, err error) error {
	msg := redact.String(err.Error())
	if prefix != "" {
		msg = prefix + ": " + msg
	}
	return &transportError{msg: msg, err: err}
}

// transportError keeps the cause for errors.Is/As while its message is
// redacted.
type transportError struct {
	msg string
	err error
}

func (e *transportError) Error() string { return e.msg }
func (e *transportError) Unwrap() error { return e.err }

// Stat probes the object with a one-byte range request rather than HEAD:
// presigned URLs are often valid for GET only, and the answer tells both the
// size and whether ranges work.
func (s *Source) Stat(ctx context.Context) (download.Info, error) {
	req, err := s.request(ctx, http.MethodGet)
	if err != nil {
		return download.Info{}, err
	}
	req.Header.Set("Range", "bytes=0-0")
	resp, err := s.do(req)
	if err != nil {
		return download.Info{}, err
	}
	defer drain(resp.Body)
	info := download.Info{Size: -1, ETag: strongETag(resp.Header.Get("ETag")), LastModified: resp.Header.Get("Last-Modified")}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, _, total, ok := download.ParseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != 0 {
			return download.Info{}, fmt.Errorf("%s: %w: Content-Range %q", s, download.ErrBadRange, resp.Header.Get("Content-Range"))
		}
		info.Size, info.Ranges = total, total >= 0
	case http.StatusOK:
		info.Size = resp.ContentLength
		info.Ranges = strings.EqualFold(resp.Header.Get("Accept-Ranges"), "bytes")
	case http.StatusRequestedRangeNotSatisfiable:
		// Only an empty object has no byte 0.
		info.Size = 0
	default:
		return download.Info{}, StatusError(s.String(), resp)
	}
	return info, nil
}

// Range implements download.Source.
func (s *Source) Range(ctx context.Context, off, end int64, info download.Info) (io.ReadCloser, error) {
	req, err := s.request(ctx, http.MethodGet)
	if err != nil {
		return nil, err
	}
	ranged := off > 0 || (end >= 0 && end != info.Size)
	if ranged {
		if end >= 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, end-1))
		} else {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
		}
		// If-Range makes the server send the whole new object, rather than
		// a range of it, when it changed since: a resumed file is never a
		// splice of two versions.
		switch {
		case info.ETag != "":
			req.Header.Set("If-Range", info.ETag)
		case info.LastModified != "":
			req.Header.Set("If-Range", info.LastModified)
		}
	}
	resp, err := s.do(req)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if info.ETag != "" && strongETag(resp.Header.Get("ETag")) != info.ETag {
			drain(resp.Body)
			return nil, fmt.Errorf("%s: %w (ETag %s, was %s)", s, download.ErrChanged, resp.Header.Get("ETag"), info.ETag)
		}
		if ranged {
			drain(resp.Body)
			return nil, fmt.Errorf("%s: %w: asked for bytes from %d, got status 200", s, download.ErrRangeIgnored, off)
		}
		if info.Size >= 0 && resp.ContentLength >= 0 && resp.ContentLength != info.Size {
			drain(resp.Body)
			return nil, fmt.Errorf("%s: %w: size is now %d, was %d", s, download.ErrChanged, resp.ContentLength, info.Size)
		}
		return resp.Body, nil
	case http.StatusPartialContent:
		start, _, total, ok := download.ParseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != off || (info.Size >= 0 && total != info.Size) {
			drain(resp.Body)
			return nil, fmt.Errorf("%s: %w: asked for bytes from %d of %d, got Content-Range %q", s, download.ErrBadRange, off, info.Size, resp.Header.Get("Content-Range"))
		}
		if info.ETag != "" && resp.Header.Get("ETag") != "" && strongETag(resp.Header.Get("ETag")) != info.ETag {
			drain(resp.Body)
			return nil, fmt.Errorf("%s: %w", s, download.ErrChanged)
		}
		return resp.Body, nil
	case http.StatusRequestedRangeNotSatisfiable:
		drain(resp.Body)
		return nil, fmt.Errorf("%s: %w: range from byte %d not satisfiable", s, download.ErrChanged, off)
	default:
		defer drain(resp.Body)
		return nil, StatusError(s.String(), resp)
	}
}

// StatusError describes a failure status of resp as a *download.StatusError,
// with the delay of its Retry-After header (seconds or an HTTP date).
func StatusError(src string, resp *http.Response) *download.StatusError {
	e := &download.StatusError{Code: resp.StatusCode, Status: resp.Status, Source: src}
	if v := resp.Header.Get("Retry-After"); v != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs >= 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			e.RetryAfter = max(time.Until(t), 0)
		}
	}
	return e
}

// strongETag returns tag when it is a strong entity tag, "" for a weak one
// (W/"..."): a weak tag does not promise byte-identical content.
func strongETag(tag string) string {
	if strings.HasPrefix(tag, "W/") {
		return ""
	}
	return tag
}

// drain reads a little of an unwanted body so the connection can be reused,
// then closes it.
func drain(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 64<<10)
	body.Close()
}
