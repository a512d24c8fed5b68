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
// any) is stored. It trusts the commit-time check and does not hash.
func (s *Store) Has(d verify.Digest, size int64) bool {
	if d.Validate() != nil {
		return false
	}
	fi, err := os.Stat(s.BlobPath(d))
	return err == nil && fi.Mode().IsRegular() && (size < 0 || fi.Size() == size)
}

// commitFile moves the verified file at src into blobs/ under digest d. If
// the blob already exists (another model committed the same bytes), src is
// removed and the existing blob kept. Blobs are made read-only so an engine
// or an operator cannot change what a digest names by accident.
func (s *Store) commitFile(src string, d verify.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	dst := s.BlobPath(d)
	if err := os.Chmod(src, 0o444); err != nil {
		return "", fmt.Errorf("commit %s: %w", d, err)
	}
	if _, err := os.Stat(dst); err == nil {
		os.Remove(src)
		return dst, nil
	}
	if err := os.Rename(src, dst); err != nil {
		return "", fmt.Errorf("commit %s: %w", d, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(dst)); err != nil {
		return "", fmt.Errorf("commit %s: %w", d, err)
	}
	return dst, nil
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
	if err := s.mkdirNoSymlinks(path.Dir(target)); err != nil {
		return "", err
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
		return "", fmt.Errorf("link %s into %s: %w", d, target, err)
	}
	if err := s.root.Rename(tmp, target); err != nil {
		_ = s.root.Remove(tmp)
		return "", fmt.Errorf("link %s into %s: %w", d, target, err)
	}
	if err := atomicfile.SyncDir(filepath.Join(s.dir, filepath.FromSlash(path.Dir(target)))); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, filepath.FromSlash(target)), nil
}

// mkdirNoSymlinks creates rel (slash-separated, under the state directory)
// one element at a time, refusing any element that exists as a symlink or a
// non-directory.
func (s *Store) mkdirNoSymlinks(rel string) error {
	cur := ""
	for _, seg := range strings.Split(rel, "/") {
		cur = path.Join(cur, seg)
		fi, err := s.root.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := s.root.Mkdir(cur, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("create %s: %w", filepath.Join(s.dir, cur), err)
			}
		case err != nil:
			return fmt.Errorf("create %s: %w", filepath.Join(s.dir, cur), err)
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%w: %s is a symlink; refusing to follow it (remove it)", ErrUnsafePath, filepath.Join(s.dir, cur))
		case !fi.IsDir():
			return fmt.Errorf("%w: %s is not a directory", ErrUnsafePath, filepath.Join(s.dir, cur))
		}
	}
	return nil
}

// Prune removes files under models/<name> that are not in keep (slash-
// separated relative paths), so a model tree holds exactly its files after a
// revision drops one. Blobs are untouched.
func (s *Store) Prune(name string, keep map[string]bool) error {
	if err := CheckName(name); err != nil {
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
			return os.Remove(p)
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
// digest is not in keep. It returns how many blobs it removed.
func (s *Store) GC(keep map[string]bool) (int, error) {
	dir := filepath.Join(s.dir, BlobsDir, "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if keep["sha256:"+e.Name()] {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err == nil {
			n++
		}
	}
	return n, nil
}

// Quarantine moves the blob with digest d out of blobs/ into quarantine/,
// where nothing links to it and an operator can inspect it, and removes the
// model trees' links to it are left for the caller to rebuild.
func (s *Store) Quarantine(d verify.Digest) (string, error) {
	if err := os.MkdirAll(filepath.Join(s.dir, QuarantineDir), 0o700); err != nil {
		return "", err
	}
	dst := filepath.Join(s.dir, QuarantineDir, d.Value)
	if err := os.Rename(s.BlobPath(d), dst); err != nil {
		return "", fmt.Errorf("quarantine %s: %w", d, err)
	}
	return dst, nil
}

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
// need+headroom bytes are free, naming both numbers.
func (s *Store) Preflight(need, headroom int64) error {
	if need <= 0 {
		return nil
	}
	free, err := s.FreeBytes()
	if err != nil {
		return err
	}
	if uint64(need+headroom) > free {
		return fmt.Errorf("%w in %s: need %d bytes plus %d headroom, %d free; free space or move state_dir", ErrNoSpace, s.dir, need, headroom, free)
	}
	return nil
}
