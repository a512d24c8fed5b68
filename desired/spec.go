package desired

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/model-provisioner/model-provisioner/verify"
)

// MaxSpecSize is the largest spec file, in bytes, that Parse and ParseFile
// accept. A spec holds a handful of short fields; the cap keeps a stray large
// file (a model dropped into the wrong directory, a log) from being read into
// memory, and it bounds the work the YAML parser can be made to do.
const MaxSpecSize = 64 << 10

// MaxNameLen is the longest model name accepted.
const MaxNameLen = 128

// Field names of a spec file.
const (
	fieldName     = "name"
	fieldModelRef = "model_ref"
	fieldDigest   = "expected_digest"
	fieldStrict   = "strict_verification"
	fieldHandoff  = "handoff"
	fieldInclude  = "include"
	fieldVersion  = "version_id"
	fieldEngine   = "engine"
	fieldAlgo     = "algo"
	fieldValue    = "value"
	fieldPath     = "path"
)

var (
	rootFields    = []string{fieldName, fieldModelRef, fieldDigest, fieldStrict, fieldHandoff, fieldInclude, fieldVersion, fieldEngine}
	digestFields  = []string{fieldAlgo, fieldValue}
	handoffFields = []string{fieldPath}
)

// Model is one validated spec file: the desired state of one model.
type Model struct {
	// Name identifies the model and names its handoff file. It is the name
	// field, or the file name without its extension.
	Name string
	// Ref is the model_ref as written, with surrounding white space trimmed.
	// It is not parsed here.
	Ref string
	// BaseDir is the absolute directory of the spec file, against which a
	// relative model_ref resolves. For a symlinked spec it is the directory
	// holding the link, not its target.
	BaseDir string
	// ExpectedDigest is the declared digest, lower-cased, or the zero Digest
	// when the spec declares none.
	ExpectedDigest verify.Digest
	// Strict is strict_verification: a mismatching digest fails the model.
	Strict bool
	// HandoffPath is handoff.path made absolute and cleaned, or "" when the
	// spec does not set it.
	HandoffPath string
	// Include lists glob patterns selecting the files of a multi-file
	// model (an hf: repository, an s3:// prefix); empty means all files.
	Include []string
	// VersionID pins the object version of an s3:// model.
	VersionID string
	// Engine selects the handoff form: "llamacpp", "vllm" or "generic";
	// empty means chosen from the model's format.
	Engine string
	// File is the absolute path of the spec file (the link, for a symlink).
	File string
	// Hash is the hex SHA-256 of the file's raw bytes, so that callers can
	// tell a changed spec from an unchanged one cheaply.
	Hash string
}

// ParseFile reads and parses the spec file at path. Symlinks are followed. A
// file larger than MaxSpecSize is rejected with ErrTooLarge after reading at
// most MaxSpecSize+1 bytes; anything other than a regular file is rejected
// without being opened, so a FIFO cannot block the caller.
//
// Every error is a *SpecError. When the file cannot be read its cause wraps
// the fs error (fs.ErrNotExist, fs.ErrPermission, ...); a dangling symlink is
// reported as such. ParseFile is safe for concurrent use.
func ParseFile(path string) (Model, error) {
	data, err := readSpec(path)
	if err != nil {
		return Model{}, err
	}
	return Parse(path, data)
}

// readSpec returns the bytes of the spec file at path, or a *SpecError.
func readSpec(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, statError(path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, &SpecError{File: path, Err: fmt.Errorf("%w: not a regular file (%s); a spec must be a regular file or a symlink to one", ErrWrongType, st.Mode().Type())}
	}
	if st.Size() > MaxSpecSize {
		return nil, tooLarge(path, st.Size())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &SpecError{File: path, Err: fmt.Errorf("open spec: %w", err)}
	}
	defer f.Close()
	// The size from Stat can be stale by the time the file is read (it may be
	// replaced or appended to), so the read itself is bounded as well.
	data, err := io.ReadAll(io.LimitReader(f, MaxSpecSize+1))
	if err != nil {
		return nil, &SpecError{File: path, Err: fmt.Errorf("read spec: %w", err)}
	}
	return data, nil
}

