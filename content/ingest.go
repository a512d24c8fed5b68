package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/model-provisioner/model-provisioner/atomicfile"
	"github.com/model-provisioner/model-provisioner/verify"
)

// ingestStateVersion is the format of state.json.
const ingestStateVersion = 1

// Part is one ranged piece of a download: bytes [Start, End) of the object,
// of which the first Done are on disk and durable. End is -1 while the size
// is unknown.
type Part struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
	Done  int64 `json:"done"`
}

// IngestState is what a partial download needs to resume after the process
// dies: the object's identity (size and validators, so a changed object is
// never resumed into), each part's durable progress, and the sha256 state
// over the durable prefix so the bytes already on disk need not be re-read.
type IngestState struct {
	Version      int    `json:"version"`
	Source       string `json:"source"`
	Size         int64  `json:"size"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	Parts        []Part `json:"parts"`
	HashOffset   int64  `json:"hash_offset"`
	HashState    []byte `json:"hash_state,omitempty"`
}

// Ingest is one partial download: ingest/<key>/data and its state.json. It is
// not safe for concurrent use except for writing disjoint ranges of File.
type Ingest struct {
	store *Store
	rel   string // ingest/<key>, relative to the state directory
	data  string
	state string
	f     *os.File
	lock  *os.File
	// State is the resume state; Save persists it.
	State IngestState
}

// IngestKey derives the ingest directory name for a source: the same source
// always resumes into the same ingest, and the name reveals nothing of it.
func IngestKey(source string) string {
	sum := sha256.Sum256([]byte(source))
	return hex.EncodeToString(sum[:16])
}

// OpenIngest opens (creating if needed) the ingest for key, taking its
// exclusive lock, and loads its resume state. It waits while another
// goroutine or process holds the ingest, until ctx is done. A state file that
// is missing, unreadable or of another version yields an empty state: the
// download starts over, which is always safe.
//
// Nothing is followed through symlinks: ingest/ and ingest/<key> must be real
// directories, and the lock and data files in it regular files, so that a
// symlink planted in the state directory cannot send a download, or its
// removal, elsewhere; the error then wraps ErrUnsafePath.
func (s *Store) OpenIngest(ctx context.Context, key string) (*Ingest, error) {
	if key == "" || key == "." || key == ".." || strings.ContainsAny(key, "/\\\x00") {
		return nil, fmt.Errorf("open ingest: %w: key %q is not one path element", ErrUnsafePath, key)
	}
	rel := path.Join(IngestDir, key)
	lock, err := s.lockDir(ctx, rel)
	if err != nil {
		return nil, s.SpaceError(fmt.Errorf("open ingest: %w", err))
	}
	dir := filepath.Join(s.dir, filepath.FromSlash(rel))
	in := &Ingest{store: s, rel: rel, data: filepath.Join(dir, "data"), state: filepath.Join(dir, "state.json"), lock: lock}
	f, err := s.openRegular(path.Join(rel, "data"), os.O_RDWR|os.O_CREATE)
	if err != nil {
		lock.Close()
		return nil, s.SpaceError(fmt.Errorf("open ingest: %w", err))
	}
	in.f = f
	_ = atomicfile.RemoveStale(in.state)
	if raw, err := s.root.ReadFile(path.Join(rel, "state.json")); err == nil {
		var st IngestState
		if json.Unmarshal(raw, &st) == nil && st.Version == ingestStateVersion {
			in.State = st
		}
	}
	return in, nil
}

// File returns the data file. Parts write into it with WriteAt.
func (in *Ingest) File() *os.File { return in.f }

// DataPath returns the data file's path.
func (in *Ingest) DataPath() string { return in.data }

// Reset discards what is on disk and starts a new download of an object of
// the given size (-1 unknown) split into parts.
func (in *Ingest) Reset(st IngestState) error {
	if err := in.f.Truncate(0); err != nil {
		return fmt.Errorf("reset ingest: %w", err)
	}
	st.Version = ingestStateVersion
	in.State = st
	return in.Save()
}

// Save makes the data written so far durable and then records the state.
// The order is what makes resume safe: state.json never claims bytes that a
// crash could have lost, because they were fsynced before it was written.
func (in *Ingest) Save() error {
	if err := in.f.Sync(); err != nil {
		return in.store.SpaceError(fmt.Errorf("ingest fsync: %w", err))
	}
	raw, err := json.Marshal(in.State)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(in.state, raw, 0o644); err != nil {
		return in.store.SpaceError(fmt.Errorf("ingest state: %w", err))
	}
	return nil
}

// Done returns the durable bytes of all parts.
func (in *Ingest) Done() int64 {
	var n int64
	for _, p := range in.State.Parts {
		n += p.Done
	}
	return n
}

// Close closes the data file and releases the lock; the ingest stays on
// disk for a later resume.
func (in *Ingest) Close() error {
	err := in.f.Close()
	in.lock.Close()
	return err
}

// Remove deletes the ingest and releases it.
func (in *Ingest) Remove() error {
	in.f.Close()
	err := in.store.root.RemoveAll(in.rel)
	in.lock.Close()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Commit moves the ingest's fully written, verified data into blobs/ under
// digest d, after checking its size, and deletes the ingest. The caller
// computed d over exactly these bytes while they were written.
func (s *Store) Commit(in *Ingest, d verify.Digest, size int64) (string, error) {
	fi, err := in.f.Stat()
	if err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	if size >= 0 && fi.Size() != size {
		return "", fmt.Errorf("commit %s: ingest holds %d bytes, want %d", d, fi.Size(), size)
	}
	if err := in.f.Sync(); err != nil {
		return "", s.SpaceError(fmt.Errorf("commit %s: fsync: %w", d, err))
	}
	in.f.Close()
	defer in.lock.Close()
	p, err := s.commitFile(path.Join(in.rel, "data"), d)
	if err != nil {
		return "", err
	}
	_ = s.root.RemoveAll(in.rel)
	return p, nil
}

// lockDir creates rel (slash-separated, under the state directory) and takes
// an exclusive flock on rel/lock, polling so that ctx can end the wait. The
// lock is re-taken when the file it locked was deleted meanwhile (the
// previous holder committed and removed the ingest), so two holders never
// work on one ingest.
func (s *Store) lockDir(ctx context.Context, rel string) (*os.File, error) {
	for {
		if _, err := s.realDir(rel, true); err != nil {
			return nil, err
		}
		p := path.Join(rel, "lock")
		f, err := s.openRegular(p, os.O_RDWR|os.O_CREATE)
		if err != nil {
			return nil, err
		}
		for {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			if err == nil || !errors.Is(err, syscall.EWOULDBLOCK) {
				break
			}
			select {
			case <-ctx.Done():
				f.Close()
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		held, err1 := f.Stat()
		now, err2 := s.root.Lstat(p)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
	}
}

// openRegular opens rel (under the state directory) with flag, creating it
// 0644 when flag asks to, and makes sure what it opened is the regular file
// at that name, not the target of a symlink planted there.
func (s *Store) openRegular(rel string, flag int) (*os.File, error) {
	if fi, err := s.root.Lstat(rel); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is a %s, not a regular file; remove it", ErrUnsafePath, filepath.Join(s.dir, filepath.FromSlash(rel)), describeMode(fi.Mode()))
	}
	f, err := s.root.OpenFile(rel, flag, 0o644)
	if err != nil {
		return nil, err
	}
	opened, err1 := f.Stat()
	named, err2 := s.root.Lstat(rel)
	if err := errors.Join(err1, err2); err != nil {
		f.Close()
		return nil, err
	}
	if !os.SameFile(opened, named) || !opened.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s changed while it was opened (a symlink or another file was put there)", ErrUnsafePath, filepath.Join(s.dir, filepath.FromSlash(rel)))
	}
	return f, nil
}
