package desired

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// specExts are the extensions of files ReadDir reads, compared without
// regard to case.
var specExts = []string{".yaml", ".yml", ".json"}

// backupExts are extensions that editors, package managers and
// configuration-management tools give to copies they leave behind. A copy of
// a spec must not declare the model a second time.
var backupExts = []string{".bak", ".tmp", ".swp", ".swo", ".orig", ".rej", ".rpmnew", ".rpmsave", ".rpmorig"}

// backupExtPrefixes cover families such as .dpkg-new, .dpkg-old, .dpkg-dist
// and .ucf-old.
var backupExtPrefixes = []string{".dpkg-", ".ucf-"}

// Result is what ReadDir found in a models directory.
type Result struct {
	// Models are the valid models, sorted by Name. A model whose name is
	// declared by more than one file is not among them.
	Models []Model
	// Errors has one *SpecError per file that could not be used, sorted by
	// file: files that failed to read or parse, and every file of a
	// duplicated name (ErrDuplicateName).
	Errors []error
	// Ignored lists, sorted, the names of directory entries that were not
	// read: hidden, backup and temporary names (see Ignored), names without a
	// spec extension (see IsSpecFile), and directories.
	Ignored []string
}

// Ignored reports whether the directory entry name is skipped whatever its
// extension: hidden names (starting with '.', which covers vim swap files,
// emacs ".#" lock files and the "..data" and "..TIMESTAMP" entries of a
// Kubernetes ConfigMap mount), emacs "#name#" autosave files, names ending in
// '~', and backup or temporary extensions (.bak, .tmp, .swp, .swo, .orig,
// .rej, .rpmnew, .rpmsave, .rpmorig, .dpkg-*, .ucf-*). It looks only at the
// name, so a watcher can apply the same rules to events.
func Ignored(name string) bool {
	if name == "" || strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
		return true
	}
	if len(name) >= 2 && strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#") {
		return true
	}
	ext := strings.ToLower(filepath.Ext(name))
	if slices.Contains(backupExts, ext) {
		return true
	}
	for _, p := range backupExtPrefixes {
		if strings.HasPrefix(ext, p) {
			return true
		}
	}
	return false
}

// IsSpecFile reports whether ReadDir reads an entry called name, provided it
// is a file or a symlink to one: the name ends in .yaml, .yml or .json (in any
// case) and is not Ignored. It looks only at the name.
//
// A Kubernetes ConfigMap update swaps the hidden "..data" symlink and leaves
// the visible names untouched, so a watcher must not rely on IsSpecFile alone
// to notice changes.
func IsSpecFile(name string) bool {
	if Ignored(name) {
		return false
	}
	return slices.Contains(specExts, strings.ToLower(filepath.Ext(name)))
}

// ReadDir reads every spec file in dir; see IsSpecFile for which entries
// count. Symlinks are followed, which is how a ConfigMap mount presents its
// keys; subdirectories are not descended into. Entries are read one at a time
// and a problem with one never stops the others: it becomes an entry of
// Result.Errors.
//
// The error return is non-nil only when dir itself cannot be read; it wraps
// the fs error, so errors.Is(err, fs.ErrNotExist) reports a missing
// directory. Paths in the result are absolute even when dir is relative, so a
// SpecError's File equals the Model.File that the same file last produced.
// ReadDir writes nothing and is safe for concurrent use.
func ReadDir(dir string) (*Result, error) {
	return readDir(dir, nil)
}

// Reader reads a models directory again and again, as the agent does on
// every pass, and parses only the files whose bytes changed since its last
// read: reading a spec file costs microseconds, parsing it as YAML many
// times more. The zero Reader is ready to use; it is safe for concurrent
// use.
type Reader struct {
	mu    sync.Mutex
	cache map[string]cachedSpec // by absolute path
}

type cachedSpec struct {
	raw []byte
	pm  parsed
}

// ReadDir is the package-level ReadDir, with the parse of unchanged files
// taken from the previous read.
func (r *Reader) ReadDir(dir string) (*Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := map[string]cachedSpec{}
	res, err := readDir(dir, func(path string, data []byte) (parsed, error) {
		if c, ok := r.cache[path]; ok && bytes.Equal(c.raw, data) {
			next[path] = c
			return c.pm, nil
		}
		pm, err := parse(path, data)
		if err == nil {
			next[path] = cachedSpec{raw: data, pm: pm}
		}
		return pm, err
	})
	if err == nil {
		r.cache = next
	}
	return res, err
}

func readDir(dir string, parseFn func(path string, data []byte) (parsed, error)) (*Result, error) {
	if parseFn == nil {
		parseFn = parse
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("read models directory %s: %w", dir, err)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, fmt.Errorf("read models directory: %w", err)
	}

	res := &Result{}
	var found []parsed
	for _, e := range entries {
		name := e.Name()
		if !IsSpecFile(name) {
			res.Ignored = append(res.Ignored, name)
			continue
		}
		path := filepath.Join(abs, name)
		// Stat, not Lstat: a symlink to a directory is skipped like a
		// directory, and a dangling one is left for readSpec to report.
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			res.Ignored = append(res.Ignored, name)
			continue
		}
		data, err := readSpec(path)
		if err != nil {
			res.Errors = append(res.Errors, err)
			continue
		}
		pm, err := parseFn(path, data)
		if err != nil {
			res.Errors = append(res.Errors, err)
			continue
		}
		found = append(found, pm)
	}

	res.Models, res.Errors = dropDuplicates(found, res.Errors)
	slices.SortFunc(res.Models, func(a, b Model) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortStableFunc(res.Errors, compareErrors)
	slices.Sort(res.Ignored)
	return res, nil
}

// dropDuplicates returns the models whose name no other file declares, and
// errs extended with one ErrDuplicateName error per file of every name that
// several files declare. Neither file wins: which one would depends on
// directory order, and silently replacing one model with another is worse
// than provisioning neither until the operator decides.
func dropDuplicates(found []parsed, errs []error) ([]Model, []error) {
	byName := make(map[string][]parsed, len(found))
	for _, pm := range found {
		byName[pm.Name] = append(byName[pm.Name], pm)
	}
	models := make([]Model, 0, len(found))
	for _, pm := range found {
		same := byName[pm.Name]
		if len(same) == 1 {
			models = append(models, pm.Model)
			continue
		}
		var others []string
		for _, o := range same {
			if o.File != pm.File {
				others = append(others, filepath.Base(o.File))
			}
		}
		errs = append(errs, &SpecError{
			File:  pm.File,
			Line:  pm.nameLine,
			Field: fieldName,
			Err: fmt.Errorf("%w %q: also declared in %s; a name may be declared in one file only, so none of them is used: rename or remove all but one",
				ErrDuplicateName, pm.Name, strings.Join(others, ", ")),
		})
	}
	return models, errs
}

// compareErrors orders errors by file, then line.
func compareErrors(a, b error) int {
	var sa, sb *SpecError
	errors.As(a, &sa)
	errors.As(b, &sb)
	if sa == nil || sb == nil {
		return 0
	}
	return cmp.Or(cmp.Compare(sa.File, sb.File), cmp.Compare(sa.Line, sb.Line))
}
