package modelinfo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Limits on what Inspect reads from a directory.
const (
	// MaxDirEntries is the most directory entries Inspect visits in a
	// model directory, subdirectories included. A larger tree is rejected:
	// it is not a model directory, and walking it (say, a model_ref of
	// "/") would take a long time.
	MaxDirEntries = 100_000
	// MaxDirDepth is the deepest subdirectory Inspect descends into.
	MaxDirDepth = 16
	// MaxJSONBytes is the largest config.json, tokenizer_config.json or
	// weights index Inspect reads. Real ones are kilobytes to a few
	// megabytes.
	MaxJSONBytes = 16 << 20
)

// Files of a Transformers model directory.
const (
	configFile           = "config.json"
	tokenizerConfigFile  = "tokenizer_config.json"
	safetensorsIndexFile = "model.safetensors.index.json"
	pytorchIndexFile     = "pytorch_model.bin.index.json"
)

// splitSafetensors matches sharded safetensors names such as
// model-00001-of-00004.safetensors.
var splitSafetensors = regexp.MustCompile(`^(.+)-(\d{5})-of-(\d{5})\.safetensors$`)

// listing is what one walk of a directory found.
type listing struct {
	total int64            // bytes of every file, symlinks to files followed
	top   map[string]int64 // files directly in the directory, by name
}

// listDir walks dir, reading entries in small batches so that a huge
// directory never sits in memory at once. Symlinks to files are followed
// (a Hugging Face cache snapshot is made of them); symlinks to directories
// are not, so a link cycle cannot trap the walk.
func listDir(ctx context.Context, dir string) (listing, error) {
	w := walker{ctx: ctx, root: dir, l: listing{top: map[string]int64{}}}
	if err := w.walk(dir, 0); err != nil {
		return listing{}, err
	}
	return w.l, nil
}

type walker struct {
	ctx  context.Context
	root string
	l    listing
	seen int // entries visited so far
}

