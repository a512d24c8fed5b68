package fetch

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/model-provisioner/model-provisioner/verify"
)

// Sentinel errors returned (wrapped) by fetchers; check with errors.Is.
var (
	// ErrNotFound: the source has no such model (missing file, 404).
	ErrNotFound = errors.New("not found")
	// ErrUnsupportedScheme: no fetcher is registered for the scheme.
	ErrUnsupportedScheme = errors.New("not supported yet")
	// ErrDigestOnDirectory: an expected digest was given for a directory.
	ErrDigestOnDirectory = errors.New("expected_digest cannot apply to a directory")
	// ErrDigestMismatch is verify.ErrDigestMismatch, re-exported so callers of
	// fetch need not import verify to classify a failure.
	ErrDigestMismatch = verify.ErrDigestMismatch
)

// PermanentError marks a failure that retrying will not fix (a missing file,
// 401/403/404, a digest mismatch, a full disk). Fetchers decide this where the
// failure happens; callers back off and retry everything else.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a *PermanentError; nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or anything it wraps, is permanent.
// Digest mismatches are always permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p) || errors.Is(err, ErrDigestMismatch)
}

// Known is what the catalog recorded about a model the last time it was
// verified. A fetcher uses it to skip work: an unchanged file whose
// fingerprint matches is not hashed again.
type Known struct {
	LocalPath   string
	Digest      verify.Digest
	Fingerprint verify.Fingerprint
	// Files are the verified files of a multi-file model.
	Files []File
}

// Request asks a fetcher to make one model present and verified.
type Request struct {
	// Ref is the parsed reference; the fetcher is chosen by Ref.Scheme.
	Ref Ref
	// Name is the model name, used for the local layout of downloads.
	Name string
	// Expected is the digest the bytes must have; zero when none was given.
	Expected verify.Digest
	// Known is the catalog's record from the last verification, if any.
	Known *Known
	// Reverify forces the bytes to be hashed even when Known says they are
	// unchanged (the scheduled full re-hash).
	Reverify bool
	// Progress, when set, receives bytes done and total (-1 unknown) while
	// a download runs.
	Progress func(done, total int64)
	// Include selects the files of a multi-file model by glob pattern;
	// empty means every file.
	Include []string
	// VersionID pins an object version (s3).
	VersionID string
}

// Result describes the verified bytes on local disk.
type Result struct {
	// LocalPath is the file or directory an engine is given.
	LocalPath string
	// IsDir is true for a directory model.
	IsDir bool
	// SizeBytes is the file size, or the total size of a directory's files.
	SizeBytes int64
	// Digest is the sha256 of a file model (zero for directories). It was
	// either computed now (Hashed) or reused from Known.
	Digest verify.Digest
	// Hashed reports whether the bytes were read and hashed by this call.
	Hashed bool
	// Fingerprint identifies the version of the file that Digest describes.
	Fingerprint verify.Fingerprint
	// Owned is true when the agent created the bytes and may delete them.
	Owned bool
	// Validators identify the version of the source that was fetched.
	Validators Validators
	// Files lists the files of a multi-file model with their digests.
	Files []File
}

// Validators are a source's markers of which version was fetched.
type Validators struct {
	ETag         string
	LastModified string
	Revision     string
	VersionID    string
	OCIDigest    string
}

// File is one file of a multi-file model.
type File struct {
	// Path is slash-separated, relative to the model directory.
	Path        string             `json:"path"`
	SizeBytes   int64              `json:"size_bytes"`
	Digest      verify.Digest      `json:"digest"`
	Fingerprint verify.Fingerprint `json:"fingerprint"`
}

// Fetcher makes the model named by a Request present on local disk and
// verified. Implementations must be safe for concurrent use, must never
// leave unverified bytes at a final path, and return errors wrapping
// ErrNotFound or ErrDigestMismatch (as *verify.MismatchError) where those
// apply, marking failures that retrying cannot fix with Permanent.
type Fetcher interface {
	Fetch(ctx context.Context, req Request) (Result, error)
}

// Registry maps schemes to fetchers. It is filled once at start-up and is
// then read-only, so lookups need no lock.
type Registry struct {
	m map[Scheme]Fetcher
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{m: map[Scheme]Fetcher{}} }

// Register makes f the fetcher for scheme, replacing any previous one.
func (r *Registry) Register(scheme Scheme, f Fetcher) { r.m[scheme] = f }

// Lookup returns the fetcher for scheme or an error wrapping
// ErrUnsupportedScheme that names the scheme.
func (r *Registry) Lookup(scheme Scheme) (Fetcher, error) {
	if f, ok := r.m[scheme]; ok {
		return f, nil
	}
	return nil, Permanent(fmt.Errorf("%w: %s (this build supports: %s)", ErrUnsupportedScheme, scheme, r.schemes()))
}

func (r *Registry) schemes() string {
	var s []string
	for k := range r.m {
		s = append(s, string(k))
	}
	sort.Strings(s)
	if len(s) == 0 {
		return "none"
	}
	out := s[0]
	for _, x := range s[1:] {
		out += ", " + x
	}
	return out
}