// statError explains a failed stat of a spec file, singling out dangling
// symlinks, which is what a half-updated ConfigMap mount or a removed target
// looks like.
func statError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		if lst, lerr := os.Lstat(path); lerr == nil && lst.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(path)
			return &SpecError{File: path, Err: fmt.Errorf("dangling symlink to %q: %w; restore the target or remove the link", target, err)}
		}
	}
	return &SpecError{File: path, Err: fmt.Errorf("stat spec: %w", err)}
}

func tooLarge(path string, size int64) error {
	return &SpecError{File: path, Err: fmt.Errorf("%w: %d bytes or more, the limit is %d; a spec holds one model's settings, so this is not a spec file: move it out of the models directory", ErrTooLarge, size, MaxSpecSize)}
}

// Parse parses data as the spec file named file. The name is used in errors,
// for the default model name (the base name without its extension) and to
// derive Model.File and Model.BaseDir; relative names resolve against the
// working directory. Parse does no I/O beyond looking that directory up.
//
// Every error is a *SpecError whose cause matches one of ErrTooLarge,
// ErrSyntax, ErrUnknownField, ErrMissingField, ErrWrongType, ErrInvalidName,
// verify.ErrUnknownAlgo or verify.ErrMalformedDigest. The first problem in
// the file, in document order, is the one reported. Parse is safe for
// concurrent use.
func Parse(file string, data []byte) (Model, error) {
	pm, err := parse(file, data)
	if err != nil {
		return Model{}, err
	}
	return pm.Model, nil
}

// parsed is a Model plus what ReadDir needs to report duplicates.
type parsed struct {
	Model
	// nameLine is the line of the name field, 0 when the name comes from the
	// file name.
	nameLine int
}

// parser carries the file being parsed so that errors can name it.
type parser struct {
	file string
}

func (p *parser) errAt(n *yaml.Node, field string, err error) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &SpecError{File: p.file, Line: line, Field: field, Err: err}
}

func parse(file string, data []byte) (parsed, error) {
	p := &parser{file: file}
	if len(data) > MaxSpecSize {
		return parsed{}, tooLarge(file, int64(len(data)))
	}
	if err := p.checkText(data); err != nil {
		return parsed{}, err
	}
	root, err := p.document(data)
	if err != nil {
		return parsed{}, err
	}

	var out parsed
	if file != "" {
		abs, err := filepath.Abs(file)
		if err != nil {
			return parsed{}, &SpecError{File: file, Err: fmt.Errorf("resolve spec path: %w", err)}
		}
		out.File = abs
		out.BaseDir = filepath.Dir(abs)
	} else {
		wd, err := os.Getwd()
		if err != nil {
			return parsed{}, &SpecError{Err: fmt.Errorf("resolve working directory: %w", err)}
		}
		out.BaseDir = wd
	}
	if err := p.model(root, &out); err != nil {
		return parsed{}, err
	}
	sum := sha256.Sum256(data)
	out.Hash = hex.EncodeToString(sum[:])
	return out, nil
}

// checkText rejects bytes that are not UTF-8 text before the YAML parser sees
// them, so that the error can say exactly what and where.
func (p *parser) checkText(data []byte) error {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return &SpecError{File: p.file, Line: lineAt(data, i), Err: fmt.Errorf("%w: NUL byte at offset %d; a spec is UTF-8 text (a UTF-16 file shows up like this too: save it as UTF-8)", ErrSyntax, i)}
	}
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return &SpecError{File: p.file, Line: lineAt(data, i), Err: fmt.Errorf("%w: invalid UTF-8 at offset %d; save the file as UTF-8", ErrSyntax, i)}
		}
		i += size
	}
	return nil
}

// lineAt returns the 1-based line holding data[off].
func lineAt(data []byte, off int) int {
	return 1 + bytes.Count(data[:off], []byte{'\n'})
}

