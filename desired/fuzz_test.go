package desired

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error it returns is a
// *SpecError, and that every Model it returns satisfies the documented
// invariants.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"model_ref: x\n",
		"name: llama3-8b-q4\nmodel_ref: hf:org/repo/model.gguf@abc\nexpected_digest:\n  algo: sha256\n  value: " + hexLower + "\nstrict_verification: true\nhandoff:\n  path: /etc/llama/llamacpp.json\n",
		`{"model_ref":"x","expected_digest":{"algo":"SHA256","value":"` + hexUpper + `"}}`,
		"model_ref: &a x\nname: *a\n",
		"model_ref: x\n---\nmodel_ref: y\n",
		"<<: {model_ref: x}\n",
		"? [a]\n: b\n",
		"model_ref: x\nhandoff: {path: ../h.json}\n",
		"model_ref: \"\\0\"\n",
		"strict_verification: yes\n",
		"model_ref: x\nhf_token: secret\n",
		strings.Repeat("[", 100),
		aliasBomb(),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		m, err := Parse("models.d/fuzz.yaml", []byte(data))
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *SpecError", err, err)
			}
			if se.Err == nil {
				t.Fatalf("SpecError without a cause: %#v", se)
			}
			return
		}
		if m.Ref == "" || m.Ref != strings.TrimSpace(m.Ref) {
			t.Fatalf("bad Ref %q", m.Ref)
		}
		if err := validName(m.Name); err != nil {
			t.Fatalf("bad Name %q: %v", m.Name, err)
		}
		if !m.ExpectedDigest.IsZero() {
			if err := m.ExpectedDigest.Validate(); err != nil {
				t.Fatalf("bad digest %v: %v", m.ExpectedDigest, err)
			}
		}
		if m.HandoffPath != "" && (!filepath.IsAbs(m.HandoffPath) || filepath.Clean(m.HandoffPath) != m.HandoffPath) {
			t.Fatalf("bad HandoffPath %q", m.HandoffPath)
		}
		if !filepath.IsAbs(m.File) || !filepath.IsAbs(m.BaseDir) || len(m.Hash) != 64 {
			t.Fatalf("bad File %q, BaseDir %q or Hash %q", m.File, m.BaseDir, m.Hash)
		}
	})
}
