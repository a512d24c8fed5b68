package fetch

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// FuzzParseRef checks ParseRef against the contract of a model id: parsing
// never panics, errors are *RefError, and an accepted reference has one
// normalized id that is safe to log (no control character, no query string,
// no credentials), that names the same model when parsed again, and whose
// file: form is a clean absolute path.
//
// Every id form parses back to itself: "file:/clean/path" goes through the
// file: branch, "hf:org/repo[/file]@rev" cuts at the first '@' (the file part
// never holds one) and "s3://", "oci://", "http(s)://" ids re-enter their own
// scheme's parser with a host or registry that is already lower-case.
func FuzzParseRef(f *testing.F) {
	bases := []string{"/etc/model-provisioner/models.d", "/", "/srv/a b", ""}
	seeds := []string{
		"/models/m.gguf",
		"file:/models/m.gguf",
		"file:///models/m.gguf",
		"FILE:/models/m.gguf",
		"m.gguf",
		"./dir/../m.gguf",
		"file:../models/m.gguf",
		"/models//a/./../m.gguf",
		"weird:name.gguf",
		"/x /",
		"file:/m\u00a0/.",
		"hf:TheOrg/Repo-GGUF/model.Q4_K_M.gguf@abc123",
		"hf:org/repo/sub/dir/m.gguf",
		"HF:org/repo@v1.0",
		"hf:org/repo/a\tb@rev",
		"hf:org/repo@refs/pr/1",
		"HTTPS://Models.Example.COM/a/m.gguf",
		"https://u:secret@host:443/m.gguf?X-Amz-Signature=abc#frag",
		"https://[::1]:443/m.gguf",
		"http://h%C3%89st:80/%2e%2e/m%20x.gguf",
		"s3://Bucket/models/m.gguf",
		"s3://bucket/models/llama/",
		"s3://a://b/c",
		"oci://Registry.Local:5000/models/llama:q4",
		"oci://reg/models/llama@sha256:" + hex64,
		"oci://reg/models/llama@sha256:" + strings.ToUpper(hex64),
		"oci://reg/models/llama@sha256:" + strings.Repeat("z", 64),
		"oci://reg/a:b/c",
		"ftp://host/m.gguf",
		"  /padded  ",
		"/models/m\x00.gguf",
		"/models/m\n.gguf",
	}
	for i, s := range seeds {
		f.Add(s, bases[i%len(bases)])
	}
	f.Fuzz(func(t *testing.T, s, base string) {
		r, err := ParseRef(s, base)
		if err != nil {
			var re *RefError
			if !errors.As(err, &re) || !errors.Is(err, ErrInvalidRef) {
				t.Fatalf("ParseRef(%q, %q): error %v (%T) is not a *RefError wrapping ErrInvalidRef", s, base, err, err)
			}
			return
		}
		id := r.ID()
		if id == "" {
			t.Fatalf("ParseRef(%q, %q) = %+v with an empty id", s, base, r)
		}
		if i := strings.IndexFunc(id, unicode.IsControl); i >= 0 {
			t.Fatalf("ParseRef(%q, %q): id %q holds control character %q", s, base, id, id[i:])
		}
		if id != strings.TrimSpace(id) {
			t.Fatalf("ParseRef(%q, %q): id %q begins or ends with white space", s, base, id)
		}
		if r.String() != id {
			t.Fatalf("String() = %q, ID() = %q", r.String(), id)
		}
		switch r.Scheme {
		case SchemeFile:
			if !filepath.IsAbs(r.Path) || filepath.Clean(r.Path) != r.Path {
				t.Fatalf("ParseRef(%q, %q): file path %q is not absolute and clean", s, base, r.Path)
			}
		case SchemeHF:
			if r.Org == "" || r.Repo == "" || r.Revision == "" || strings.Contains(r.File, "@") {
				t.Fatalf("ParseRef(%q, %q): bad hf reference %+v", s, base, r)
			}
		case SchemeHTTP, SchemeHTTPS:
			authority, _, _ := strings.Cut(strings.SplitN(id, "://", 2)[1], "/")
			if strings.ContainsAny(id, "?#") || strings.Contains(authority, "@") {
				t.Fatalf("ParseRef(%q, %q): id %q carries a query, fragment or userinfo", s, base, id)
			}
			if r.URL.Host != strings.ToLower(r.URL.Host) {
				t.Fatalf("ParseRef(%q, %q): host %q is not lower-case", s, base, r.URL.Host)
			}
		case SchemeS3:
			if r.Bucket == "" || r.Key == "" || strings.ContainsAny(id, "?#") {
				t.Fatalf("ParseRef(%q, %q): bad s3 reference %+v", s, base, r)
			}
		case SchemeOCI:
			if (r.Tag == "") == (r.Digest == "") {
				t.Fatalf("ParseRef(%q, %q): want exactly one of tag and digest: %+v", s, base, r)
			}
			if r.Digest != "" && !isSHA256Digest(r.Digest) {
				t.Fatalf("ParseRef(%q, %q): digest %q is not sha256:<64 lower-case hex>", s, base, r.Digest)
			}
		default:
			t.Fatalf("ParseRef(%q, %q): unknown scheme %q", s, base, r.Scheme)
		}

		// The id is a reference to the same model. It is absolute, so the
		// base directory no longer matters.
		again, err := ParseRef(id, "")
		if err != nil {
			t.Fatalf("ParseRef(%q, %q) gave id %q, which does not parse: %v", s, base, id, err)
		}
		if again.Scheme != r.Scheme || again.ID() != id {
			t.Fatalf("ParseRef(%q, %q) gave id %q; parsed again it is %q (%s)", s, base, id, again.ID(), again.Scheme)
		}
		if again.DefaultName() != r.DefaultName() {
			t.Fatalf("ParseRef(%q, %q): default name %q, from the id %q", s, base, r.DefaultName(), again.DefaultName())
		}
	})
}

func isSHA256Digest(s string) bool {
	v, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(v) != 64 {
		return false
	}
	for _, c := range []byte(v) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