func (w *walker) walk(d string, depth int) error {
	if depth > MaxDirDepth {
		return fmt.Errorf("%s nests directories deeper than %d levels: it is not a model directory", w.root, MaxDirDepth)
	}
	subdirs, err := w.list(d, depth)
	if err != nil {
		return err
	}
	for _, sd := range subdirs {
		if err := w.walk(sd, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// list adds up the files directly in d and returns its subdirectories. The
// directory is closed before the caller descends, so open descriptors do
// not pile up with depth.
func (w *walker) list(d string, depth int) ([]string, error) {
	f, err := os.Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var subdirs []string
	for {
		entries, err := f.ReadDir(256)
		for _, e := range entries {
			if w.seen++; w.seen > MaxDirEntries {
				return nil, fmt.Errorf("%s has more than %d entries: it is not a model directory; point model_ref at the model's own directory", w.root, MaxDirEntries)
			}
			p := filepath.Join(d, e.Name())
			size, isFile, isDir, err := entrySize(p, e)
			switch {
			case err != nil:
				return nil, err
			case isDir:
				subdirs = append(subdirs, p)
			case isFile:
				if w.l.total > math.MaxInt64-size {
					return nil, fmt.Errorf("%s: total size overflows", w.root)
				}
				w.l.total += size
				if depth == 0 {
					w.l.top[e.Name()] = size
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return subdirs, nil
		}
		if err != nil {
			return nil, err
		}
		if err := w.ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// entrySize classifies one directory entry, following a symlink to a file.
// A dangling symlink is neither file nor directory: it is not counted, and a
// weights file it stands for is reported missing by the presence checks.
func entrySize(p string, e fs.DirEntry) (size int64, isFile, isDir bool, err error) {
	switch t := e.Type(); {
	case t.IsDir():
		return 0, false, true, nil
	case t.IsRegular():
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return 0, false, false, nil // removed while we looked
		}
		if err != nil {
			return 0, false, false, err
		}
		return fi.Size(), true, false, nil
	case t&fs.ModeSymlink != 0:
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			return 0, false, false, nil
		}
		return fi.Size(), true, false, nil
	}
	return 0, false, false, nil
}

// inspectDir describes a directory: a Transformers model directory, a
// directory holding one GGUF model, or FormatDirectory.
func inspectDir(ctx context.Context, dir string) (Info, error) {
	info := Info{Format: FormatDirectory, Path: dir, FileTypeID: -1}
	l, err := listDir(ctx, dir)
	if err != nil {
		return info, err
	}
	info.SizeBytes = l.total

	names := make([]string, 0, len(l.top))
	for name := range l.top {
		names = append(names, name)
	}
	slices.Sort(names)
	var safetensors, ggufs []string
	for _, name := range names {
		switch {
		case strings.HasSuffix(name, ".safetensors"):
			safetensors = append(safetensors, name)
		case strings.HasSuffix(name, ".gguf") && !isProjector(name):
			ggufs = append(ggufs, name)
		}
	}
	_, hasConfig := l.top[configFile]
	_, hasIndex := l.top[safetensorsIndexFile]
	if hasConfig || hasIndex || len(safetensors) > 0 {
		return inspectTransformers(ctx, info, l, safetensors)
	}
	if first, split, ok := oneGGUFModel(dir, ggufs); ok {
		if split.count > 0 {
			missing, err := split.missing(ctx)
			if err != nil {
				return info, err
			}
			if len(missing) > 0 {
				info.Format = FormatGGUF
				return info, missingShardsErr(split, missing)
			}
		}
		return inspectFile(ctx, first, l.top[filepath.Base(first)])
	}
	return info, nil
}

// isProjector reports whether name is a multimodal projector file (llama.cpp
// takes it separately, with --mmproj), not a model.
func isProjector(name string) bool {
	return strings.HasPrefix(strings.ToLower(name), "mmproj")
}

// oneGGUFModel reports whether names (GGUF files in dir) make exactly one
// model: a single file, or the shards of one split set. It returns the
// path of the file (first shard) to load and, for a split set, the set.
func oneGGUFModel(dir string, names []string) (string, splitRef, bool) {
	if len(names) == 0 {
		return "", splitRef{}, false
	}
	var set splitRef
	for i, name := range names {
		s, ok := parseSplit(filepath.Join(dir, name))
		if !ok {
			if len(names) == 1 {
				return filepath.Join(dir, name), splitRef{}, true
			}
			return "", splitRef{}, false
		}
		if i > 0 && (s.prefix != set.prefix || s.count != set.count) {
			return "", splitRef{}, false
		}
		set = s
	}
	return set.shard(1), set, true
}

// inspectTransformers describes a Transformers model directory.
func inspectTransformers(ctx context.Context, info Info, l listing, safetensors []string) (Info, error) {
	dir := info.Path
	if len(safetensors) > 0 {
		info.Format = FormatSafetensors
	}
	var cfg hfConfig
	if _, ok := l.top[configFile]; ok {
		if err := readJSON(filepath.Join(dir, configFile), &cfg); err != nil {
			return info, err
		}
		info.Architecture = cfg.architecture()
		info.CtxMax = cfg.ctxMax()
	}

	var (
		shards    []string
		indexSize int64
		err       error
	)
	switch {
	case hasFile(l, safetensorsIndexFile):
		info.Format = FormatSafetensors
		var idx weightsIndex
		shards, idx, err = checkIndex(ctx, dir, safetensorsIndexFile)
		if err != nil {
			return info, err
		}
		info.TensorCount = uint64(len(idx.WeightMap))
		if n, ok := idx.Metadata.TotalParameters.get(); ok {
			info.ParameterCount = uint64(n)
		}
		indexSize, _ = idx.Metadata.TotalSize.get()
	case len(safetensors) > 0:
		shards = safetensors
		if err := checkShardNames(dir, safetensors); err != nil {
			return info, err
		}
	case hasFile(l, pytorchIndexFile):
		if shards, _, err = checkIndex(ctx, dir, pytorchIndexFile); err != nil {
			return info, err
		}
	}

	var shardBytes int64
	for _, name := range shards {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil {
			return info, err
		}
		info.Shards = append(info.Shards, Shard{Path: p, SizeBytes: fi.Size()})
		shardBytes += fi.Size()
	}

	info.Tokenizer = tokenizerDir(dir)
	info.ChatTemplate = dirChatTemplate(dir, l)

	var mem MemoryHint
	switch {
	case indexSize > 0:
		mem.WeightsBytes = indexSize
	case shardBytes > 0:
		mem.WeightsBytes = shardBytes
	}
	if kv, cacheType := cfg.kvBytesPerToken(); kv > 0 {
		mem.KVBytesPerToken, mem.KVCacheType = kv, cacheType
	}
	if mem != (MemoryHint{}) {
		info.Memory = &mem
	}
	return info, nil
}

func hasFile(l listing, name string) bool {
	_, ok := l.top[name]
	return ok
}

// weightsIndex is a model.safetensors.index.json (or pytorch_model.bin
// index): which file holds each tensor.
type weightsIndex struct {
	Metadata struct {
		TotalSize       jsonInt `json:"total_size"`
		TotalParameters jsonInt `json:"total_parameters"`
	} `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// checkIndex reads the index file name in dir and checks that every file
// it names is present. It returns those files, sorted.
func checkIndex(ctx context.Context, dir, name string) ([]string, weightsIndex, error) {
	var idx weightsIndex
	if err := readJSON(filepath.Join(dir, name), &idx); err != nil {
		return nil, idx, err
	}
	if len(idx.WeightMap) == 0 {
		return nil, idx, fmt.Errorf("%s: weight_map is empty or missing", name)
	}
	files := map[string]bool{}
	for _, f := range idx.WeightMap {
		if !filepath.IsLocal(f) {
			return nil, idx, fmt.Errorf("%s names %q, which is outside the model directory", name, truncateName(f))
		}
		files[filepath.Clean(f)] = true
	}
	sorted := make([]string, 0, len(files))
	for f := range files {
		sorted = append(sorted, f)
	}
	slices.Sort(sorted)
	var missing []string
	for _, f := range sorted {
		if err := ctx.Err(); err != nil {
			return nil, idx, err
		}
		fi, err := os.Stat(filepath.Join(dir, f))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, f)
		case err != nil:
			return nil, idx, err
		case !fi.Mode().IsRegular():
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return nil, idx, fmt.Errorf("%w: %s names %d weights files and %s %s missing; fetch them all (for a download, include every *.safetensors file)",
			ErrMissingShard, name, len(sorted), nameList(missing), isAre(len(missing)))
	}
	return sorted, idx, nil
}

// checkShardNames checks, for a directory without an index, that every set
// of safetensors files named NAME-0000i-of-0000N.safetensors is complete.
func checkShardNames(dir string, names []string) error {
	present := map[string]bool{}
	for _, n := range names {
		present[n] = true
	}
	checked := map[string]bool{}
	for _, n := range names {
		m := splitSafetensors.FindStringSubmatch(n)
		if m == nil {
			continue
		}
		count, _ := strconv.Atoi(m[3])
		key := m[1] + "/" + m[3]
		if checked[key] || count < 1 {
			continue
		}
		checked[key] = true
		var missing []string
		for i := 1; i <= count; i++ {
			name := fmt.Sprintf("%s-%05d-of-%05d.safetensors", m[1], i, count)
			if !present[name] {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: %s holds shards of %s (%d of them) and %s %s missing; fetch them all",
				ErrMissingShard, dir, m[1], count, nameList(missing), isAre(len(missing)))
		}
	}
	return nil
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// dirChatTemplate reports whether a model directory carries a chat
// template, in a file of its own or in tokenizer_config.json.
func dirChatTemplate(dir string, l listing) bool {
	if hasFile(l, "chat_template.jinja") || hasFile(l, "chat_template.json") {
		return true
	}
	if !hasFile(l, tokenizerConfigFile) {
		return false
	}
	var tc struct {
		ChatTemplate jsonPresent `json:"chat_template"`
	}
	// A tokenizer_config.json that cannot be read says nothing about the
	// template; whether it is usable is the engine's business.
	if err := readJSON(filepath.Join(dir, tokenizerConfigFile), &tc); err != nil {
		return false
	}
	return bool(tc.ChatTemplate)
}

// readJSON decodes the JSON file at path into v, refusing files larger
// than MaxJSONBytes.
func readJSON(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > MaxJSONBytes {
		return fmt.Errorf("%s is %d bytes, larger than %d: not a model's metadata file", filepath.Base(path), fi.Size(), MaxJSONBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxJSONBytes+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	if len(data) > MaxJSONBytes {
		return fmt.Errorf("%s is larger than %d bytes: not a model's metadata file", filepath.Base(path), MaxJSONBytes)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s is not valid: %w", filepath.Base(path), err)
	}
	return nil
}