// document parses data and returns the root node of its single non-empty
// document. Empty documents (a stray "---" separator) are skipped.
func (p *parser) document(data []byte) (*yaml.Node, error) {
	docs, err := decodeAll(data)
	if err != nil {
		line, msg := splitYAMLError(err)
		return nil, &SpecError{File: p.file, Line: line, Err: fmt.Errorf("%w: %s", ErrSyntax, msg)}
	}
	var root *yaml.Node
	for _, doc := range docs {
		if bad := firstAnchor(doc); bad != nil {
			return nil, p.errAt(bad, "", fmt.Errorf("%w: anchors and aliases are not allowed; write each value out in full", ErrSyntax))
		}
		if len(doc.Content) == 0 || isNull(doc.Content[0]) {
			continue
		}
		if root != nil {
			return nil, p.errAt(doc, "", fmt.Errorf("%w: a second document starts here; a spec file holds exactly one model: move the other model to a file of its own", ErrSyntax))
		}
		root = doc.Content[0]
	}
	if root == nil {
		return nil, &SpecError{File: p.file, Err: fmt.Errorf("%w: the file holds no model; write a mapping with at least %s, e.g. \"%s: hf:ORG/REPO/FILE.gguf@REVISION\"", ErrMissingField, fieldModelRef, fieldModelRef)}
	}
	if root.Kind != yaml.MappingNode {
		return nil, p.errAt(root, "", fmt.Errorf("%w: the document is %s; want a mapping of fields (%s)", ErrWrongType, describe(root), strings.Join(rootFields, ", ")))
	}
	return root, nil
}

