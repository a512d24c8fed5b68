package content

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/model-provisioner/model-provisioner/atomicfile"
	"github.com/model-provisioner/model-provisioner/verify"
)

// Directory names under the state directory.
const (
	BlobsDir      = "blobs"
	IngestDir     = "ingest"
	ModelsDir     = "models"
	QuarantineDir = "quarantine"
)

// Sentinel errors; check with errors.Is.
var (
	// ErrUnsafePath: a file name from a remote source would land outside
	// its model directory (an absolute path, "..", or a planted symlink).
	ErrUnsafePath = errors.New("unsafe file path")
	// ErrNoSpace: the state directory's filesystem lacks room for a download.
	ErrNoSpace = errors.New("not enough free space")
	// ErrBlobCorrupt: a blob's bytes no longer match its name.
	ErrBlobCorrupt = errors.New("blob does not match its digest")
)

// Store is the content store under one state directory. It is safe for
// concurrent use; ingests are keyed so that two fetches of the same source
// share one, and callers serialize work on one key (the Provisioner's single
// flight does).
type Store struct {
	dir  string
	root *os.Root
}

// Open creates (if needed) and opens the content store in stateDir.
func Open(stateDir string) (*Store, error) {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, fmt.Errorf("open content store: %w", err)
	}
	for _, d := range []string{filepath.Join(BlobsDir, "sha256"), IngestDir, ModelsDir} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o755); err != nil {
			return nil, fmt.Errorf("open content store: %w", err)
		}
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("open content store: %w", err)
	}
	return &Store{dir: abs, root: root}, nil
}

// Close releases the store's directory handle.
func (s *Store) Close() error { return s.root.Close() }

// Dir returns the state directory.
func (s *Store) Dir() string { return s.dir }

func blobRel(d verify.Digest) string {
	return path.Join(BlobsDir, string(d.Algo), d.Value)
}

// BlobPath returns where the blob with digest d is (or would be) stored.
func (s *Store) BlobPath(d verify.Digest) string {
	return filepath.Join(s.dir, filepath.FromSlash(blobRel(d)))
}

// Has reports whether a blob with digest d and the given size (negative:
// any) is stored: a regular file, not a symlink, inside the state
// directory. It trusts the commit-time check and does not hash.
func (s *Store) Has(d verify.Digest, size int64) bool {
	if d.Validate() != nil {
		return false
	}
	fi, err := s.root.Lstat(blobRel(d))
	return err == nil && fi.Mode().IsRegular() && (size < 0 || fi.Size() == size)
}

// commitFile moves the verified file at src (relative to the state
// directory) into blobs/ under digest d. If the blob already exists
// (another model committed the same bytes), src is removed and the existing
// blob kept; anything else found at the blob's name (a planted symlink) is
// replaced. Blobs are made read-only so an engine or an operator cannot
// change what a digest names by accident.
func (s *Store) commitFile(src string, d verify.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	if _, err := s.realDir(path.Dir(blobRel(d)), true); err != nil {
		return "", fmt.Errorf("commit %s: %w", d, err)
	}
	dst := blobRel(d)
	if err := s.root.Chmod(src, 0o444); err != nil {
		return "", fmt.Errorf("commit %s: %w", d, err)
	}
	if fi, err := s.root.Lstat(dst); err == nil {
		if fi.Mode().IsRegular() {
			_ = s.root.Remove(src)
			return s.BlobPath(d), nil
		}
		if err := s.root.Remove(dst); err != nil {
			return "", fmt.Errorf("commit %s: replace the %s at %s: %w", d, describeMode(fi.Mode()), s.BlobPath(d), err)
		}
	}
	if err := s.root.Rename(src, dst); err != nil {
		return "", s.SpaceError(fmt.Errorf("commit %s: %w", d, err))
	}
	if err := atomicfile.SyncDir(filepath.Dir(s.BlobPath(d))); err != nil {
		return "", fmt.Errorf("commit %s: %w", d, err)
	}
	return s.BlobPath(d), nil
}

