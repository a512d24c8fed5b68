package fetch

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRef(t *testing.T) {
	const base = "/etc/model-provisioner/models.d"
	tests := []struct {
		name   string
		in     string
		id     string
		scheme Scheme
	}{
		{"absolute path", "/models/m.gguf", "file:/models/m.gguf", SchemeFile},
		{"file scheme", "file:/models/m.gguf", "file:/models/m.gguf", SchemeFile},
		{"file URL form", "file:///models/m.gguf", "file:/models/m.gguf", SchemeFile},
		{"file scheme upper-case", "FILE:/models/m.gguf", "file:/models/m.gguf", SchemeFile},
		{"relative", "m.gguf", "file:" + base + "/m.gguf", SchemeFile},
		{"dot relative", "./m.gguf", "file:" + base + "/m.gguf", SchemeFile},
		{"dotdot relative", "dir/../m.gguf", "file:" + base + "/m.gguf", SchemeFile},
		{"relative file scheme", "file:../models/m.gguf", "file:/etc/model-provisioner/models/m.gguf", SchemeFile},
		{"unclean absolute", "/models//a/./../m.gguf", "file:/models/m.gguf", SchemeFile},
		{"relative with colon", "weird:name.gguf", "file:" + base + "/weird:name.gguf", SchemeFile},
		{"hf file", "hf:TheOrg/Repo-GGUF/model.Q4_K_M.gguf@abc123", "hf:TheOrg/Repo-GGUF/model.Q4_K_M.gguf@abc123", SchemeHF},
		{"hf default revision", "hf:org/repo/sub/dir/m.gguf", "hf:org/repo/sub/dir/m.gguf@main", SchemeHF},
		{"hf repo", "hf:org/repo@v1.0", "hf:org/repo@v1.0", SchemeHF},
		{"hf upper-case scheme", "HF:org/repo", "hf:org/repo@main", SchemeHF},
		{"https host lower-cased", "HTTPS://Models.Example.COM/a/m.gguf", "https://models.example.com/a/m.gguf", SchemeHTTPS},
		{"https default port", "https://host:443/m.gguf", "https://host/m.gguf", SchemeHTTPS},
		{"https other port kept", "https://host:8443/m.gguf", "https://host:8443/m.gguf", SchemeHTTPS},
		{"https query and userinfo not in id", "https://u:secret@host/m.gguf?X-Amz-Signature=abc", "https://host/m.gguf", SchemeHTTPS},
		{"http", "http://127.0.0.1:8080/m.gguf", "http://127.0.0.1:8080/m.gguf", SchemeHTTP},
		{"s3 key", "s3://Bucket/models/m.gguf", "s3://bucket/models/m.gguf", SchemeS3},
		{"s3 prefix", "s3://bucket/models/llama/", "s3://bucket/models/llama/", SchemeS3},
		{"oci tag", "oci://Registry.Local:5000/models/llama:q4", "oci://registry.local:5000/models/llama:q4", SchemeOCI},
		{"oci digest", "oci://reg/models/llama@sha256:" + hex64, "oci://reg/models/llama@sha256:" + hex64, SchemeOCI},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRef(tc.in, base)
			require.NoError(t, err)
			assert.Equal(t, tc.scheme, r.Scheme)
			assert.Equal(t, tc.id, r.ID())
		})
	}
}

const hex64 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

func TestParseRef_SameModelOneID(t *testing.T) {
	const base = "/srv/models"
	var ids []string
	for _, s := range []string{"m.gguf", "./m.gguf", "dir/../m.gguf", "/srv/models/m.gguf", "file:/srv/models/m.gguf", "file:m.gguf"} {
		r, err := ParseRef(s, base)
		require.NoError(t, err, s)
		ids = append(ids, r.ID())
	}
	for _, id := range ids {
		assert.Equal(t, "file:/srv/models/m.gguf", id)
	}
}

func TestParseRef_Invalid(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "empty"},
		{"blank", "   ", "empty"},
		{"NUL", "/models/m\x00.gguf", "NUL"},
		{"file with nothing", "file:", "no path"},
		{"hf org only", "hf:org", "missing repository"},
		{"hf empty org", "hf:/repo", "empty organization"},
		{"hf empty repo", "hf:org/", "empty repository"},
		{"hf empty revision", "hf:org/repo@", "empty revision"},
		{"hf dotdot in path", "hf:org/repo/../x.gguf", "'..'"},
		{"hf bad name", "hf:org/re po", "not a valid"},
		{"https no host", "https:///m.gguf", "no host"},
		{"https directory", "https://host/models/", "not a directory"},
		{"s3 no key", "s3://bucket", "missing key"},
		{"s3 no bucket", "s3:///key", "missing bucket"},
		{"oci no tag", "oci://reg/models/llama", "missing tag or digest"},
		{"oci short digest", "oci://reg/models/llama@sha256:abc", "64 hex"},
		{"unknown scheme", "ftp://host/m.gguf", "unknown scheme"},
		{"relative without base", "m.gguf", "no absolute base"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := "/base"
			if tc.name == "relative without base" {
				base = ""
			}
			_, err := ParseRef(tc.in, base)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidRef)
			var re *RefError
			require.True(t, errors.As(err, &re))
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseRef_ErrorsRedactSecrets(t *testing.T) {
	_, err := ParseRef("https://user:hunter2@host/dir/?sig=topsecret", "/")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
	assert.NotContains(t, err.Error(), "topsecret")
}

func TestRef_DefaultName(t *testing.T) {
	tests := map[string]string{
		"/m/llama-3.Q4_K_M.gguf":           "llama-3.Q4_K_M",
		"hf:org/repo/sub/model.gguf@rev":   "model",
		"hf:org/some-repo":                 "some-repo",
		"https://host/files/tiny.gguf?x=1": "tiny",
		"s3://bucket/models/llama/":        "llama",
		"oci://reg/models/qwen:q8":         "qwen",
		"/m/.hidden":                       ".hidden",
		"/m/model-without-extension":       "model-without-extension",
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			r, err := ParseRef(in, "/")
			require.NoError(t, err)
			assert.Equal(t, want, r.DefaultName())
		})
	}
}

func TestRegistry_Unsupported(t *testing.T) {
	r := NewRegistry()
	_, err := r.Lookup(SchemeHF)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrUnsupportedScheme)
	assert.Contains(t, err.Error(), "not supported yet: hf")
	assert.True(t, IsPermanent(err))
}
