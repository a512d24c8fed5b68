package modelinfo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/model-provisioner/model-provisioner/gguf"
)

// splitGGUF matches the names llama.cpp gives the shards of a split model:
// NAME-00001-of-00003.gguf, numbered from 1.
var splitGGUF = regexp.MustCompile(`^(.+)-(\d{5})-of-(\d{5})\.gguf$`)

// splitRef locates one shard of a split GGUF set.
type splitRef struct {
	prefix string // directory and NAME, without the -NNNNN-of-NNNNN.gguf suffix
	index  int    // 1-based
	count  int
}

// parseSplit reports whether path is named like a shard of a split GGUF.
func parseSplit(path string) (splitRef, bool) {
	m := splitGGUF.FindStringSubmatch(filepath.Base(path))
	if m == nil {
		return splitRef{}, false
	}
	index, _ := strconv.Atoi(m[2]) // five digits: always parses
	count, _ := strconv.Atoi(m[3])
	if index < 1 || count < 1 || index > count {
		return splitRef{}, false
	}
	return splitRef{prefix: filepath.Join(filepath.Dir(path), m[1]), index: index, count: count}, true
}

// shard returns the path of shard i (1-based) of the set.
func (s splitRef) shard(i int) string {
	return fmt.Sprintf("%s-%05d-of-%05d.gguf", s.prefix, i, s.count)
}

// missing returns the base names of the shards of the set that are not
// regular files, in order. A stat error other than "not there" is returned.
func (s splitRef) missing(ctx context.Context) ([]string, error) {
	var out []string
	for i := 1; i <= s.count; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := s.shard(i)
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			out = append(out, filepath.Base(p))
		case err != nil:
			return nil, err
		case !fi.Mode().IsRegular():
			out = append(out, filepath.Base(p))
		}
	}
	return out, nil
}

func missingShardsErr(s splitRef, missing []string) error {
	verb := "is"
	if len(missing) > 1 {
		verb = "are"
	}
	return fmt.Errorf("%w: split GGUF %s has %d shards and %s %s missing; put every shard in %s (for a download, include all of them)",
		ErrMissingShard, filepath.Base(s.prefix), s.count, nameList(missing), verb, filepath.Dir(s.prefix))
}

// nameList joins names for an error message, listing at most a few so that a
// hostile shard count cannot make a huge message.
func nameList(names []string) string {
	const show = 8
	if len(names) <= show {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:show], ", ") + fmt.Sprintf(" and %d more", len(names)-show)
}

// ggufShard is one GGUF file of a model with its decoded header.
type ggufShard struct {
	path string
	size int64
	h    *gguf.Header
}

// inspectFile describes a regular file: a GGUF file or split set, or
// FormatUnknown.
func inspectFile(ctx context.Context, path string, size int64) (Info, error) {
	info := Info{Format: FormatUnknown, Path: path, SizeBytes: size, FileTypeID: -1}
	split, isSplit := parseSplit(path)
	if isSplit && split.index != 1 {
		info.Format = FormatGGUF
		return info, fmt.Errorf("%w: %s is shard %d of %d; reference the first shard, %s",
			ErrNotFirstShard, filepath.Base(path), split.index, split.count, filepath.Base(split.shard(1)))
	}
	h, err := readHeader(path)
	if errors.Is(err, gguf.ErrNotGGUF) {
		return info, nil
	}
	info.Format = FormatGGUF
	if err != nil {
		return info, err
	}
	if err := checkFirstShard(h, split, isSplit, path); err != nil {
		return info, err
	}

	shards := []ggufShard{{path: path, size: size, h: h}}
	if isSplit && split.count > 1 {
		missing, err := split.missing(ctx)
		if err != nil {
			return info, err
		}
		if len(missing) > 0 {
			return info, missingShardsErr(split, missing)
		}
		for i := 2; i <= split.count; i++ {
			if err := ctx.Err(); err != nil {
				return info, err
			}
			s, err := readShard(split, i)
			if err != nil {
				return info, err
			}
			shards = append(shards, s)
		}
	}
	return describeGGUF(info, shards)
}

// readHeader decodes the header of the GGUF file at path, tensor infos
// included.
func readHeader(path string) (*gguf.Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return gguf.ReadWithOptions(f, gguf.Options{TensorInfos: true})
}

// checkFirstShard checks what the first (or only) file's header says about
// splitting against its name.
func checkFirstShard(h *gguf.Header, split splitRef, isSplit bool, path string) error {
	no, hasNo := h.Uint(gguf.KeySplitNo)
	count, hasCount := h.Uint(gguf.KeySplitCount)
	switch {
	case hasNo && no != 0:
		return fmt.Errorf("%w: the header of %s says it is shard %d of a split GGUF; reference the first shard", ErrNotFirstShard, filepath.Base(path), no+1)
	case isSplit && hasCount && count != uint64(split.count):
		return fmt.Errorf("%w: %s is named as one of %d shards but its header says %d", ErrShardMismatch, filepath.Base(path), split.count, count)
	case !isSplit && hasCount && count > 1:
		return fmt.Errorf("%w: the header of %s says it is the first of %d shards, but its name does not end in -00001-of-%05d.gguf, so the others cannot be found; keep the shards' original names",
			ErrMissingShard, filepath.Base(path), count, count)
	}
	return nil
}

