package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/model-provisioner/model-provisioner/atomicfile"
	"github.com/model-provisioner/model-provisioner/verify"
)

// IndexVersion is the index.json format this build reads and writes.
const IndexVersion = 1

// File names under the state directory.
const (
	IndexFile = "index.json"
	LockFile  = "index.lock"
)

// Sentinel errors, wrapped by Store methods; check with errors.Is.
var (
	// ErrNotFound: no entry has the given id.
	ErrNotFound = errors.New("not in catalog")
	// ErrCorruptIndex: index.json exists but does not parse.
	ErrCorruptIndex = errors.New("catalog index is corrupt")
	// ErrUnsupportedVersion: index.json was written in a format version this
	// build does not know.
	ErrUnsupportedVersion = errors.New("catalog index version not supported")
)

// Index is the content of index.json.
type Index struct {
	Version int              `json:"version"`
	Entries map[string]Entry `json:"entries"`
}

// Store is the catalog under one state directory. It is safe for concurrent
// use by goroutines and by processes sharing the directory.
type Store struct {
	dir       string
	indexPath string
	lockPath  string

	// mu serializes this process's writers before they take the file lock,
	// and guards cache. It is never held across network I/O.
	mu    sync.Mutex
	cache cachedIndex
}

// cachedIndex is the last index parsed, the bytes it was parsed from and
// the file's fingerprint (device, inode, size, mtime) when they were read.
// A quick succession of renames on a coarse-clock filesystem can repeat a
// fingerprint (a freed inode reused, the same size, the same clock tick),
// so the fingerprint alone is trusted only for a file that was already
// older than racyWindow when it was read; a newer file is recognised by
// comparing its bytes, which is cheap next to decoding them.
type cachedIndex struct {
	raw    []byte
	idx    *Index
	fp     verify.Fingerprint
	readAt time.Time
}

// racyWindow is how much older than the moment it was read an index file
// must be for its fingerprint alone to prove it unchanged: ten times the
// coarsest kernel clock tick (10 ms at HZ=100) that file times advance by.
const racyWindow = 100 * time.Millisecond

// Open opens (creating if needed) the catalog in stateDir. It fails if an
// existing index cannot be read, so that a broken catalog is noticed at start
// rather than on the first write.
func Open(stateDir string) (*Store, error) {
	if stateDir == "" {
		return nil, errors.New("open catalog: state directory is empty")
	}
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("open catalog: create state directory: %w", err)
	}
	s := &Store{dir: abs, indexPath: filepath.Join(abs, IndexFile), lockPath: filepath.Join(abs, LockFile)}
	if _, err := s.read(); err != nil {
		return nil, err
	}
	return s, nil
}

// Salvage moves an index.json that does not parse aside, to
// index.json.corrupt-<UTC time>, so that the catalog starts empty and every
// model is verified and registered again by the next ensure of it. It
// returns the path the file was moved to, or "" when the index is fine or
// absent. An index written by a newer format version is not corrupt and is
// never moved: that stays an error for the operator.
func Salvage(stateDir string) (string, error) {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return "", fmt.Errorf("salvage catalog: %w", err)
	}
	s := &Store{dir: abs, indexPath: filepath.Join(abs, IndexFile), lockPath: filepath.Join(abs, LockFile)}
	return s.Salvage()
}

// Salvage is the package-level Salvage for this store's directory.
func (s *Store) Salvage() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := s.lock()
	if err != nil {
		return "", err
	}
	defer unlock()
	data, err := os.ReadFile(s.indexPath)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("salvage catalog: %w", err)
	}
	if _, err := decodeIndex(s.indexPath, data); !errors.Is(err, ErrCorruptIndex) {
		return "", nil
	}
	aside := s.indexPath + ".corrupt-" + time.Now().UTC().Format("20060102T150405.000Z")
	if err := os.Rename(s.indexPath, aside); err != nil {
		return "", fmt.Errorf("salvage catalog: move %s aside: %w", s.indexPath, err)
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return aside, fmt.Errorf("salvage catalog: %w", err)
	}
	s.cache = cachedIndex{}
	return aside, nil
}

// Dir returns the state directory.
func (s *Store) Dir() string { return s.dir }

// IndexPath returns the path of index.json.
func (s *Store) IndexPath() string { return s.indexPath }