// decodeAll returns every document in data.
func decodeAll(data []byte) (docs []*yaml.Node, err error) {
	// The parser reports bad input as errors; a panic would be a parser bug.
	// A file an operator drops into the models directory must never take the
	// agent down, so such a panic becomes a syntax error for that file.
	defer func() {
		if r := recover(); r != nil {
			docs, err = nil, fmt.Errorf("YAML parser failed on this input: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		doc := new(yaml.Node)
		err := dec.Decode(doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
}

// yamlLine matches the position prefix of the parser's error messages, the
// only place the parser exposes the position of a syntax error.
var yamlLine = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// splitYAMLError separates the line number from a parser error message.
func splitYAMLError(err error) (int, string) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		if line, convErr := strconv.Atoi(m[1]); convErr == nil {
			return line, m[2]
		}
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

// firstAnchor returns the first node, in document order, that is an alias or
// carries an anchor, or nil. Aliases are never followed, and the walk uses an
// explicit stack, so neither an alias bomb nor deep nesting costs more than
// the size of the parsed tree.
func firstAnchor(doc *yaml.Node) *yaml.Node {
	stack := []*yaml.Node{doc}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n.Kind == yaml.AliasNode || n.Anchor != "" {
			return n
		}
		for i := len(n.Content) - 1; i >= 0; i-- {
			stack = append(stack, n.Content[i])
		}
	}
	return nil
}

// model fills out from the root mapping. The walk descends only into the two
// known nested mappings, so the depth it reaches is fixed however deeply the
// input nests: anything deeper is a wrong type at the level it appears.
func (p *parser) model(root *yaml.Node, out *parsed) error {
	var haveRef, haveName bool
	err := p.fields(root, "", rootFields, func(key string, k, v *yaml.Node) error {
		switch key {
		case fieldName:
			name, ok, err := p.optString(v, fieldName)
			if err != nil || !ok {
				return err
			}
			if err := validName(name); err != nil {
				return p.errAt(v, fieldName, fmt.Errorf("%w %q: %w", ErrInvalidName, truncate(name), err))
			}
			out.Name, out.nameLine, haveName = name, v.Line, true
		case fieldModelRef:
			ref, err := p.reqString(v, fieldModelRef)
			if err != nil {
				return err
			}
			if ref == "" {
				return p.errAt(v, fieldModelRef, fmt.Errorf("%w: model_ref is empty; set it to the model to provision, e.g. hf:ORG/REPO/FILE.gguf@REVISION", ErrMissingField))
			}
			out.Ref, haveRef = ref, true
		case fieldDigest:
			d, err := p.digest(k, v)
			if err != nil {
				return err
			}
			out.ExpectedDigest = d
		case fieldStrict:
			b, err := p.boolean(v, fieldStrict)
			if err != nil {
				return err
			}
			out.Strict = b
		case fieldHandoff:
			path, err := p.handoff(k, v, out.BaseDir)
			if err != nil {
				return err
			}
			out.HandoffPath = path
		case fieldEngine:
			eng, _, err := p.optString(v, fieldEngine)
			if err != nil {
				return err
			}
			switch eng {
			case "", "llamacpp", "vllm", "generic":
			default:
				return p.errAt(v, fieldEngine, fmt.Errorf("%w: %q is not an engine: want llamacpp, vllm or generic (or leave it out to choose from the model's format)", ErrWrongType, truncate(eng)))
			}
			out.Engine = eng
		case fieldVersion:
			vid, _, err := p.optString(v, fieldVersion)
			if err != nil {
				return err
			}
			out.VersionID = vid
		case fieldInclude:
			inc, err := p.include(v)
			if err != nil {
				return err
			}
			out.Include = inc
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !haveRef {
		return &SpecError{File: p.file, Field: fieldModelRef, Err: fmt.Errorf("%w: model_ref is required; add a line such as \"model_ref: hf:ORG/REPO/FILE.gguf@REVISION\"", ErrMissingField)}
	}
	if !haveName {
		base := filepath.Base(p.file)
		name := strings.TrimSuffix(base, filepath.Ext(base))
		if err := validName(name); err != nil {
			return &SpecError{File: p.file, Field: fieldName, Err: fmt.Errorf("%w %q (taken from the file name): %w; set name in the file or rename the file", ErrInvalidName, truncate(name), err)}
		}
		out.Name = name
	}
	return nil
}

// MaxIncludePatterns bounds the include list.
const MaxIncludePatterns = 64

// include reads the include list: a sequence of glob patterns (a single
// string is accepted as a list of one). Patterns use path.Match syntax on
// slash-separated paths; "**/" matches any number of directories.
func (p *parser) include(v *yaml.Node) ([]string, error) {
	if isNull(v) {
		return nil, nil
	}
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
	}
	if len(items) > MaxIncludePatterns {
		return nil, p.errAt(v, fieldInclude, fmt.Errorf("%w: %d patterns, at most %d", ErrWrongType, len(items), MaxIncludePatterns))
	}
	var out []string
	for _, it := range items {
		s, err := p.reqString(it, fieldInclude)
		if err != nil {
			return nil, err
		}
		pat := strings.TrimPrefix(s, "**/")
		if _, err := path.Match(pat, ""); err != nil || s == "" || strings.HasPrefix(s, "/") || strings.Contains(s, "..") {
			return nil, p.errAt(it, fieldInclude, fmt.Errorf("%w: %q is not a valid relative glob pattern (e.g. \"*.safetensors\", \"tokenizer*\", \"**/*.json\")", ErrWrongType, truncate(s)))
		}
		out = append(out, s)
	}
	return out, nil
}

// digest reads the expected_digest mapping. A null value means no digest.
func (p *parser) digest(k, v *yaml.Node) (verify.Digest, error) {
	if isNull(v) {
		return verify.Digest{}, nil
	}
	if v.Kind != yaml.MappingNode {
		hint := ""
		if v.Kind == yaml.ScalarNode && strings.Contains(v.Value, ":") {
			hint = "; write it as two fields, \"algo: sha256\" and \"value: HEX\", indented under expected_digest"
		}
		return verify.Digest{}, p.errAt(v, fieldDigest, fmt.Errorf("%w: got %s, want a mapping with algo and value%s", ErrWrongType, describe(v), hint))
	}
	var algoNode, valueNode *yaml.Node
	err := p.fields(v, fieldDigest, digestFields, func(key string, _, val *yaml.Node) error {
		switch key {
		case fieldAlgo:
			algoNode = val
		case fieldValue:
			valueNode = val
		}
		return nil
	})
	if err != nil {
		return verify.Digest{}, err
	}
	for _, f := range []struct {
		name string
		node *yaml.Node
	}{{fieldAlgo, algoNode}, {fieldValue, valueNode}} {
		if f.node == nil {
			return verify.Digest{}, p.errAt(k, fieldDigest+"."+f.name, fmt.Errorf("%w: expected_digest needs both algo and value; add %s, or remove expected_digest", ErrMissingField, f.name))
		}
	}
	algo, err := p.reqString(algoNode, fieldDigest+"."+fieldAlgo)
	if err != nil {
		return verify.Digest{}, err
	}
	value, err := p.reqString(valueNode, fieldDigest+"."+fieldValue)
	if err != nil {
		return verify.Digest{}, err
	}
	d, err := verify.NewDigest(algo, value)
	if err != nil {
		if errors.Is(err, verify.ErrUnknownAlgo) {
			return verify.Digest{}, p.errAt(algoNode, fieldDigest+"."+fieldAlgo, err)
		}
		return verify.Digest{}, p.errAt(valueNode, fieldDigest+"."+fieldValue, err)
	}
	return d, nil
}

// handoff reads the handoff mapping and returns handoff.path, absolute and
// cleaned, or "" when the mapping is null.
func (p *parser) handoff(k, v *yaml.Node, baseDir string) (string, error) {
	if isNull(v) {
		return "", nil
	}
	if v.Kind != yaml.MappingNode {
		return "", p.errAt(v, fieldHandoff, fmt.Errorf("%w: got %s, want a mapping with path", ErrWrongType, describe(v)))
	}
	var pathNode *yaml.Node
	err := p.fields(v, fieldHandoff, handoffFields, func(_ string, _, val *yaml.Node) error {
		pathNode = val
		return nil
	})
	if err != nil {
		return "", err
	}
	const field = fieldHandoff + "." + fieldPath
	if pathNode == nil {
		return "", p.errAt(k, field, fmt.Errorf("%w: handoff needs path; add it, or remove handoff to use the default handoff file", ErrMissingField))
	}
	path, err := p.reqString(pathNode, field)
	if err != nil {
		return "", err
	}
	if path == "" {
		return "", p.errAt(pathNode, field, fmt.Errorf("%w: handoff.path is empty; give a file path, or remove handoff to use the default handoff file", ErrMissingField))
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(baseDir, path)
	}
	return filepath.Clean(path), nil
}

// fields walks the key/value pairs of mapping m in document order, calling fn
// for each known key. Unknown and duplicate keys are errors. prefix is the
// dotted path of m, "" for the root.
func (p *parser) fields(m *yaml.Node, prefix string, known []string, fn func(key string, k, v *yaml.Node) error) error {
	seen := make(map[string]int, len(known))
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return p.errAt(k, prefix, fmt.Errorf("%w: a key is %s; keys must be plain field names", ErrWrongType, describe(k)))
		}
		key := k.Value
		path := joinField(prefix, displayKey(key))
		switch tag := k.ShortTag(); tag {
		case "!!str":
		case "!!merge":
			return p.errAt(k, path, fmt.Errorf("%w: merge keys are not allowed; write each field out in full", ErrSyntax))
		default:
			return p.errAt(k, path, fmt.Errorf("%w: a key is %s; keys must be plain field names", ErrWrongType, describe(k)))
		}
		if !slices.Contains(known, key) {
			return p.errAt(k, path, unknownField(key, known))
		}
		if first, dup := seen[key]; dup {
			return p.errAt(k, path, fmt.Errorf("%w: duplicate key; %s is already set on line %d: keep one", ErrSyntax, key, first))
		}
		seen[key] = k.Line
		if err := fn(key, k, v); err != nil {
			return err
		}
	}
	return nil
}

// secretWords mark a field name as an attempt to put a credential in a spec.
var secretWords = []string{"token", "password", "passwd", "secret", "key", "credential", "auth"}

// unknownField explains an unknown key. It never mentions the value: an
// unknown field may well hold a credential.
func unknownField(key string, known []string) error {
	lower := strings.ToLower(key)
	for _, w := range secretWords {
		if strings.Contains(lower, w) {
			return fmt.Errorf("%w: credentials are never read from spec files; remove this line and provide the credential through the agent's environment, a credentials file, or systemd credentials (LoadCredential=)", ErrUnknownField)
		}
	}
	if s := suggest(key, known); s != "" {
		return fmt.Errorf("%w; did you mean %s?", ErrUnknownField, s)
	}
	return fmt.Errorf("%w; the fields here are %s", ErrUnknownField, strings.Join(known, ", "))
}

// suggest returns the known field that key most likely misspells, or "".
func suggest(key string, known []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	}
	best, bestDist := "", -1
	for _, k := range known {
		if norm(key) == norm(k) {
			return k
		}
		d := editDistance(strings.ToLower(key), k)
		limit := 2
		if len(k) <= 4 {
			limit = 1
		}
		lower := strings.ToLower(key)
		related := len(lower) >= 4 && (strings.Contains(k, lower) || strings.Contains(lower, k))
		if d > limit && !related {
			continue
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in runes. Keys
// longer than a field name plus a few typos cannot be near-typos, so long
// inputs are cut short to bound the work.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if limit := len(rb) + 3; len(ra) > limit {
		ra = ra[:limit]
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// optString reads an optional string; a null value reports ok == false, the
// same as an absent field.
func (p *parser) optString(v *yaml.Node, field string) (s string, ok bool, err error) {
	if isNull(v) {
		return "", false, nil
	}
	s, err = p.reqString(v, field)
	return s, err == nil, err
}

// reqString reads a required string value, trimmed of surrounding white
// space. Only scalars that YAML resolves to strings are accepted: a bare
// 12, true or null is a wrong type, not a string.
func (p *parser) reqString(v *yaml.Node, field string) (string, error) {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
		hint := ""
		if v.Kind == yaml.ScalarNode {
			switch v.ShortTag() {
			case "!!int", "!!float", "!!bool", "!!timestamp":
				hint = "; put the value in quotes"
			}
		}
		return "", p.errAt(v, field, fmt.Errorf("%w: got %s, want a string%s", ErrWrongType, describe(v), hint))
	}
	s := strings.TrimSpace(v.Value)
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return "", p.errAt(v, field, fmt.Errorf("%w: the value contains a control character (%U) at byte %d; it must be a single line of text", ErrWrongType, []rune(s[i:])[0], i))
	}
	return s, nil
}

// boolean reads a boolean. Only YAML booleans (true or false, in any case
// YAML allows) are accepted: "yes", "on", 1 and a quoted "true" are wrong
// types, because guessing an operator's intent about verification is unsafe.
func (p *parser) boolean(v *yaml.Node, field string) (bool, error) {
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!bool" {
		switch strings.ToLower(v.Value) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, p.errAt(v, field, fmt.Errorf("%w: got %s, want a boolean: only true or false are accepted", ErrWrongType, describe(v)))
}

// validName reports why name cannot be a model name, or nil. Names become
// file names of handoff files, hence the conservative alphabet.
func validName(name string) error {
	const rule = "a name is 1 to 128 characters from A-Z, a-z, 0-9, '.', '_' and '-', not starting with '.' or '-'"
	if name == "" || len(name) > MaxNameLen || name[0] == '.' || name[0] == '-' {
		return errors.New(rule)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return errors.New(rule)
		}
	}
	return nil
}

// isNull reports whether v is a YAML null: "~", "null" or no value at all.
func isNull(v *yaml.Node) bool {
	return v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null"
}

// describe names the type of v, with its value for scalars, for messages
// such as "got number 12, want a string".
func describe(v *yaml.Node) string {
	switch v.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch v.ShortTag() {
	case "!!null":
		return "null (no value)"
	case "!!str":
		return fmt.Sprintf("string %q", truncate(v.Value))
	case "!!bool":
		return "boolean " + truncate(v.Value)
	case "!!int", "!!float":
		return "number " + truncate(v.Value)
	default:
		return fmt.Sprintf("a value tagged %s", truncate(v.Tag))
	}
}

// truncate shortens s for display in a message.
func truncate(s string) string {
	const max = 64
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max]) + "..."
}

// displayKey returns key in a form safe to show in a field path: as is when
// it is a plain identifier, quoted and shortened otherwise.
func displayKey(key string) string {
	plain := key != "" && len(key) <= 64
	for i := 0; plain && i < len(key); i++ {
		c := key[i]
		plain = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.'
	}
	if plain {
		return key
	}
	return strconv.Quote(truncate(key))
}

func joinField(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}
