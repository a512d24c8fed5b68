package desired

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// modelNames returns the names of models, in order.
func modelNames(models []Model) []string {
	names := make([]string, 0, len(models))
	for _, m := range models {
		names = append(names, m.Name)
	}
	return names
}

// errorFiles returns the base names of the files errs are about, in order.
func errorFiles(t *testing.T, errs []error) []string {
	t.Helper()
	files := make([]string, 0, len(errs))
	for _, err := range errs {
		files = append(files, filepath.Base(specError(t, err).File))
	}
	return files
}

func TestIgnored(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{name: "llama.yaml", want: false},
		{name: "llama.json", want: false},
		{name: "README.md", want: false},
		{name: "llama", want: false},
		{name: "llama.yaml.d", want: false},
		{name: "", want: true},
		{name: ".llama.yaml", want: true},
		{name: ".llama.yaml.swp", want: true},
		{name: ".#llama.yaml", want: true},
		{name: "#llama.yaml#", want: true},
		{name: "..data", want: true},
		{name: "..2024_01_01_00_00_00.123456789", want: true},
		{name: "llama.yaml~", want: true},
		{name: "llama.yaml.bak", want: true},
		{name: "llama.yaml.BAK", want: true},
		{name: "llama.yaml.tmp", want: true},
		{name: "llama.yaml.swp", want: true},
		{name: "llama.yaml.swo", want: true},
		{name: "llama.yaml.orig", want: true},
		{name: "llama.yaml.rej", want: true},
		{name: "llama.yaml.rpmnew", want: true},
		{name: "llama.yaml.rpmsave", want: true},
		{name: "llama.yaml.rpmorig", want: true},
		{name: "llama.yaml.dpkg-new", want: true},
		{name: "llama.yaml.dpkg-old", want: true},
		{name: "llama.yaml.dpkg-dist", want: true},
		{name: "llama.yaml.ucf-old", want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Ignored(tc.name))
		})
	}
}

func TestIsSpecFile(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{name: "llama.yaml", want: true},
		{name: "llama.yml", want: true},
		{name: "llama.json", want: true},
		{name: "LLAMA.YAML", want: true},
		{name: "llama.q4.yaml", want: true},
		{name: "llama", want: false},
		{name: "llama.txt", want: false},
		{name: "llama.yaml.bak", want: false},
		{name: "llama.yaml~", want: false},
		{name: ".llama.yaml", want: false},
		{name: "..data", want: false},
		{name: "#llama.yaml#", want: false},
		{name: "yaml", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, IsSpecFile(tc.name))
		})
	}
}

func TestReadDir_DirectoryErrors(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "file", "x")
	tests := []struct {
		name string
		dir  string
		kind error
	}{
		{name: "missing directory", dir: filepath.Join(dir, "missing"), kind: fs.ErrNotExist},
		{name: "not a directory", dir: file},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ReadDir(tc.dir)
			require.Error(t, err)
			assert.Nil(t, res)
			if tc.kind != nil {
				assert.ErrorIs(t, err, tc.kind)
			}
		})
	}
}

