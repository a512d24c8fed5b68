package desired

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/verify"
)

const (
	hexLower = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	hexUpper = "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
	hfRef    = "hf:org/repo/model.Q4_K_M.gguf@0123456789abcdef"
)

// writeFile creates dir/name with content and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

// specError asserts that err is a *SpecError and returns it.
func specError(t *testing.T, err error) *SpecError {
	t.Helper()
	require.Error(t, err)
	var se *SpecError
	require.True(t, errors.As(err, &se), "error %v (%T) is not a *SpecError", err, err)
	return se
}

func TestParse_Valid(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		file string
		spec string
		want Model // File, BaseDir and Hash are filled in by the test
	}{
		{
			name: "all fields",
			file: "llama.yaml",
			spec: `# Llama 3 8B, Q4 quantisation
name: llama3-8b-q4
model_ref: ` + hfRef + `
expected_digest:
  algo: sha256
  value: ` + hexLower + `
strict_verification: true
handoff:
  path: /etc/llama/llamacpp.json
`,
			want: Model{
				Name:           "llama3-8b-q4",
				Ref:            hfRef,
				ExpectedDigest: verify.Digest{Algo: verify.SHA256, Value: hexLower},
				Strict:         true,
				HandoffPath:    "/etc/llama/llamacpp.json",
			},
		},
		{
			name: "minimal spec takes the name from the file",
			file: "llama.yaml",
			spec: "model_ref: " + hfRef + "\n",
			want: Model{Name: "llama", Ref: hfRef},
		},
		{
			name: "only the last extension is stripped from the file name",
			file: "llama.q4.yml",
			spec: "model_ref: " + hfRef + "\n",
			want: Model{Name: "llama.q4", Ref: hfRef},
		},
		{
			name: "upper-case hex and algorithm are lower-cased",
			file: "m.yaml",
			spec: "model_ref: x\nexpected_digest:\n  algo: SHA256\n  value: " + hexUpper + "\n",
			want: Model{Name: "m", Ref: "x", ExpectedDigest: verify.Digest{Algo: verify.SHA256, Value: hexLower}},
		},
		{
			name: "relative handoff path resolves against the spec directory",
			file: "m.yaml",
			spec: "model_ref: x\nhandoff:\n  path: handoff/../out/m.json\n",
			want: Model{Name: "m", Ref: "x", HandoffPath: filepath.Join(dir, "out", "m.json")},
		},
		{
			name: "absolute handoff path is cleaned",
			file: "m.yaml",
			spec: "model_ref: x\nhandoff:\n  path: /etc//llama/./x/../llamacpp.json\n",
			want: Model{Name: "m", Ref: "x", HandoffPath: "/etc/llama/llamacpp.json"},
		},
		{
			name: "model_ref is trimmed and otherwise kept as written",
			file: "m.yaml",
			spec: "model_ref: \"  ./Models/X.gguf  \"\n",
			want: Model{Name: "m", Ref: "./Models/X.gguf"},
		},
		{
			name: "null optional fields are absent",
			file: "m.yaml",
			spec: "name: ~\nmodel_ref: x\nexpected_digest: null\nhandoff:\n",
			want: Model{Name: "m", Ref: "x"},
		},
		{
			name: "YAML spellings of false",
			file: "m.yaml",
			spec: "model_ref: x\nstrict_verification: FALSE\n",
			want: Model{Name: "m", Ref: "x"},
		},
		{
			name: "YAML spellings of true",
			file: "m.yaml",
			spec: "model_ref: x\nstrict_verification: True\n",
			want: Model{Name: "m", Ref: "x", Strict: true},
		},
		{
			name: "explicit string tag",
			file: "m.yaml",
			spec: "name: !!str 2024\nmodel_ref: x\n",
			want: Model{Name: "2024", Ref: "x"},
		},
		{
			name: "name of 128 characters",
			file: "m.yaml",
			spec: "name: " + strings.Repeat("a", 128) + "\nmodel_ref: x\n",
			want: Model{Name: strings.Repeat("a", 128), Ref: "x"},
		},
		{
			name: "leading and trailing document markers",
			file: "m.yaml",
			spec: "---\nmodel_ref: x\n...\n---\n",
			want: Model{Name: "m", Ref: "x"},
		},
		{
			name: "byte order mark",
			file: "m.yaml",
			spec: "\ufeffmodel_ref: x\n",
			want: Model{Name: "m", Ref: "x"},
		},
		{
			name: "flow mapping",
			file: "m.yaml",
			spec: "{model_ref: x, expected_digest: {algo: sha256, value: " + hexLower + "}}\n",
			want: Model{Name: "m", Ref: "x", ExpectedDigest: verify.Digest{Algo: verify.SHA256, Value: hexLower}},
		},
		{
			name: "compact JSON",
			file: "m.json",
			spec: `{"model_ref":"x","strict_verification":true,"handoff":{"path":"/h.json"}}`,
			want: Model{Name: "m", Ref: "x", Strict: true, HandoffPath: "/h.json"},
		},
		{
			name: "tab-indented JSON",
			file: "m.json",
			spec: "{\n\t\"name\": \"n\",\n\t\"model_ref\": \"x\"\n}\n",
			want: Model{Name: "n", Ref: "x"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			got, err := Parse(path, []byte(tc.spec))
			require.NoError(t, err)
			sum := sha256.Sum256([]byte(tc.spec))
			want := tc.want
			want.File = path
			want.BaseDir = dir
			want.Hash = hex.EncodeToString(sum[:])
			assert.Equal(t, want, got)
		})
	}
}