// readShard reads shard i (2 or more) of a split set and checks that it says
// it is that shard.
func readShard(split splitRef, i int) (ggufShard, error) {
	p := split.shard(i)
	fi, err := os.Stat(p)
	if err != nil {
		return ggufShard{}, err
	}
	h, err := readHeader(p)
	if errors.Is(err, gguf.ErrNotGGUF) {
		return ggufShard{}, fmt.Errorf("%w: shard %s is not a GGUF file", ErrShardMismatch, filepath.Base(p))
	}
	if err != nil {
		return ggufShard{}, fmt.Errorf("shard %s: %w", filepath.Base(p), err)
	}
	if no, ok := h.Uint(gguf.KeySplitNo); ok && no != uint64(i-1) {
		return ggufShard{}, fmt.Errorf("%w: %s is named as shard %d but its header says shard %d", ErrShardMismatch, filepath.Base(p), i, no+1)
	}
	if n, ok := h.Uint(gguf.KeySplitCount); ok && n != uint64(split.count) {
		return ggufShard{}, fmt.Errorf("%w: %s is named as one of %d shards but its header says %d", ErrShardMismatch, filepath.Base(p), split.count, n)
	}
	return ggufShard{path: p, size: fi.Size(), h: h}, nil
}

// describeGGUF fills info from the headers of a model's shards; the first
// holds the model's metadata.
func describeGGUF(info Info, shards []ggufShard) (Info, error) {
	h := shards[0].h
	info.GGUFVersion = h.Version
	info.Architecture = h.Architecture()
	if n, ok := h.ContextLength(); ok {
		info.CtxMax = n
	}
	if id, ok := h.Int(gguf.KeyFileType); ok && id >= 0 {
		info.FileTypeID = id
		info.FileType = FileTypeName(id)
	}
	info.TokenizerModel, _ = h.String(gguf.KeyTokenizerModel)
	if v, ok := h.Get(gguf.KeyChatTemplate); ok && v.Type == gguf.TypeString && v.Len > 0 {
		info.ChatTemplate = true
	}

	var (
		size          int64
		tensors       uint64
		params        uint64
		paramsKnown   = true
		weights       uint64
		weightsKnown  = true
		dataSection   uint64
		sumOverflowed bool
	)
	add := func(total *uint64, n uint64) {
		var carry uint64
		*total, carry = bits.Add64(*total, n, 0)
		sumOverflowed = sumOverflowed || carry != 0
	}
	info.Shards = make([]Shard, 0, len(shards))
	for _, s := range shards {
		info.Shards = append(info.Shards, Shard{Path: s.path, SizeBytes: s.size})
		size += s.size
		add(&tensors, s.h.TensorCount)
		if n, ok := s.h.ParameterCount(); ok {
			add(&params, n)
		} else {
			paramsKnown = false
		}
		w, known, err := shardWeights(s)
		if err != nil {
			return info, err
		}
		add(&weights, w)
		weightsKnown = weightsKnown && known
		if off, ok := s.h.DataOffset(); ok && off < s.size && s.h.TensorCount > 0 {
			add(&dataSection, uint64(s.size-off))
		}
	}
	info.SizeBytes = size
	info.TensorCount = tensors
	if want, ok := h.Uint(gguf.KeySplitTensorsCount); ok && len(shards) > 1 && want != tensors {
		return info, fmt.Errorf("%w: the shards hold %d tensors but %s says %d", ErrShardMismatch, tensors, gguf.KeySplitTensorsCount, want)
	}
	if sumOverflowed {
		// Only a hostile header gets here; its sums mean nothing.
		paramsKnown, weightsKnown, dataSection = false, false, 0
	}
	if paramsKnown {
		info.ParameterCount = params
	}
	if !weightsKnown {
		weights = dataSection
	}

	var mem MemoryHint
	if weights > 0 && weights <= math.MaxInt64 {
		mem.WeightsBytes = int64(weights)
	}
	if kv := ggufKVBytesPerToken(h); kv > 0 {
		mem.KVBytesPerToken = kv
		mem.KVCacheType = "f16"
	}
	if mem != (MemoryHint{}) {
		info.Memory = &mem
	}
	info.Tokenizer = tokenizerDir(filepath.Dir(info.Path))
	return info, nil
}

// shardWeights returns the bytes of tensor data one shard holds, computed
// from each tensor's type and shape. It reports false when a tensor's type
// is unknown (the caller then falls back to the size of the data section),
// and fails with ErrTruncated when a tensor's data would end past the end
// of the file.
func shardWeights(s ggufShard) (uint64, bool, error) {
	off, ok := s.h.DataOffset()
	if !ok {
		return 0, false, nil
	}
	var total uint64
	known := true
	for _, t := range s.h.Tensors {
		n, ok := tensorBytes(t)
		if !ok {
			known = false
			continue
		}
		end, c1 := bits.Add64(uint64(off), t.Offset, 0)
		end, c2 := bits.Add64(end, n, 0)
		if c1 != 0 || c2 != 0 || end > uint64(s.size) {
			return 0, false, fmt.Errorf("%w: %s is %d bytes but tensor %q needs its data to reach byte %s; fetch the file again",
				ErrTruncated, filepath.Base(s.path), s.size, truncateName(t.Name), endString(end, c1|c2))
		}
		var carry uint64
		total, carry = bits.Add64(total, n, 0)
		if carry != 0 {
			return 0, false, nil
		}
	}
	return total, known, nil
}

