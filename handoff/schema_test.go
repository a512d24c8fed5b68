package handoff_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/handoff"
	"github.com/model-provisioner/model-provisioner/modelinfo"
)

func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile("schema.json")
	require.NoError(t, err)
	var schema map[string]any
	require.NoError(t, json.Unmarshal(data, &schema), "schema.json must be valid JSON")
	return schema
}

// TestSchema_SeedContract checks that the schema makes the seed's fields
// required and describes the current schema version.
func TestSchema_SeedContract(t *testing.T) {
	s := loadSchema(t)
	assert.Equal(t, "https://json-schema.org/draft/2020-12/schema", s["$schema"])
	props := s["properties"].(map[string]any)
	required := func(node any) []any { return node.(map[string]any)["required"].([]any) }

	assert.Subset(t, required(s), []any{"schema_version", "model", "metadata"})
	assert.Subset(t, required(props["model"]), []any{"id", "path"})
	assert.Subset(t, required(props["metadata"]), []any{"size_bytes", "ctx_max"})
	ctxMax := props["metadata"].(map[string]any)["properties"].(map[string]any)["ctx_max"].(map[string]any)
	assert.Equal(t, []any{"integer", "null"}, ctxMax["type"], "ctx_max is null when unknown")
	version := props["schema_version"].(map[string]any)
	assert.Equal(t, float64(handoff.SchemaVersion), version["const"])
}

// TestSchema_Documents validates the golden files and documents built from
// many kinds of model against schema.json. The validator below implements
// the keywords the schema uses, and additionally rejects properties the
// schema does not describe, so that every key written is documented.
func TestSchema_Documents(t *testing.T) {
	schema := loadSchema(t)
	checkKeywords(t, schema, "#")

	docs := map[string][]byte{}
	for _, tc := range goldenCases() {
		data, err := os.ReadFile(filepath.Join("testdata", tc.golden))
		require.NoError(t, err)
		docs[tc.golden] = data
	}

	dir := t.TempDir()
	split := splitGGUFModel(t, filepath.Join(dir, "split"))
	st := filepath.Join(dir, "st")
	safetensorsModel(t, st)
	unknown := filepath.Join(dir, "w.bin")
	writeFile(t, unknown, []byte("?"))
	plain := filepath.Join(dir, "plain")
	writeFile(t, filepath.Join(plain, "README.md"), []byte("hi"))
	for _, p := range []string{split, st, unknown, plain} {
		info, err := modelinfo.Inspect(context.Background(), p)
		require.NoError(t, err)
		for _, engine := range []modelinfo.Engine{"", modelinfo.EngineLlamaCPP, modelinfo.EngineVLLM, modelinfo.EngineGeneric} {
			f := handoff.Build(engine, handoff.Registration{ID: "file:" + p, Name: "m", Path: p, Digest: testDigest, Verification: "pass"}, info)
			data, err := handoff.Encode(f)
			require.NoError(t, err)
			docs[fmt.Sprintf("%s for %q", filepath.Base(p), engine)] = data
		}
	}
	data, err := handoff.Encode(handoff.Build("", handoff.Registration{ID: "file:/m", Path: "/m"}, modelinfo.Info{}))
	require.NoError(t, err)
	docs["zero Info"] = data

	for name, data := range docs {
		t.Run(name, func(t *testing.T) {
			var doc any
			require.NoError(t, json.Unmarshal(data, &doc))
			for _, e := range validate(schema, doc, "") {
				t.Error(e)
			}
		})
	}

	t.Run("the validator rejects what the schema forbids", func(t *testing.T) {
		bad := []string{
			`{"model": {"id": "x", "path": "/x"}, "metadata": {"size_bytes": 1, "ctx_max": null}}`,
			`{"schema_version": 1, "model": {"id": "x"}, "metadata": {"size_bytes": 1, "ctx_max": null}}`,
			`{"schema_version": 1, "model": {"id": "x", "path": "/x"}, "metadata": {"size_bytes": 1}}`,
			`{"schema_version": 1, "model": {"id": "x", "path": "/x"}, "metadata": {"size_bytes": -1, "ctx_max": 5}}`,
			`{"schema_version": 1, "engine": "tgi", "model": {"id": "x", "path": "/x"}, "metadata": {"size_bytes": 1, "ctx_max": 5}}`,
			`{"schema_version": 1, "model": {"id": "x", "path": "/x"}, "metadata": {"size_bytes": 1, "ctx_max": "5"}}`,
			`{"schema_version": 1, "model": {"id": "x", "path": "/x"}, "metadata": {"size_bytes": 1, "ctx_max": 5, "digest": "md5:00"}}`,
			`{"schema_version": 1, "model": {"id": "x", "path": "/x"}, "metadata": {"size_bytes": 1, "ctx_max": 5, "shards": [{"path": "/a"}]}}`,
			`{"schema_version": 1, "model": {"id": "x", "path": "/x"}, "metadata": {"size_bytes": 1, "ctx_max": 5, "undocumented": 1}}`,
		}
		for _, b := range bad {
			var doc any
			require.NoError(t, json.Unmarshal([]byte(b), &doc))
			assert.NotEmpty(t, validate(schema, doc, ""), b)
		}
	})
}