func TestParse_Errors(t *testing.T) {
	const md5 = "d41d8cd98f00b204e9800998ecf8427e"
	tests := []struct {
		name      string
		file      string // default "models.d/llama.yaml"
		spec      string
		kind      error
		line      int
		field     string
		contains  []string
		forbidden []string // text the message must not contain
	}{
		{
			name: "unknown field with suggestion",
			spec: "# comment\n\nname: llama\nmodel_rf: x\n",
			kind: ErrUnknownField, line: 4, field: "model_rf",
			contains: []string{"models.d/llama.yaml:4: model_rf: unknown field", `did you mean model_ref?`},
		},
		{
			name: "unknown field with a prefix of a known one",
			spec: "model_ref: x\nstrict: true\n",
			kind: ErrUnknownField, line: 2, field: "strict",
			contains: []string{"did you mean strict_verification?"},
		},
		{
			name: "unknown field in a different case",
			spec: "modelRef: x\n",
			kind: ErrUnknownField, line: 1, field: "modelRef",
			contains: []string{"did you mean model_ref?"},
		},
		{
			name: "unknown field without a near match lists the fields",
			spec: "model_ref: x\nzzz: 1\n",
			kind: ErrUnknownField, line: 2, field: "zzz",
			contains: []string{"name, model_ref, expected_digest, strict_verification, handoff"},
		},
		{
			name: "unknown nested field",
			spec: "model_ref: x\nexpected_digest:\n  algorithm: sha256\n  value: " + hexLower + "\n",
			kind: ErrUnknownField, line: 3, field: "expected_digest.algorithm",
			contains: []string{"did you mean algo?"},
		},
		{
			name: "unknown field is reported before later errors",
			spec: "bogus: 1\nstrict_verification: maybe\n",
			kind: ErrUnknownField, line: 1, field: "bogus",
		},
		{
			name: "token field",
			spec: "model_ref: x\nhf_token: hf_SuperSecretValue123\n",
			kind: ErrUnknownField, line: 2, field: "hf_token",
			contains:  []string{"credentials are never read from spec files", "environment", "systemd credentials"},
			forbidden: []string{"hf_SuperSecretValue123"},
		},
		{
			name: "password field in upper case",
			spec: "model_ref: x\nPASSWORD: \"hunter2-secret-pw\"\n",
			kind: ErrUnknownField, line: 2, field: "PASSWORD",
			contains:  []string{"credentials are never read from spec files"},
			forbidden: []string{"hunter2-secret-pw"},
		},
		{
			name: "api key field",
			spec: "model_ref: x\naws_secret_access_key: AKIAabcdefSECRETVALUE\n",
			kind: ErrUnknownField, line: 2, field: "aws_secret_access_key",
			contains:  []string{"credentials are never read from spec files"},
			forbidden: []string{"AKIAabcdefSECRETVALUE"},
		},
		{
			name: "nested auth field",
			spec: "model_ref: x\nhandoff:\n  path: /x\n  authorization: Bearer abc.def.ghi\n",
			kind: ErrUnknownField, line: 4, field: "handoff.authorization",
			contains:  []string{"credentials are never read from spec files"},
			forbidden: []string{"abc.def.ghi"},
		},
		{
			name: "credential field holding a mapping",
			spec: "model_ref: x\ncredentials:\n  user: u\n  pass: p4ssw0rdvalue\n",
			kind: ErrUnknownField, line: 2, field: "credentials",
			contains:  []string{"credentials are never read from spec files"},
			forbidden: []string{"p4ssw0rdvalue"},
		},
		{
			name: "quoted true is not a boolean",
			spec: "model_ref: x\nstrict_verification: \"true\"\n",
			kind: ErrWrongType, line: 2, field: "strict_verification",
			contains: []string{`got string "true", want a boolean: only true or false are accepted`},
		},
		{
			name: "yes is not a boolean",
			spec: "model_ref: x\nstrict_verification: yes\n",
			kind: ErrWrongType, line: 2, field: "strict_verification",
			contains: []string{`got string "yes"`, "only true or false"},
		},
		{
			name: "tagged yes is not a boolean",
			spec: "model_ref: x\nstrict_verification: !!bool yes\n",
			kind: ErrWrongType, line: 2, field: "strict_verification",
		},
		{
			name: "number is not a boolean",
			spec: "model_ref: x\nstrict_verification: 1\n",
			kind: ErrWrongType, line: 2, field: "strict_verification",
			contains: []string{"got number 1"},
		},
		{
			name: "null is not a boolean",
			spec: "model_ref: x\nstrict_verification:\n",
			kind: ErrWrongType, line: 2, field: "strict_verification",
			contains: []string{"null"},
		},
		{
			name: "number is not a string",
			spec: "model_ref: 12\n",
			kind: ErrWrongType, line: 1, field: "model_ref",
			contains: []string{"got number 12, want a string; put the value in quotes"},
		},
		{
			name: "boolean is not a string",
			spec: "model_ref: x\nname: true\n",
			kind: ErrWrongType, line: 2, field: "name",
		},
		{
			name: "date is not a string",
			spec: "model_ref: x\nname: 2024-01-01\n",
			kind: ErrWrongType, line: 2, field: "name",
			contains: []string{"a value tagged !!timestamp", "put the value in quotes"},
		},
		{
			name: "list is not a string",
			spec: "model_ref:\n  - a\n",
			kind: ErrWrongType, line: 2, field: "model_ref",
			contains: []string{"got a list"},
		},
		{
			name: "custom tag is not a string",
			spec: "model_ref: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n",
			kind: ErrWrongType, line: 1, field: "model_ref",
			contains: []string{"tagged !vault"},
		},
		{
			name: "null model_ref",
			spec: "model_ref:\n",
			kind: ErrWrongType, line: 1, field: "model_ref",
			contains: []string{"null"},
		},
		{
			name: "empty model_ref",
			spec: "model_ref: \"  \"\n",
			kind: ErrMissingField, line: 1, field: "model_ref",
		},
		{
			name: "missing model_ref",
			spec: "name: llama\n",
			kind: ErrMissingField, field: "model_ref",
			contains: []string{"models.d/llama.yaml: model_ref: missing required field: model_ref is required"},
		},
		{
			name: "NUL escape in model_ref",
			spec: "model_ref: \"hf:org/repo\\0/x\"\n",
			kind: ErrWrongType, line: 1, field: "model_ref",
			contains: []string{"control character"},
		},
		{
			name: "newline in model_ref",
			spec: "model_ref: \"a\\nb\"\n",
			kind: ErrWrongType, line: 1, field: "model_ref",
			contains: []string{"single line"},
		},
		{
			name: "digest as a string",
			spec: "model_ref: x\nexpected_digest: sha256:" + hexLower + "\n",
			kind: ErrWrongType, line: 2, field: "expected_digest",
			contains: []string{"want a mapping with algo and value", "algo: sha256"},
		},
		{
			name: "md5 algorithm",
			spec: "model_ref: x\nexpected_digest:\n  algo: md5\n  value: " + md5 + "\n",
			kind: verify.ErrUnknownAlgo, line: 3, field: "expected_digest.algo",
			contains: []string{`models.d/llama.yaml:3: expected_digest.algo: unknown digest algorithm "md5": only "sha256" is supported`},
		},
		{
			name: "63 character digest",
			spec: "model_ref: x\nexpected_digest:\n  algo: sha256\n  value: " + hexLower[:63] + "\n",
			kind: verify.ErrMalformedDigest, line: 4, field: "expected_digest.value",
			contains: []string{"63 characters", "want 64"},
		},
		{
			name: "65 character digest",
			spec: "model_ref: x\nexpected_digest:\n  value: " + hexLower + "a\n  algo: sha256\n",
			kind: verify.ErrMalformedDigest, line: 3, field: "expected_digest.value",
			contains: []string{"65 characters", "want 64"},
		},
		{
			name: "non-hex digest",
			spec: "model_ref: x\nexpected_digest:\n  algo: sha256\n  value: " + strings.Repeat("g", 64) + "\n",
			kind: verify.ErrMalformedDigest, line: 4, field: "expected_digest.value",
			contains: []string{"not hex"},
		},
		{
			name: "digest without value",
			spec: "model_ref: x\nexpected_digest:\n  algo: sha256\n",
			kind: ErrMissingField, line: 2, field: "expected_digest.value",
		},
		{
			name: "digest without algo",
			spec: "model_ref: x\nexpected_digest: {value: " + hexLower + "}\n",
			kind: ErrMissingField, line: 2, field: "expected_digest.algo",
		},
		{
			name: "all-digit digest is a number",
			spec: "model_ref: x\nexpected_digest:\n  algo: sha256\n  value: " + strings.Repeat("1", 64) + "\n",
			kind: ErrWrongType, line: 4, field: "expected_digest.value",
			contains: []string{"put the value in quotes"},
		},
		{
			name: "digest nested too deeply",
			spec: "model_ref: x\nexpected_digest:\n  algo:\n    name:\n      deeper: sha256\n  value: " + hexLower + "\n",
			kind: ErrWrongType, line: 4, field: "expected_digest.algo",
			contains: []string{"got a mapping, want a string"},
		},
		{
			name: "handoff as a string",
			spec: "model_ref: x\nhandoff: /etc/x.json\n",
			kind: ErrWrongType, line: 2, field: "handoff",
		},
		{
			name: "handoff without path",
			spec: "model_ref: x\nhandoff: {}\n",
			kind: ErrMissingField, line: 2, field: "handoff.path",
		},
		{
			name: "empty handoff path",
			spec: "model_ref: x\nhandoff:\n  path: ''\n",
			kind: ErrMissingField, line: 3, field: "handoff.path",
		},
		{
			name: "handoff path is a number",
			spec: "model_ref: x\nhandoff:\n  path: 5\n",
			kind: ErrWrongType, line: 3, field: "handoff.path",
		},
		{
			name: "duplicate key",
			spec: "model_ref: x\nname: a\nmodel_ref: y\n",
			kind: ErrSyntax, line: 3, field: "model_ref",
			contains: []string{"duplicate key", "already set on line 1"},
		},
		{
			name: "duplicate nested key",
			spec: "model_ref: x\nexpected_digest:\n  algo: sha256\n  algo: sha256\n",
			kind: ErrSyntax, line: 4, field: "expected_digest.algo",
		},
		{
			name: "duplicate key in JSON",
			file: "models.d/llama.json",
			spec: "{\"model_ref\": \"x\",\n \"model_ref\": \"y\"}",
			kind: ErrSyntax, line: 2, field: "model_ref",
		},
		{
			name: "anchor and alias",
			spec: "model_ref: &ref x\nname: *ref\n",
			kind: ErrSyntax, line: 1,
			contains: []string{"anchors and aliases are not allowed"},
		},
		{
			name: "anchor in an unknown field",
			spec: "model_ref: x\nextra: &a {b: c}\n",
			kind: ErrSyntax, line: 2,
			contains: []string{"anchors and aliases are not allowed"},
		},
		{
			name: "merge key",
			spec: "<<: {model_ref: x}\n",
			kind: ErrSyntax, line: 1, field: `"<<"`,
			contains: []string{"merge keys are not allowed"},
		},
		{
			name: "non-string key",
			spec: "model_ref: x\n1: y\n",
			kind: ErrWrongType, line: 2, field: "1",
			contains: []string{"keys must be plain field names"},
		},
		{
			name: "complex key",
			spec: "model_ref: x\n? [a, b]\n: y\n",
			kind: ErrWrongType, line: 2,
			contains: []string{"a key is a list"},
		},
		{
			name: "two documents",
			spec: "model_ref: x\n---\nmodel_ref: y\n",
			kind: ErrSyntax, line: 2,
			contains: []string{"second document", "exactly one model"},
		},
		{
			name:     "empty file",
			spec:     "",
			kind:     ErrMissingField,
			contains: []string{"holds no model"},
		},
		{
			name: "only comments",
			spec: "# nothing here\n",
			kind: ErrMissingField,
		},
		{
			name: "only a document marker",
			spec: "---\n",
			kind: ErrMissingField,
		},
		{
			name: "JSON null",
			file: "models.d/llama.json",
			spec: "null",
			kind: ErrMissingField,
		},
		{
			name: "document is a list",
			spec: "- model_ref: x\n",
			kind: ErrWrongType, line: 1,
			contains: []string{"the document is a list; want a mapping"},
		},
		{
			name: "document is a scalar",
			spec: "hello\n",
			kind: ErrWrongType, line: 1,
		},
		{
			name: "syntax error carries the line",
			spec: "model_ref: x\nname: a\n  bad: y\n",
			kind: ErrSyntax, line: 3,
			contains:  []string{"models.d/llama.yaml:3: syntax error: "},
			forbidden: []string{"yaml: line"},
		},
		{
			name: "unterminated JSON",
			file: "models.d/llama.json",
			spec: "{\"model_ref\": \"x\",\n",
			kind: ErrSyntax, line: 1,
		},
		{
			name: "invalid UTF-8",
			spec: "model_ref: x\nname: \xff\xfe\n",
			kind: ErrSyntax, line: 2,
			contains: []string{"invalid UTF-8 at offset 19"},
		},
		{
			name: "NUL byte",
			spec: "model_ref: x\n\nname: a\x00\n",
			kind: ErrSyntax, line: 3,
			contains: []string{"NUL byte"},
		},
		{
			name: "UTF-16 file",
			spec: "\xff\xfem\x00o\x00",
			kind: ErrSyntax, line: 1,
			contains: []string{"UTF-16"},
		},
		{
			name: "invalid name",
			spec: "name: llama 3\nmodel_ref: x\n",
			kind: ErrInvalidName, line: 1, field: "name",
			contains: []string{`invalid model name "llama 3"`, "1 to 128 characters"},
		},
		{
			name: "name starting with a dot",
			spec: "name: .llama\nmodel_ref: x\n",
			kind: ErrInvalidName, line: 1, field: "name",
		},
		{
			name: "name starting with a dash",
			spec: "model_ref: x\nname: -llama\n",
			kind: ErrInvalidName, line: 2, field: "name",
		},
		{
			name: "name with a slash",
			spec: "model_ref: x\nname: ../etc/passwd\n",
			kind: ErrInvalidName, line: 2, field: "name",
		},
		{
			name: "empty name",
			spec: "model_ref: x\nname: ''\n",
			kind: ErrInvalidName, line: 2, field: "name",
		},
		{
			name: "name of 129 characters",
			spec: "model_ref: x\nname: " + strings.Repeat("a", 129) + "\n",
			kind: ErrInvalidName, line: 2, field: "name",
		},
		{
			name: "invalid name from the file name",
			file: "models.d/my model.yaml",
			spec: "model_ref: x\n",
			kind: ErrInvalidName, field: "name",
			contains: []string{`"my model" (taken from the file name)`, "set name in the file or rename the file"},
		},
		{
			name: "deeply nested lists",
			spec: strings.Repeat("[", 10000),
			kind: ErrSyntax, line: 1,
		},
		{
			name: "deeply nested value",
			spec: "model_ref: " + strings.Repeat("{a: ", 10001),
			kind: ErrSyntax,
		},
		{
			name: "nested lists within the parser limit",
			spec: strings.Repeat("[", 5000) + strings.Repeat("]", 5000),
			kind: ErrWrongType, line: 1,
		},
		{
			name: "nested value within the parser limit",
			spec: "model_ref: " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000),
			kind: ErrWrongType, line: 1, field: "model_ref",
		},
		{
			name: "alias bomb",
			spec: aliasBomb(),
			kind: ErrSyntax, line: 1,
			contains: []string{"anchors and aliases are not allowed"},
		},
		{
			name: "data over the size limit",
			spec: "model_ref: x\n" + strings.Repeat("#", MaxSpecSize),
			kind: ErrTooLarge,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file
			if file == "" {
				file = "models.d/llama.yaml"
			}
			start := time.Now()
			_, err := Parse(file, []byte(tc.spec))
			assert.Less(t, time.Since(start), 5*time.Second)
			se := specError(t, err)
			assert.ErrorIs(t, err, tc.kind)
			assert.Equal(t, file, se.File)
			assert.Equal(t, tc.line, se.Line, "line in %q", err)
			assert.Equal(t, tc.field, se.Field, "field in %q", err)
			for _, s := range tc.contains {
				assert.Contains(t, err.Error(), s)
			}
			for _, s := range tc.forbidden {
				assert.NotContains(t, err.Error(), s)
			}
		})
	}
}

