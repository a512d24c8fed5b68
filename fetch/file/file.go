package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/modelinfo"
	"github.com/model-provisioner/model-provisioner/verify"
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
		shards, split, err := modelinfo.SplitShards(p)
		if err != nil {
			return fetch.Result{}, fetch.Permanent(err)
		}
		if split {
			return f.fetchSplit(ctx, req, shards)
		}
		return fetch.VerifyLocalFile(ctx, p, fi, req.Expected, req.Known, req.Reverify)
	default:
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("model path %s is a %s, not a regular file or directory", p, fi.Mode().Type()))
	}
}

// fetchSplit verifies every shard of a split GGUF model. The model is its
// first shard (what llama.cpp loads); each shard is hashed, or skipped by its
// own fingerprint, and listed in Files, so that no shard goes unverified and a
// changed shard is noticed. An expected digest applies to the first shard,
// the file the reference names.
func (f *Fetcher) fetchSplit(ctx context.Context, req fetch.Request, shards []string) (fetch.Result, error) {
	known := map[string]fetch.File{}
	if req.Known != nil {
		for _, kf := range req.Known.Files {
			known[kf.Path] = kf
		}
	}
	// Shards are hashed in parallel, one per core: hashing is CPU-bound
	// once the page cache or the disk's queue is full.
	results := make([]fetch.Result, len(shards))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, p := range shards {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return fetch.Result{}, fetch.Permanent(fmt.Errorf("split model %s: %w: %s %w; every shard must be present: copy it, or fix model_ref", shards[0], modelinfo.ErrMissingShard, p, fetch.ErrNotFound))
		}
		if err != nil {
			return fetch.Result{}, fmt.Errorf("split model %s: %w", shards[0], err)
		}
		if !fi.Mode().IsRegular() {
			return fetch.Result{}, fetch.Permanent(fmt.Errorf("split model %s: shard %s is not a regular file", shards[0], p))
		}
		var k *fetch.Known
		if kf, ok := known[p]; ok {
			k = &fetch.Known{LocalPath: p, Digest: kf.Digest, Fingerprint: kf.Fingerprint}
		}
		var expected verify.Digest
		if i == 0 {
			expected = req.Expected
		}
		g.Go(func() error {
			r, err := fetch.VerifyLocalFile(gctx, p, fi, expected, k, req.Reverify)
			results[i] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fetch.Result{}, err
	}
	res := results[0]
	res.SizeBytes = 0
	for i, r := range results {
		res.SizeBytes += r.SizeBytes
		res.Hashed = res.Hashed || r.Hashed
		res.Files = append(res.Files, fetch.File{Path: shards[i], SizeBytes: r.SizeBytes, Digest: r.Digest, Fingerprint: r.Fingerprint})
	}
	return res, nil
}