// Get returns the entry with the given id, or an error wrapping ErrNotFound.
func (s *Store) Get(id string) (Entry, error) {
	idx, err := s.read()
	if err != nil {
		return Entry{}, err
	}
	e, ok := idx.Entries[id]
	if !ok {
		return Entry{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return e, nil
}

// Exists reports whether an entry with the given id exists. It never writes.
func (s *Store) Exists(id string) (bool, error) {
	_, err := s.Get(id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Locate returns the local path of a usable (Active, not failed) model and
// true, or "" and false when the model is absent, retired or failed. It never
// writes and never touches the model's bytes.
func (s *Store) Locate(id string) (string, bool, error) {
	e, err := s.Get(id)
	if errors.Is(err, ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if !e.Usable() {
		return "", false, nil
	}
	return e.LocalPath, true, nil
}

// List returns all entries sorted by id.
func (s *Store) List() ([]Entry, error) {
	idx, err := s.read()
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(idx.Entries))
	for _, e := range idx.Entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Put inserts or replaces e. e.ID must be set.
func (s *Store) Put(e Entry) error {
	if e.ID == "" {
		return errors.New("catalog put: entry has no id")
	}
	return s.Update(func(idx *Index) (bool, error) {
		if old, ok := idx.Entries[e.ID]; ok && old.Equal(e) {
			return false, nil
		}
		idx.Entries[e.ID] = e
		return true, nil
	})
}

// SetState sets the lifecycle of the entry with the given id. It returns an
// error wrapping ErrNotFound when there is none.
func (s *Store) SetState(id string, lc Lifecycle, nowMs int64) error {
	return s.Update(func(idx *Index) (bool, error) {
		e, ok := idx.Entries[id]
		if !ok {
			return false, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		if e.Lifecycle == lc {
			return false, nil
		}
		e.Lifecycle = lc
		e.UpdatedMs = nowMs
		if lc == Retired {
			e.RetiredMs = nowMs
		} else {
			e.RetiredMs = 0
		}
		idx.Entries[id] = e
		return true, nil
	})
}

// Delete removes the entry with the given id from the index. It never deletes
// model bytes: a file: model is the user's file, and content the agent
// downloaded is removed by retention, which checks that no other model still
// references it. Deleting an absent id returns an error wrapping ErrNotFound.
func (s *Store) Delete(id string) error {
	return s.Update(func(idx *Index) (bool, error) {
		if _, ok := idx.Entries[id]; !ok {
			return false, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		delete(idx.Entries, id)
		return true, nil
	})
}

// Update runs fn on the current index under the exclusive lock and, when fn
// reports a change, writes the result atomically. fn sees the index as it is
// on disk at that moment, including other processes' writes, so a
// read-modify-write through Update never loses a concurrent writer's entry.
// fn must not retain idx.
func (s *Store) Update(fn func(idx *Index) (changed bool, err error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()

	// A writer killed between creating and renaming its temp file leaves the
	// temp behind; holding the lock, no live writer owns one.
	_ = atomicfile.RemoveStale(s.indexPath)

	cur, err := s.readLocked()
	if err != nil {
		return err
	}
	idx := &Index{Version: IndexVersion, Entries: make(map[string]Entry, len(cur.Entries)+1)}
	for k, v := range cur.Entries {
		idx.Entries[k] = v
	}
	changed, err := fn(idx)
	if err != nil || !changed {
		return err
	}
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("catalog: encode index: %w", err)
	}
	data = append(data, '\n')
	if err := atomicfile.Write(s.indexPath, data, 0o644); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	s.cache = cachedIndex{}
	// Holding the lock, the file just renamed into place is ours.
	if fi, err := os.Stat(s.indexPath); err == nil {
		s.cache = cachedIndex{raw: data, idx: idx, fp: verify.FingerprintOf(fi), readAt: time.Now()}
	}
	return nil
}

// lock takes the exclusive advisory lock that serializes index writers
// across processes.
func (s *Store) lock() (func(), error) {
	unlock, err := atomicfile.Lock(s.lockPath)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return unlock, nil
}

func (s *Store) read() (*Index, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readLocked()
}

// readLocked returns the index on disk, from cache when its bytes are the
// ones parsed last. The returned Index is shared: callers must not modify it.
func (s *Store) readLocked() (*Index, error) {
	fi, err := os.Stat(s.indexPath)
	if errors.Is(err, fs.ErrNotExist) {
		return &Index{Version: IndexVersion, Entries: map[string]Entry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read catalog %s: %w", s.indexPath, err)
	}
	fp := verify.FingerprintOf(fi)
	c := &s.cache
	if c.idx != nil && c.fp == fp && c.readAt.Sub(fi.ModTime()) > racyWindow {
		return c.idx, nil
	}
	readAt := time.Now()
	data, fp, err := readWithFingerprint(s.indexPath)
	if errors.Is(err, fs.ErrNotExist) {
		return &Index{Version: IndexVersion, Entries: map[string]Entry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read catalog %s: %w", s.indexPath, err)
	}
	if c.idx != nil && bytes.Equal(c.raw, data) {
		c.fp, c.readAt = fp, readAt
		return c.idx, nil
	}
	idx, err := decodeIndex(s.indexPath, data)
	if err != nil {
		return nil, err
	}
	s.cache = cachedIndex{raw: data, idx: idx, fp: fp, readAt: readAt}
	return idx, nil
}

// readWithFingerprint reads the file at path and returns the fingerprint of
// the very file read (the index is replaced by rename, never written in
// place, so the two always go together).
func readWithFingerprint(path string) ([]byte, verify.Fingerprint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, verify.Fingerprint{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, verify.Fingerprint{}, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, verify.Fingerprint{}, err
	}
	return data, verify.FingerprintOf(fi), nil
}

func decodeIndex(path string, data []byte) (*Index, error) {
	var probe struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: %s does not parse (%v); it was left untouched: restore it from a backup, or move it aside to start an empty catalog (models are then registered again on the next pass)", ErrCorruptIndex, path, err)
	}
	if probe.Version == nil {
		return nil, fmt.Errorf("%w: %s has no \"version\" field; it was left untouched: move it aside to start an empty catalog", ErrCorruptIndex, path)
	}
	if *probe.Version != IndexVersion {
		return nil, fmt.Errorf("%w: %s has version %d, this build reads version %d; run a model-provisioner that supports it, or move the file aside", ErrUnsupportedVersion, path, *probe.Version, IndexVersion)
	}
	idx := &Index{}
	if err := json.Unmarshal(data, idx); err != nil {
		return nil, fmt.Errorf("%w: %s: %v; it was left untouched: move it aside to start an empty catalog", ErrCorruptIndex, path, err)
	}
	if idx.Entries == nil {
		idx.Entries = map[string]Entry{}
	}
	for id, e := range idx.Entries {
		if e.ID != id {
			return nil, fmt.Errorf("%w: %s: entry key %q holds id %q", ErrCorruptIndex, path, id, e.ID)
		}
	}
	return idx, nil
}
