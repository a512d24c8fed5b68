package download

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/verify"
)

// ErrOffline is returned when a model would need the network while the agent
// is offline.
var ErrOffline = errors.New("offline and not present")

// File is one remote file to make present as models/<Name>/<Rel>.
type File struct {
	// Name is the model name; Rel the file's path inside the model.
	Name, Rel string
	// Key names the ingest (see content.IngestKey); stable per source.
	Key string
	// Source is where the bytes come from, when known without asking the
	// network. Otherwise Resolve finds it; neither is used when the file is
	// already present and verified.
	Source Source
	// Resolve, when Source is nil, looks the file up (e.g. asks a model hub
	// where the bytes are and what their digest is).
	Resolve func(ctx context.Context) (Resolved, error)
	// Expected is the digest the bytes must have (zero: none known).
	Expected verify.Digest
	// Known is the catalog's record from the last verification.
	Known *fetch.Known
	// Reverify re-hashes a present file instead of trusting its
	// fingerprint.
	Reverify bool
	// Offline forbids any network access.
	Offline bool
}

// EnsureFile makes f present, verified and linked into its model tree, and
// returns the result a fetcher reports. In order:
//
//   - present: the model file still has the fingerprint recorded when it
//     was last verified, and its blob is in the store: nothing is read
//     (with Reverify, the bytes are hashed; a blob that no longer matches
//     its name is quarantined and fetched again);
//   - deduplicated: a blob with the expected digest is already stored (from
//     another model): it is linked, nothing is downloaded;
//   - downloaded: otherwise, unless Offline, in which case the error wraps
//     ErrOffline.
func EnsureFile(ctx context.Context, store *content.Store, f File, opts Options) (fetch.Result, error) {
	if res, ok, err := present(ctx, store, f); err != nil || ok {
		return res, err
	}
	if !f.Expected.IsZero() && store.Has(f.Expected, -1) {
		return link(store, f, f.Expected, false)
	}
	if f.Offline {
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("%s/%s: %w: no network access in offline mode; fetch it while online or disable offline mode", f.Name, f.Rel, ErrOffline))
	}
	r := Resolved{Source: f.Source, Expected: f.Expected}
	if f.Source == nil {
		err := Retry(ctx, opts, f.Name+"/"+f.Rel, func() error {
			var err error
			r, err = f.Resolve(ctx)
			return err
		})
		if err != nil {
			return fetch.Result{}, permanentUnlessTransient(err)
		}
		switch {
		case r.Expected.IsZero():
			r.Expected = f.Expected
		case !f.Expected.IsZero() && !f.Expected.Equal(r.Expected):
			return fetch.Result{}, fetch.Permanent(&verify.MismatchError{Path: r.Source.String(), Expected: f.Expected, Actual: r.Expected})
		}
		if !r.Expected.IsZero() && store.Has(r.Expected, -1) {
			out, err := link(store, f, r.Expected, false)
			out.Validators = r.Validators
			return out, err
		}
	}
	res, err := Fetch(ctx, store, f.Key, r.Source, r.Expected, opts)
	if err != nil {
		return fetch.Result{}, permanentUnlessTransient(err)
	}
	out, err := link(store, f, res.Digest, true)
	out.Validators = r.Validators
	if out.Validators.ETag == "" {
		out.Validators.ETag, out.Validators.LastModified = res.Info.ETag, res.Info.LastModified
	}
	return out, err
}

// Resolved is what a lookup learned about a file before downloading it.
type Resolved struct {
	// Source serves the bytes.
	Source Source
	// Expected is the digest the source vouches for (e.g. an LFS sha256);
	// zero when it does not say.
	Expected verify.Digest
	// Validators identify the version (revision, ETag).
	Validators fetch.Validators
}

func permanentUnlessTransient(err error) error {
	if !Transient(err) && !errors.Is(err, context.Canceled) {
		return fetch.Permanent(err)
	}
	return err
}

// present checks the fast path: the linked file is the verified blob.
func present(ctx context.Context, store *content.Store, f File) (fetch.Result, bool, error) {
	k := f.Known
	if k == nil || k.Digest.IsZero() || (!f.Expected.IsZero() && !f.Expected.Equal(k.Digest)) {
		return fetch.Result{}, false, nil
	}
	blob := store.BlobPath(k.Digest)
	bi, err := os.Stat(blob)
	if err != nil {
		return fetch.Result{}, false, nil
	}
	fp := verify.FingerprintOf(bi)
	if !f.Reverify && fp == k.Fingerprint {
		res, err := link(store, f, k.Digest, false)
		return res, err == nil, err
	}
	// The blob changed under its name, or a re-hash is due: check it.
	if _, err := fetch.VerifyLocalFile(ctx, blob, bi, k.Digest, nil, true); err != nil {
		if !errors.Is(err, fetch.ErrDigestMismatch) {
			return fetch.Result{}, false, err
		}
		q, qerr := store.Quarantine(k.Digest)
		if qerr != nil && !errors.Is(qerr, fs.ErrNotExist) {
			return fetch.Result{}, false, qerr
		}
		_ = store.RemoveModel(f.Name)
		return fetch.Result{}, false, &QuarantineError{Digest: k.Digest, Path: q, Err: err}
	}
	res, err := link(store, f, k.Digest, true)
	return res, err == nil, err
}

// QuarantineError reports a stored blob whose bytes no longer match its
// digest: it was moved aside and the model must be fetched again.
type QuarantineError struct {
	Digest verify.Digest
	Path   string
	Err    error
}

func (e *QuarantineError) Error() string {
	return fmt.Sprintf("stored blob %s was modified on disk and moved to %s: %v; it will be downloaded again", e.Digest, e.Path, e.Err)
}

// Unwrap returns content.ErrBlobCorrupt.
func (e *QuarantineError) Unwrap() error { return content.ErrBlobCorrupt }

func link(store *content.Store, f File, d verify.Digest, hashed bool) (fetch.Result, error) {
	p, err := store.Link(f.Name, f.Rel, d)
	if err != nil {
		return fetch.Result{}, fetch.Permanent(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return fetch.Result{}, err
	}
	return fetch.Result{LocalPath: p, SizeBytes: fi.Size(), Digest: d, Hashed: hashed, Fingerprint: verify.FingerprintOf(fi), Owned: true}, nil
}
