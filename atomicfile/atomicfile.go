package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// tempInfix marks temp files made by Write: ".<base>.tmp-<random>". The
// leading dot hides them from directory readers that skip hidden names
// (the models.d reader does, and so do most engines' globbing).
const tempInfix = ".tmp-"

// Write atomically replaces path with data and the given permissions.
//
// The order matters and follows what survives power loss on ext4 and xfs:
// write to a temp file in the same directory (rename is only atomic within
// one filesystem), fsync it so its blocks are on disk before the name points
// at them, rename it over the target, then fsync the directory so the rename
// itself is durable. On any failure the temp file is removed and the target
// is left as it was.
func Write(path string, data []byte, perm fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+tempInfix+"*")
	if err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	// CreateTemp makes 0600 files; set the requested mode explicitly so the
	// result does not depend on the umask of whoever runs the agent.
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("atomic write %s: fsync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	if err = SyncDir(dir); err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	return nil
}

// WriteIfChanged writes data to path with Write unless path already holds
// exactly data, in which case it does nothing and returns false. Skipping
// identical writes keeps mtimes still, so engines and file watchers that
// react to a changed handoff file are not woken for nothing.
func WriteIfChanged(path string, data []byte, perm fs.FileMode) (bool, error) {
	cur, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(cur, data):
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := Write(path, data, perm); err != nil {
		return false, err
	}
	return true, nil
}

// SyncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// IsTemp reports whether name (a base name) is a temp file left by Write.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempInfix)
}

// RemoveStale deletes temp files that Write left in dir for target's base
// name when a process was killed between creating and renaming them. It is
// safe only when no other writer of target is running; callers hold the lock
// that serializes writers of target.
func RemoveStale(target string) error {
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	matches, err := filepath.Glob(filepath.Join(dir, "."+globEscape(base)+tempInfix+"*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemoveStaleIn deletes every temp file that Write left in dir, for any
// target, with one read of the directory. Like RemoveStale, it is safe only
// while no writer of any file in dir is running.
func RemoveStaleIn(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !IsTemp(e.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}

// Lock takes an exclusive advisory lock on the file at path, creating it,
// and returns the function that releases it. It blocks until the lock is
// free. flock locks belong to the open file description, so the lock works
// between goroutines of one process as well as between processes, and the
// kernel releases it when its holder dies: a killed writer never leaves a
// lock behind.
func Lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