// CheckRel validates a file name from a remote source (an hf repo path, an
// s3 key below a prefix, an OCI layer title) as a path inside a model
// directory. It returns the cleaned slash-separated path or an error wrapping
// ErrUnsafePath.
func CheckRel(rel string) (string, error) {
	clean := path.Clean(strings.ReplaceAll(rel, `\`, "/"))
	switch {
	case rel == "" || strings.ContainsRune(rel, 0):
		return "", fmt.Errorf("%w: %q is empty or contains NUL", ErrUnsafePath, rel)
	case strings.HasPrefix(rel, "/") || !filepath.IsLocal(filepath.FromSlash(clean)):
		return "", fmt.Errorf("%w: %q would land outside the model directory", ErrUnsafePath, rel)
	case clean != strings.ReplaceAll(rel, `\`, "/"):
		return "", fmt.Errorf("%w: %q is not a clean relative path", ErrUnsafePath, rel)
	}
	for _, seg := range strings.Split(clean, "/") {
		if seg == ".." || seg == "." {
			return "", fmt.Errorf("%w: %q has a %q element", ErrUnsafePath, rel, seg)
		}
	}
	return clean, nil
}

// CheckName validates a model name for use as a directory under models/.
func CheckName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("%w: model name %q cannot be a directory name", ErrUnsafePath, name)
	}
	return nil
}

// ModelDir returns models/<name> under the state directory.
func (s *Store) ModelDir(name string) string {
	return filepath.Join(s.dir, ModelsDir, name)
}

// Link makes models/<name>/<rel> a hard link to the blob with digest d and
// returns its path. An existing file there is replaced atomically (link to a
// temp name, rename over), so an engine never sees a missing or partial file.
// Nothing is followed through symlinks: every existing element of the path
// under models/ must be a real directory, so a symlink planted in the state
// directory cannot redirect a write.
func (s *Store) Link(name, rel string, d verify.Digest) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	clean, err := CheckRel(rel)
	if err != nil {
		return "", err
	}
	target := path.Join(ModelsDir, name, clean)
	if _, err := s.realDir(path.Dir(target), true); err != nil {
		return "", err
	}
	if _, err := s.realDir(path.Dir(blobRel(d)), false); err != nil {
		return "", fmt.Errorf("link %s into %s: %w", d, target, err)
	}
	if fi, err := s.root.Lstat(target); err == nil {
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("%w: %s exists and is not a regular file", ErrUnsafePath, filepath.Join(s.dir, target))
		}
		if blob, err := s.root.Lstat(blobRel(d)); err == nil && os.SameFile(fi, blob) {
			return filepath.Join(s.dir, filepath.FromSlash(target)), nil
		}
	}
	tmp := path.Join(path.Dir(target), "."+path.Base(target)+".link-tmp")
	_ = s.root.Remove(tmp)
	if err := s.root.Link(blobRel(d), tmp); err != nil {
		return "", s.SpaceError(fmt.Errorf("link %s into %s: %w", d, target, err))
	}
	if err := s.root.Rename(tmp, target); err != nil {
		_ = s.root.Remove(tmp)
		return "", s.SpaceError(fmt.Errorf("link %s into %s: %w", d, target, err))
	}
	if err := atomicfile.SyncDir(filepath.Join(s.dir, filepath.FromSlash(path.Dir(target)))); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, filepath.FromSlash(target)), nil
}

// realDir checks that rel (slash-separated, under the state directory) is
// a real directory: every element of it a directory, none a symlink. With
// create, missing elements are made (0755); without, it reports whether rel
// exists. An element that is a symlink or not a directory is an error
// wrapping ErrUnsafePath: the store never follows a symlink planted in the
// state directory, whether it points outside it or to another part of the
// store.
func (s *Store) realDir(rel string, create bool) (bool, error) {
	cur := ""
	for _, seg := range strings.Split(rel, "/") {
		cur = path.Join(cur, seg)
		fi, err := s.root.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist) && !create:
			return false, nil
		case errors.Is(err, fs.ErrNotExist):
			if err := s.root.Mkdir(cur, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return false, s.SpaceError(fmt.Errorf("create %s: %w", filepath.Join(s.dir, cur), err))
			}
		case err != nil:
			return false, fmt.Errorf("create %s: %w", filepath.Join(s.dir, cur), err)
		case fi.Mode()&fs.ModeSymlink != 0:
			return false, fmt.Errorf("%w: %s is a symlink; refusing to follow it (remove it)", ErrUnsafePath, filepath.Join(s.dir, cur))
		case !fi.IsDir():
			return false, fmt.Errorf("%w: %s is not a directory", ErrUnsafePath, filepath.Join(s.dir, cur))
		}
	}
	return true, nil
}

// describeMode names a file type for messages.
func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "regular file"
	}
	return "special file"
}

// Prune removes files under models/<name> that are not in keep (slash-
// separated relative paths), so a model tree holds exactly its files after a
// revision drops one. Blobs are untouched.
//
// The walk never leaves models/<name>: the directory itself must not be
// reached through a symlink, and symlinks inside it are removed (they are
// not files of the model), never followed.
func (s *Store) Prune(name string, keep map[string]bool) error {
	if err := CheckName(name); err != nil {
		return err
	}
	base := path.Join(ModelsDir, name)
	if ok, err := s.realDir(base, false); err != nil || !ok {
		return err
	}
	dir := s.ModelDir(name)
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if !keep[filepath.ToSlash(rel)] {
			return s.root.Remove(path.Join(base, filepath.ToSlash(rel)))
		}
		return nil
	})
}

// RemoveModel deletes the tree models/<name>. Blobs stay until GC.
func (s *Store) RemoveModel(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	return s.root.RemoveAll(path.Join(ModelsDir, name))
}

// GC deletes blobs that no model tree links to (link count 1) and whose
// digest is not in keep. It returns how many blobs it removed. Only regular
// files named like a sha256 digest are blobs; anything else in blobs/sha256
// is left alone, and a blobs/sha256 that is a symlink is refused with
// ErrUnsafePath rather than emptied wherever it points.
func (s *Store) GC(keep map[string]bool) (int, error) {
	rel := path.Join(BlobsDir, string(verify.SHA256))
	if ok, err := s.realDir(rel, false); err != nil || !ok {
		return 0, err
	}
	f, err := s.root.Open(rel)
	if err != nil {
		return 0, err
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		d := verify.Digest{Algo: verify.SHA256, Value: e.Name()}
		if d.Validate() != nil || keep[d.String()] || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			continue
		}
		if err := s.root.Remove(path.Join(rel, e.Name())); err == nil {
			n++
		}
	}
	return n, nil
}

// Quarantine moves the blob with digest d out of blobs/ into quarantine/,
// where nothing links to it and an operator can inspect it. The model
// trees' links to it are left for the caller to rebuild. Neither directory
// is reached through a symlink (ErrUnsafePath).
func (s *Store) Quarantine(d verify.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	if err := s.root.Mkdir(QuarantineDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("quarantine %s: %w", d, err)
	}
	if _, err := s.realDir(QuarantineDir, false); err != nil {
		return "", fmt.Errorf("quarantine %s: %w", d, err)
	}
	if _, err := s.realDir(path.Dir(blobRel(d)), false); err != nil {
		return "", fmt.Errorf("quarantine %s: %w", d, err)
	}
	if err := s.root.Rename(blobRel(d), path.Join(QuarantineDir, d.Value)); err != nil {
		return "", fmt.Errorf("quarantine %s: %w", d, err)
	}
	return filepath.Join(s.dir, QuarantineDir, d.Value), nil
}

// SpaceError explains err for an operator when it is the state directory's
// filesystem running out of room (ENOSPC, or EDQUOT when a quota is
// reached): the result wraps both ErrNoSpace and err, names the state
// directory and says what to do. Any other err, and one already wrapping
// ErrNoSpace, is returned as it is. Callers that write into the store
// through an Ingest's File wrap their write errors with it.
func (s *Store) SpaceError(err error) error {
	if err == nil || errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
		return err
	}
	return &spaceError{dir: s.dir, err: err}
}

type spaceError struct {
	dir string
	err error
}

func (e *spaceError) Error() string {
	return fmt.Sprintf("%v: the filesystem of %s is full; free space there, or move state_dir to a larger filesystem", e.err, e.dir)
}

// Unwrap makes both ErrNoSpace and the system error visible to errors.Is.
func (e *spaceError) Unwrap() []error { return []error{ErrNoSpace, e.err} }

// FreeBytes returns the bytes available to unprivileged writers on the
// state directory's filesystem.
func (s *Store) FreeBytes() (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", s.dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Preflight fails with an error wrapping ErrNoSpace when fewer than
// need+headroom bytes are free, naming the three numbers and what to do.
func (s *Store) Preflight(need, headroom int64) error {
	if need <= 0 {
		return nil
	}
	free, err := s.FreeBytes()
	if err != nil {
		return err
	}
	if uint64(need)+uint64(max(headroom, 0)) > free {
		return fmt.Errorf("%w on the filesystem of %s: the download needs %d bytes (%s) and free_space_headroom keeps %d bytes (%s), but %d bytes (%s) are free; free space there, move state_dir to a larger filesystem, or lower free_space_headroom",
			ErrNoSpace, s.dir, need, humanBytes(uint64(need)), headroom, humanBytes(uint64(max(headroom, 0))), free, humanBytes(free))
	}
	return nil
}

// humanBytes formats n in binary units for messages, e.g. "3.5 GiB".
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
