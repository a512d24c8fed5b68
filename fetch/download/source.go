package download

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
)

// Info identifies one version of a remote object.
type Info struct {
	// Size in bytes, or -1 when the source does not say.
	Size int64
	// ETag is a strong entity tag (weak tags are dropped: they cannot guard
	// a byte-range resume), LastModified the HTTP date; either may be empty.
	ETag, LastModified string
	// Ranges is true when the source serves byte ranges.
	Ranges bool
}

// Source is a remote object readable by byte range. Implementations must be
// safe for concurrent Range calls.
type Source interface {
	// Stat probes the object's current size and validators.
	Stat(ctx context.Context) (Info, error)
	// Range returns the bytes [off, end) of the object (end < 0: to its
	// end) as they are in the version info describes. When that version is
	// gone, it returns an error wrapping ErrChanged; when the source answers
	// a range request with the whole object, ErrRangeIgnored.
	Range(ctx context.Context, off, end int64, info Info) (io.ReadCloser, error)
	// String describes the source for messages, with every secret removed.
	String() string
}

// Sentinel errors a Source returns, wrapped.
var (
	// ErrChanged: the object is not the version being resumed.
	ErrChanged = errors.New("object changed on the server")
	// ErrRangeIgnored: the source sent the whole object to a range request.
	ErrRangeIgnored = errors.New("server ignored the range request")
	// ErrBadRange: a partial response covered other bytes than requested.
	ErrBadRange = errors.New("server sent a wrong byte range")
	// ErrStalled: no byte arrived for the stall timeout.
	ErrStalled = errors.New("download stalled")
)

// StatusError is an HTTP-like failure status from a source.
type StatusError struct {
	Code       int
	Status     string
	RetryAfter time.Duration
	Source     string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: server answered %s", e.Source, e.Status)
	switch {
	case e.Code == 401 || e.Code == 403:
		msg += "; check the credentials for this source"
	case e.Code == 404 || e.Code == 410:
		msg += "; check the reference"
	}
	return msg
}

// Unwrap maps 404 and 410 to fetch.ErrNotFound.
func (e *StatusError) Unwrap() error {
	if e.Code == 404 || e.Code == 410 {
		return fetch.ErrNotFound
	}
	return nil
}

// Transient reports whether retrying the same request may succeed.
func (e *StatusError) Transient() bool {
	return e.Code == 408 || e.Code == 425 || e.Code == 429 || e.Code >= 500
}

// Transient reports whether err is worth retrying: timeouts, resets,
// truncated bodies, stalls and 5xx/429 statuses are; 4xx statuses, digest
// mismatches, a full disk, cancellation and anything marked permanent are
// not.
func Transient(err error) bool {
	var se *StatusError
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.Canceled):
		return false
	case fetch.IsPermanent(err):
		return false
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EACCES):
		return false
	case errors.Is(err, content.ErrUnsafePath):
		return false
	case errors.As(err, &se):
		return se.Transient()
	case errors.Is(err, ErrStalled), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, ErrBadRange):
		return true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ETIMEDOUT):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	// Unknown failures of the transport are retried a bounded number of
	// times: failing a multi-GB download on the first odd error costs more
	// than a few retries do.
	return true
}

// retryAfter returns the delay a source asked for, if any.
func retryAfter(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}