func TestReadDir_Entries(t *testing.T) {
	const spec = "model_ref: x\n"
	tests := []struct {
		name        string
		files       map[string]string // name -> content
		dirs        []string
		links       map[string]string // name -> target
		wantModels  []string
		wantErrors  []string
		wantIgnored []string
	}{
		{
			name:  "empty directory",
			files: map[string]string{},
		},
		{
			name: "spec extensions are read, others ignored",
			files: map[string]string{
				"a.yaml": spec, "b.yml": spec, "c.json": `{"model_ref": "x"}`, "D.YAML": spec,
				"README.md": "# models", "notes.txt": "x", "noext": spec,
			},
			wantModels:  []string{"D", "a", "b", "c"},
			wantIgnored: []string{"README.md", "noext", "notes.txt"},
		},
		{
			name: "hidden, backup and temporary names are ignored",
			files: map[string]string{
				"llama.yaml": spec, ".hidden.yaml": spec, ".llama.yaml.swp": "x", ".#llama.yaml": "x",
				"#llama.yaml#": spec, "llama.yaml~": spec, "llama.yaml.bak": spec, "llama.yaml.tmp": spec,
				"llama.yaml.swp": spec, "llama.yaml.orig": spec, "llama.yaml.rpmnew": spec,
				"llama.yaml.rpmsave": spec, "llama.yaml.dpkg-new": spec, "llama.yaml.dpkg-old": spec,
				"llama.yaml.dpkg-dist": spec,
			},
			wantModels: []string{"llama"},
			wantIgnored: []string{
				"#llama.yaml#", ".#llama.yaml", ".hidden.yaml", ".llama.yaml.swp",
				"llama.yaml.bak", "llama.yaml.dpkg-dist", "llama.yaml.dpkg-new", "llama.yaml.dpkg-old",
				"llama.yaml.orig", "llama.yaml.rpmnew", "llama.yaml.rpmsave", "llama.yaml.swp",
				"llama.yaml.tmp", "llama.yaml~",
			},
		},
		{
			name:        "subdirectories are not descended into",
			files:       map[string]string{"a.yaml": spec, "sub/b.yaml": spec, "dir.yaml/c.yaml": spec},
			dirs:        []string{"sub", "dir.yaml"},
			wantModels:  []string{"a"},
			wantIgnored: []string{"dir.yaml", "sub"},
		},
		{
			name:        "symlinks are followed",
			files:       map[string]string{"a.yaml": spec, "store/b.model": spec, "store/c.yaml": spec},
			dirs:        []string{"store", "linked.yaml"},
			links:       map[string]string{"b.yaml": "store/b.model", "abs.yaml": "ABS:store/c.yaml", "subdir.yaml": "store"},
			wantModels:  []string{"a", "abs", "b"},
			wantIgnored: []string{"linked.yaml", "store", "subdir.yaml"},
		},
		{
			name:       "dangling symlink is a per-file error",
			files:      map[string]string{"a.yaml": spec},
			links:      map[string]string{"gone.yaml": "..data/gone.yaml"},
			wantModels: []string{"a"},
			wantErrors: []string{"gone.yaml"},
		},
		{
			name:       "symlink loop is a per-file error",
			files:      map[string]string{"a.yaml": spec},
			links:      map[string]string{"loop.yaml": "loop.yaml"},
			wantModels: []string{"a"},
			wantErrors: []string{"loop.yaml"},
		},
		{
			name: "one bad file does not stop the others",
			files: map[string]string{
				"a.yaml": spec, "b.yaml": "model_rf: x\n", "c.yaml": "", "d.json": "{", "e.yaml": spec,
			},
			wantModels: []string{"a", "e"},
			wantErrors: []string{"b.yaml", "c.yaml", "d.json"},
		},
		{
			name: "models sort by name, errors by file",
			files: map[string]string{
				"z.yaml": "name: alpha\nmodel_ref: x\n", "a.yaml": "name: zulu\nmodel_ref: x\n",
				"m.yaml": "name: mike\nmodel_ref: x\n", "y.yaml": "bad: 1\n", "b.yaml": "bad: 1\n",
			},
			wantModels: []string{"alpha", "mike", "zulu"},
			wantErrors: []string{"b.yaml", "y.yaml"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range tc.dirs {
				require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
			}
			for name, content := range tc.files {
				require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
				writeFile(t, dir, name, content)
			}
			for name, target := range tc.links {
				if rest, ok := strings.CutPrefix(target, "ABS:"); ok {
					target = filepath.Join(dir, rest)
				}
				require.NoError(t, os.Symlink(target, filepath.Join(dir, name)))
			}

			res, err := ReadDir(dir)
			require.NoError(t, err)
			assert.Equal(t, tc.wantModels, nilIfEmpty(modelNames(res.Models)))
			assert.Equal(t, tc.wantErrors, nilIfEmpty(errorFiles(t, res.Errors)))
			assert.Equal(t, tc.wantIgnored, res.Ignored)
			for _, m := range res.Models {
				assert.Equal(t, dir, m.BaseDir)
				assert.Equal(t, dir, filepath.Dir(m.File))
			}
		})
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestReadDir_DanglingSymlink(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "llama.yaml")
	require.NoError(t, os.Symlink("..data/llama.yaml", link))

	res, err := ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, res.Errors, 1)
	se := specError(t, res.Errors[0])
	assert.Equal(t, link, se.File)
	assert.ErrorIs(t, se, fs.ErrNotExist)
	assert.Contains(t, se.Error(), `dangling symlink to "..data/llama.yaml"`)
	assert.Empty(t, res.Models)
}