// aliasBomb returns the classic exponential alias document: nine levels of
// nine aliases each expand to 9^9 strings if anything follows them.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		b.WriteString(name + ": &" + name + " [")
		for i := 0; i < 9; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = name
	}
	b.WriteString("model_ref: *i\n")
	return b.String()
}

func TestParse_JSONMatchesYAML(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		json string
	}{
		{
			name: "all fields",
			yaml: `name: llama3-8b-q4
model_ref: ` + hfRef + `
expected_digest:
  algo: sha256
  value: ` + hexUpper + `
strict_verification: true
handoff:
  path: handoff/llama.json
`,
			json: `{
  "name": "llama3-8b-q4",
  "model_ref": "` + hfRef + `",
  "expected_digest": {"algo": "sha256", "value": "` + hexUpper + `"},
  "strict_verification": true,
  "handoff": {"path": "handoff/llama.json"}
}`,
		},
		{
			name: "minimal",
			yaml: "model_ref: /models/x.gguf\n",
			json: `{"model_ref":"/models/x.gguf"}`,
		},
		{
			name: "nulls and false",
			yaml: "model_ref: x\nname: ~\nstrict_verification: false\nexpected_digest:\n",
			json: `{"model_ref": "x", "name": null, "strict_verification": false, "expected_digest": null}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fromYAML, err := ParseFile(writeFile(t, dir, "spec.yaml", tc.yaml))
			require.NoError(t, err)
			fromJSON, err := ParseFile(writeFile(t, dir, "spec.json", tc.json))
			require.NoError(t, err)
			// Only the file and its bytes differ.
			assert.NotEqual(t, fromYAML.Hash, fromJSON.Hash)
			fromYAML.File, fromYAML.Hash = "", ""
			fromJSON.File, fromJSON.Hash = "", ""
			assert.Equal(t, fromYAML, fromJSON)
		})
	}
}

func TestParse_Hash(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{name: "identical bytes", a: "model_ref: x\n", b: "model_ref: x\n", same: true},
		{name: "comment change", a: "model_ref: x\n", b: "model_ref: x # new\n", same: false},
		{name: "value change", a: "model_ref: x\n", b: "model_ref: y\n", same: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Parse("m.yaml", []byte(tc.a))
			require.NoError(t, err)
			b, err := Parse("m.yaml", []byte(tc.b))
			require.NoError(t, err)
			sum := sha256.Sum256([]byte(tc.a))
			assert.Equal(t, hex.EncodeToString(sum[:]), a.Hash)
			assert.Equal(t, tc.same, a.Hash == b.Hash)
		})
	}
}

func TestParse_PathsAreAbsolute(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	tests := []struct {
		name        string
		file        string
		wantFile    string
		wantBaseDir string
	}{
		{name: "relative file", file: "models.d/m.yaml", wantFile: filepath.Join(wd, "models.d", "m.yaml"), wantBaseDir: filepath.Join(wd, "models.d")},
		{name: "absolute file", file: "/etc/model-provisioner/models.d/m.yaml", wantFile: "/etc/model-provisioner/models.d/m.yaml", wantBaseDir: "/etc/model-provisioner/models.d"},
		{name: "unclean file", file: "/etc/x/../models.d//m.yaml", wantFile: "/etc/models.d/m.yaml", wantBaseDir: "/etc/models.d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.file, []byte("model_ref: x\nhandoff: {path: h.json}\n"))
			require.NoError(t, err)
			assert.Equal(t, tc.wantFile, m.File)
			assert.Equal(t, tc.wantBaseDir, m.BaseDir)
			assert.Equal(t, filepath.Join(tc.wantBaseDir, "h.json"), m.HandoffPath)
		})
	}
}

func TestParseFile_Errors(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.yaml")
	f, err := os.Create(huge)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(100<<20)) // sparse: 100 MB that takes no disk
	require.NoError(t, f.Close())
	justOver := writeFile(t, dir, "over.yaml", "model_ref: x\n"+strings.Repeat("#", MaxSpecSize-12))
	require.NoError(t, os.Symlink("missing.yaml", filepath.Join(dir, "dangling.yaml")))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755))

	tests := []struct {
		name     string
		path     string
		kind     error
		contains string
	}{
		{name: "missing file", path: filepath.Join(dir, "nope.yaml"), kind: fs.ErrNotExist},
		{name: "dangling symlink", path: filepath.Join(dir, "dangling.yaml"), kind: fs.ErrNotExist, contains: `dangling symlink to "missing.yaml"`},
		{name: "directory", path: filepath.Join(dir, "sub.yaml"), kind: ErrWrongType, contains: "not a regular file"},
		{name: "sparse 100 MB file", path: huge, kind: ErrTooLarge, contains: "104857600 bytes"},
		{name: "one byte over the limit", path: justOver, kind: ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := ParseFile(tc.path)
			assert.Less(t, time.Since(start), time.Second)
			se := specError(t, err)
			assert.ErrorIs(t, err, tc.kind)
			assert.Equal(t, tc.path, se.File)
			assert.Contains(t, err.Error(), tc.contains)
		})
	}
}

func TestParseFile_AtSizeLimit(t *testing.T) {
	dir := t.TempDir()
	spec := "model_ref: x\n"
	path := writeFile(t, dir, "m.yaml", spec+strings.Repeat("#", MaxSpecSize-len(spec)))
	m, err := ParseFile(path)
	require.NoError(t, err)
	assert.Equal(t, "x", m.Ref)
}

func TestSpecError_Error(t *testing.T) {
	cause := errors.New("boom")
	tests := []struct {
		name string
		err  *SpecError
		want string
	}{
		{name: "everything", err: &SpecError{File: "a.yaml", Line: 3, Field: "name", Err: cause}, want: "a.yaml:3: name: boom"},
		{name: "no line", err: &SpecError{File: "a.yaml", Field: "name", Err: cause}, want: "a.yaml: name: boom"},
		{name: "no field", err: &SpecError{File: "a.yaml", Line: 3, Err: cause}, want: "a.yaml:3: boom"},
		{name: "no file", err: &SpecError{Line: 3, Err: cause}, want: "line 3: boom"},
		{name: "no cause", err: &SpecError{File: "a.yaml"}, want: "a.yaml: invalid spec"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.err.Error())
			if tc.err.Err != nil {
				assert.ErrorIs(t, tc.err, cause)
			}
		})
	}
}

func TestParse_IncludeVersionEngine(t *testing.T) {
	m, err := Parse("/etc/m.d/repo.yaml", []byte("model_ref: hf:org/repo@main\ninclude: [\"*.safetensors\", \"**/*.json\"]\nversion_id: v123\nengine: vllm\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"*.safetensors", "**/*.json"}, m.Include)
	assert.Equal(t, "v123", m.VersionID)
	assert.Equal(t, "vllm", m.Engine)

	m, err = Parse("/etc/m.d/one.yaml", []byte("model_ref: hf:org/repo@main\ninclude: \"*.gguf\"\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"*.gguf"}, m.Include)

	for _, bad := range []string{
		"model_ref: x\nengine: tgi\n",
		"model_ref: x\ninclude: [\"../*\"]\n",
		"model_ref: x\ninclude: [\"/abs/*\"]\n",
		"model_ref: x\ninclude: [\"[\"]\n",
		"model_ref: x\ninclude: {a: b}\n",
	} {
		_, err := Parse("/etc/m.d/bad.yaml", []byte(bad))
		require.Error(t, err, bad)
		var se *SpecError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 2, se.Line, bad)
	}
}
