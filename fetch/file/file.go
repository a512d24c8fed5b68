package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/model-provisioner/model-provisioner/fetch"
)

// Fetcher makes local models present. It holds no state and is safe for
// concurrent use.
type Fetcher struct{}

var _ fetch.Fetcher = (*Fetcher)(nil)

// New returns a file Fetcher.
func New() *Fetcher { return &Fetcher{} }

// Fetch checks that the file or directory named by req.Ref exists and, for a
// file, that it matches req.Expected. Symlinks are followed: LocalPath stays
// the path the operator wrote, so a model swapped by re-pointing a symlink
// is noticed through its changed fingerprint.
//
// Errors: a missing path wraps fetch.ErrNotFound; a digest on a directory
// wraps fetch.ErrDigestOnDirectory; a mismatch is a *verify.MismatchError.
// All three are permanent.
func (f *Fetcher) Fetch(ctx context.Context, req fetch.Request) (fetch.Result, error) {
	if req.Ref.Scheme != fetch.SchemeFile {
		return fetch.Result{}, fmt.Errorf("file fetcher given a %s reference", req.Ref.Scheme)
	}
	p := req.Ref.Path
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("model file %s: %w; create it, or fix model_ref", p, fetch.ErrNotFound))
	case errors.Is(err, fs.ErrPermission):
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("model file %s: %w; make it readable by the agent's user", p, err))
	case err != nil:
		return fetch.Result{}, fmt.Errorf("model file %s: %w", p, err)
	}
	switch {
	case fi.IsDir():
		if !req.Expected.IsZero() {
			return fetch.Result{}, fetch.Permanent(fmt.Errorf("model directory %s: %w: a digest verifies one file; remove expected_digest or point model_ref at the file", p, fetch.ErrDigestOnDirectory))
		}
		size, err := fetch.DirSize(ctx, p)
		if err != nil {
			return fetch.Result{}, fmt.Errorf("model directory %s: %w", p, err)
		}
		return fetch.Result{LocalPath: p, IsDir: true, SizeBytes: size}, nil
	case fi.Mode().IsRegular():
		return fetch.VerifyLocalFile(ctx, p, fi, req.Expected, req.Known, req.Reverify)
	default:
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("model path %s is a %s, not a regular file or directory", p, fi.Mode().Type()))
	}
}