func endString(end, carry uint64) string {
	if carry != 0 {
		return "beyond 2^64"
	}
	return strconv.FormatUint(end, 10)
}

// truncateName shortens a name from a header for an error message.
func truncateName(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// maxLayers bounds the layer count used for the KV estimate; a header that
// claims more gets no estimate.
const maxLayers = 1 << 14

// ggufKVBytesPerToken computes the f16 KV-cache bytes per token of context
// from <arch>.block_count, .embedding_length, .attention.head_count,
// .attention.head_count_kv and, when present, .attention.key_length and
// .attention.value_length. Head counts may be one value for every layer or
// an array with one per layer. It returns 0 when the metadata does not
// describe attention (recurrent models, for example).
func ggufKVBytesPerToken(h *gguf.Header) int64 {
	const bytesPerElem = 2 // f16
	arch := h.Architecture()
	if arch == "" {
		return 0
	}
	layers, ok := h.Uint(arch + ".block_count")
	if !ok || layers == 0 || layers > maxLayers {
		return 0
	}
	heads, ok := perLayer(h, arch+".attention.head_count", int(layers))
	if !ok {
		return 0
	}
	kvHeads := heads
	if _, present := h.Get(arch + ".attention.head_count_kv"); present {
		if kvHeads, ok = perLayer(h, arch+".attention.head_count_kv", int(layers)); !ok {
			return 0
		}
	}
	embd, hasEmbd := h.Uint(arch + ".embedding_length")
	keyLen, hasKey := h.Uint(arch + ".attention.key_length")
	valLen, hasVal := h.Uint(arch + ".attention.value_length")

	var total uint64
	for l := range int(layers) {
		if kvHeads[l] == 0 {
			continue // a layer without attention caches nothing
		}
		k, v := keyLen, valLen
		if !hasKey || !hasVal {
			if !hasEmbd || heads[l] == 0 {
				return 0
			}
			headDim := embd / heads[l]
			if !hasKey {
				k = headDim
			}
			if !hasVal {
				v = headDim
			}
		}
		if k+v < k {
			return 0
		}
		n, ok := mulAll(kvHeads[l], k+v, bytesPerElem)
		if !ok {
			return 0
		}
		var carry uint64
		if total, carry = bits.Add64(total, n, 0); carry != 0 {
			return 0
		}
	}
	if total > math.MaxInt64 {
		return 0
	}
	return int64(total)
}

// perLayer returns the integer under key for each of n layers: one value
// repeated, or an array of exactly n values.
func perLayer(h *gguf.Header, key string, n int) ([]uint64, bool) {
	v, ok := h.Get(key)
	if !ok {
		return nil, false
	}
	out := make([]uint64, n)
	if x, ok := v.AsUint(); ok {
		for i := range out {
			out[i] = x
		}
		return out, true
	}
	if v.Type != gguf.TypeArray || !v.Retained() || len(v.Elems) != n {
		return nil, false
	}
	for i, e := range v.Elems {
		if out[i], ok = e.AsUint(); !ok {
			return nil, false
		}
	}
	return out, true
}

// mulAll multiplies its arguments, reporting false on overflow.
func mulAll(xs ...uint64) (uint64, bool) {
	p := uint64(1)
	for _, x := range xs {
		hi, lo := bits.Mul64(p, x)
		if hi != 0 {
			return 0, false
		}
		p = lo
	}
	return p, true
}

// tokenizerFiles are the files that make a directory a Hugging Face
// tokenizer.
var tokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "tokenizer.model"}

// tokenizerDir returns dir when it holds tokenizer files, and "" otherwise.
func tokenizerDir(dir string) string {
	for _, name := range tokenizerFiles {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode().IsRegular() {
			return dir
		}
	}
	return ""
}

// SplitShards returns the paths of every shard of the split GGUF set whose
// first shard is path (NAME-00001-of-0000N.gguf), and true; for a file not
// named as a shard it returns nil and false. A later shard (00002-of-...)
// returns an error wrapping ErrNotFirstShard: a split model is referenced by
// its first shard, as llama.cpp loads it. Nothing is read or stat'ed.
func SplitShards(path string) ([]string, bool, error) {
	s, ok := parseSplit(path)
	if !ok {
		return nil, false, nil
	}
	if s.index != 1 {
		return nil, true, fmt.Errorf("%s: %w: reference %s", path, ErrNotFirstShard, filepath.Base(s.shard(1)))
	}
	out := make([]string, s.count)
	for i := range out {
		out[i] = s.shard(i + 1)
	}
	return out, true, nil
}
