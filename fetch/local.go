package fetch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/model-provisioner/model-provisioner/verify"
)

// ErrChangedWhileHashing: the file's fingerprint changed between the stat
// before hashing and the stat after, so the digest describes no single
// version of it. Retrying later is the fix.
var ErrChangedWhileHashing = errors.New("file changed while it was being hashed")

// VerifyLocalFile makes sure the regular file at path has the expected
// digest (when one is given) and returns its size, digest and fingerprint.
//
// When known describes this same path with a fingerprint equal to the
// file's current one, and reverify is false, the recorded digest is reused
// and not one byte of the file is read: an unchanged multi-GB file costs a
// single stat. Any change of device, inode, size or mtime forces a re-hash.
//
// A mismatch returns a *verify.MismatchError (wrapping ErrDigestMismatch)
// that holds both digests, marked permanent.
func VerifyLocalFile(ctx context.Context, path string, fi fs.FileInfo, expected verify.Digest, known *Known, reverify bool) (Result, error) {
	fp := verify.FingerprintOf(fi)
	res := Result{LocalPath: path, SizeBytes: fi.Size(), Fingerprint: fp}
	if !reverify && known != nil && known.LocalPath == path && !known.Digest.IsZero() && known.Fingerprint == fp {
		res.Digest = known.Digest
	} else {
		d, n, err := verify.HashFile(ctx, path)
		if err != nil {
			return Result{}, fmt.Errorf("hash %s: %w", path, err)
		}
		after, err := os.Stat(path)
		if err != nil {
			return Result{}, fmt.Errorf("stat %s after hashing: %w", path, err)
		}
		if verify.FingerprintOf(after) != fp || n != fi.Size() {
			return Result{}, fmt.Errorf("%w: %s; it will be checked again once it stops changing", ErrChangedWhileHashing, path)
		}
		res.Digest, res.Hashed = d, true
	}
	if !expected.IsZero() && !expected.Equal(res.Digest) {
		return res, Permanent(&verify.MismatchError{Path: path, Expected: expected, Actual: res.Digest})
	}
	return res, nil
}

// DirSize returns the total size of the regular files under dir. Symlinks
// are not followed, so a link out of the tree cannot inflate the total or
// loop.
func DirSize(ctx context.Context, dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	return total, err
}