// TestReadDir_ConfigMap reproduces the layout kubelet gives a ConfigMap
// volume: the data lives in a hidden timestamped directory, "..data" links to
// it, and each key is a visible link through "..data". An update writes a new
// timestamped directory and swaps "..data" atomically.
func TestReadDir_ConfigMap(t *testing.T) {
	dir := t.TempDir()
	writeVersion := func(ts string, files map[string]string) {
		require.NoError(t, os.Mkdir(filepath.Join(dir, ts), 0o755))
		for name, content := range files {
			writeFile(t, filepath.Join(dir, ts), name, content)
		}
		// Swap ..data the way kubelet does: a new link renamed over the old.
		require.NoError(t, os.Symlink(ts, filepath.Join(dir, "..data_tmp")))
		require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	}
	const v1, v2 = "..2024_01_01_00_00_00.123456789", "..2024_01_02_00_00_00.987654321"
	writeVersion(v1, map[string]string{
		"llama.yaml":   "model_ref: hf:org/llama/model.gguf@abc\nhandoff: {path: llama.json}\n",
		"mistral.json": `{"name": "mistral-7b", "model_ref": "s3://bucket/mistral.gguf"}`,
	})
	for _, key := range []string{"llama.yaml", "mistral.json"} {
		require.NoError(t, os.Symlink(filepath.Join("..data", key), filepath.Join(dir, key)))
	}

	res, err := ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, res.Errors)
	assert.Equal(t, []string{v1, "..data"}, res.Ignored)
	require.Equal(t, []string{"llama", "mistral-7b"}, modelNames(res.Models))
	llama := res.Models[0]
	assert.Equal(t, filepath.Join(dir, "llama.yaml"), llama.File, "File is the visible link, not its target")
	assert.Equal(t, dir, llama.BaseDir)
	assert.Equal(t, filepath.Join(dir, "llama.json"), llama.HandoffPath)
	assert.Equal(t, "hf:org/llama/model.gguf@abc", llama.Ref)
	assert.Equal(t, "s3://bucket/mistral.gguf", res.Models[1].Ref)

	writeVersion(v2, map[string]string{
		"llama.yaml":   "model_ref: hf:org/llama/model.gguf@def\nhandoff: {path: llama.json}\n",
		"mistral.json": `{"name": "mistral-7b", "model_ref": "s3://bucket/mistral.gguf"}`,
	})
	require.NoError(t, os.RemoveAll(filepath.Join(dir, v1)))

	res2, err := ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, res2.Errors)
	assert.Equal(t, []string{v2, "..data"}, res2.Ignored)
	require.Equal(t, []string{"llama", "mistral-7b"}, modelNames(res2.Models))
	assert.Equal(t, "hf:org/llama/model.gguf@def", res2.Models[0].Ref)
	assert.NotEqual(t, llama.Hash, res2.Models[0].Hash, "changed spec, changed hash")
	assert.Equal(t, res.Models[1].Hash, res2.Models[1].Hash, "unchanged spec, same hash")
}