// knownKeywords are the JSON Schema keywords validate implements or that
// only annotate.
var knownKeywords = []string{
	"$schema", "$id", "title", "description",
	"type", "required", "properties", "items", "enum", "const", "minimum", "minLength", "minItems", "pattern",
}

// checkKeywords fails when the schema uses a keyword validate does not
// know, so that the test cannot silently skip a constraint.
func checkKeywords(t *testing.T, node map[string]any, at string) {
	t.Helper()
	for k, v := range node {
		if !slices.Contains(knownKeywords, k) {
			t.Errorf("%s: keyword %q is not implemented by the test's validator", at, k)
		}
		switch k {
		case "properties":
			for name, sub := range v.(map[string]any) {
				checkKeywords(t, sub.(map[string]any), at+"/properties/"+name)
			}
		case "items":
			checkKeywords(t, v.(map[string]any), at+"/items")
		}
	}
}

// validate checks doc against the subset of JSON Schema 2020-12 that
// schema.json uses, treating undescribed properties as errors.
func validate(schema map[string]any, doc any, at string) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	if at == "" {
		at = "$"
	}

	if typ, ok := schema["type"]; ok {
		var types []string
		switch typ := typ.(type) {
		case string:
			types = []string{typ}
		case []any:
			for _, x := range typ {
				types = append(types, x.(string))
			}
		}
		if !slices.Contains(types, jsonType(doc)) && !(jsonType(doc) == "integer" && slices.Contains(types, "number")) {
			fail("type %s, want %v", jsonType(doc), types)
			return errs
		}
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return equalJSON(e, doc) }) {
		fail("%v is not one of %v", doc, enum)
	}
	if c, ok := schema["const"]; ok && !equalJSON(c, doc) {
		fail("%v is not %v", doc, c)
	}
	if n, ok := doc.(float64); ok {
		if m, ok := schema["minimum"].(float64); ok && n < m {
			fail("%v is below %v", n, m)
		}
	}
	if s, ok := doc.(string); ok {
		if m, ok := schema["minLength"].(float64); ok && float64(len([]rune(s))) < m {
			fail("%q is shorter than %v", s, m)
		}
		if p, ok := schema["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(s) {
			fail("%q does not match %s", s, p)
		}
	}
	if arr, ok := doc.([]any); ok {
		if m, ok := schema["minItems"].(float64); ok && float64(len(arr)) < m {
			fail("%d items, fewer than %v", len(arr), m)
		}
		if items, ok := schema["items"].(map[string]any); ok {
			for i, x := range arr {
				errs = append(errs, validate(items, x, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	if obj, ok := doc.(map[string]any); ok {
		for _, r := range asStrings(schema["required"]) {
			if _, ok := obj[r]; !ok {
				fail("missing required %q", r)
			}
		}
		props, _ := schema["properties"].(map[string]any)
		for k, v := range obj {
			sub, ok := props[k].(map[string]any)
			if !ok {
				fail("property %q is not described by the schema", k)
				continue
			}
			errs = append(errs, validate(sub, v, at+"."+k)...)
		}
	}
	return errs
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case float64:
		if v == float64(int64(v)) {
			return "integer"
		}
		return "number"
	}
	return "unknown"
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func asStrings(v any) []string {
	var out []string
	arr, _ := v.([]any)
	for _, x := range arr {
		out = append(out, x.(string))
	}
	return out
}

// TestRead_PreVersionDocument reads a handoff file written before schema
// versioning: it parses, with SchemaVersion zero.
func TestRead_PreVersionDocument(t *testing.T) {
	p := filepath.Join(t.TempDir(), "old.json")
	writeFile(t, p, []byte(strings.TrimSpace(`
{
  "model": {"id": "file:/m.gguf", "path": "/m.gguf", "name": "m"},
  "metadata": {"size_bytes": 128, "ctx_max": 8192, "format": "gguf", "architecture": "llama"}
}`)))
	f, err := handoff.Read(p)
	require.NoError(t, err)
	assert.Zero(t, f.SchemaVersion)
	assert.Equal(t, "/m.gguf", f.Model.Path)
	require.NotNil(t, f.Metadata.CtxMax)
	assert.Equal(t, int64(8192), *f.Metadata.CtxMax)
}