func TestReadDir_DuplicateNames(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]string
		wantModels []string
		wantErrors map[string]struct {
			line   int
			others []string
		}
	}{
		{
			name: "explicit names",
			files: map[string]string{
				"a.yaml":     "# first\nname: llama\nmodel_ref: x\n",
				"b.yaml":     "model_ref: y\nname: llama\n",
				"other.yaml": "model_ref: z\n",
			},
			wantModels: []string{"other"},
			wantErrors: map[string]struct {
				line   int
				others []string
			}{
				"a.yaml": {line: 2, others: []string{"b.yaml"}},
				"b.yaml": {line: 2, others: []string{"a.yaml"}},
			},
		},
		{
			name: "names taken from file names",
			files: map[string]string{
				"llama.yaml": "model_ref: x\n",
				"llama.json": `{"model_ref": "y"}`,
			},
			wantErrors: map[string]struct {
				line   int
				others []string
			}{
				"llama.json": {line: 0, others: []string{"llama.yaml"}},
				"llama.yaml": {line: 0, others: []string{"llama.json"}},
			},
		},
		{
			name: "three files",
			files: map[string]string{
				"a.yaml": "name: m\nmodel_ref: x\n",
				"b.yaml": "name: m\nmodel_ref: x\n",
				"m.yaml": "model_ref: x\n",
			},
			wantErrors: map[string]struct {
				line   int
				others []string
			}{
				"a.yaml": {line: 1, others: []string{"b.yaml", "m.yaml"}},
				"b.yaml": {line: 1, others: []string{"a.yaml", "m.yaml"}},
				"m.yaml": {line: 0, others: []string{"a.yaml", "b.yaml"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				writeFile(t, dir, name, content)
			}
			res, err := ReadDir(dir)
			require.NoError(t, err)
			assert.Equal(t, tc.wantModels, nilIfEmpty(modelNames(res.Models)))
			require.Len(t, res.Errors, len(tc.wantErrors))
			for _, err := range res.Errors {
				se := specError(t, err)
				base := filepath.Base(se.File)
				want, ok := tc.wantErrors[base]
				require.True(t, ok, "unexpected error for %s: %v", base, err)
				assert.ErrorIs(t, err, ErrDuplicateName)
				assert.Equal(t, filepath.Join(dir, base), se.File)
				assert.Equal(t, want.line, se.Line)
				assert.Equal(t, "name", se.Field)
				for _, other := range want.others {
					assert.Contains(t, se.Error(), other)
				}
				assert.NotContains(t, se.Error(), "in "+base+",", "an error does not name its own file as the other one")
			}
		})
	}
}

func TestReadDir_RelativeDir(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "model_ref: x\n")
	writeFile(t, dir, "b.yaml", "model_ref: [\n")
	t.Chdir(dir)

	res, err := ReadDir(".")
	require.NoError(t, err)
	require.Len(t, res.Models, 1)
	require.Len(t, res.Errors, 1)
	assert.Equal(t, filepath.Join(dir, "a.yaml"), res.Models[0].File)
	assert.Equal(t, filepath.Join(dir, "b.yaml"), specError(t, res.Errors[0]).File)
}

func TestReadDir_ErrorsAreSpecErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "strict_verification: 1\n")
	res, err := ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, res.Errors, 1)
	var se *SpecError
	require.True(t, errors.As(res.Errors[0], &se))
	assert.ErrorIs(t, res.Errors[0], ErrWrongType)
}

func TestReader_ParsesOnlyChangedFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	write("a.yaml", "model_ref: /m/a.gguf\n")
	write("b.yaml", "model_ref: /m/b.gguf\n")
	var r Reader
	first, err := r.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, first.Models, 2)

	write("b.yaml", "model_ref: /m/b2.gguf\n")
	write("c.yaml", "model_ref: [\n")
	second, err := r.ReadDir(dir)
	require.NoError(t, err)
	plain, err := ReadDir(dir)
	require.NoError(t, err)
	assert.Equal(t, plain, second, "a cached read equals a fresh one")
	require.Len(t, second.Models, 2)
	assert.Equal(t, "/m/b2.gguf", second.Models[1].Ref, "a changed file is parsed again")
	assert.Len(t, second.Errors, 1)

	require.NoError(t, os.Remove(filepath.Join(dir, "a.yaml")))
	third, err := r.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, third.Models, 1)
	assert.Len(t, r.cache, 1, "files gone, or that failed, leave the cache")
}
