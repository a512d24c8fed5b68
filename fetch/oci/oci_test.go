package oci

import (
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/content"
)

func TestSelected(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		name     string
		want     bool
	}{
		{nil, "a/b.json", true},
		{[]string{"*.json"}, "config.json", true},
		{[]string{"*.json"}, "tokenizer/tokenizer.json", true},
		{[]string{"tokenizer/*"}, "tokenizer/tokenizer.json", true},
		{[]string{"tokenizer/*"}, "config.json", false},
		{[]string{"*.gguf", "*.json"}, "model.safetensors", false},
	} {
		assert.Equal(t, tc.want, selected(tc.patterns, tc.name), "%q %s", tc.patterns, tc.name)
	}
}

func TestFileLayer(t *testing.T) {
	const hex = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
	desc := func(mt string, ann map[string]string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: digest.Digest("sha256:" + hex), Size: 11, Annotations: ann}
	}
	l, err := fileLayer(desc(ocispec.MediaTypeImageLayer, map[string]string{ocispec.AnnotationTitle: "sub/model.gguf"}))
	require.NoError(t, err)
	assert.Equal(t, "sub/model.gguf", l.path)
	assert.Equal(t, hex, l.digest.Value)

	l, err = fileLayer(desc("application/vnd.cncf.model.weight.v1.raw", map[string]string{"org.cnai.model.filepath": "w.safetensors"}))
	require.NoError(t, err)
	assert.Equal(t, "w.safetensors", l.path, "earlier model-spec drafts' annotation")

	_, err = fileLayer(desc(ocispec.MediaTypeImageLayer, map[string]string{ocispec.AnnotationTitle: "a//b"}))
	assert.ErrorIs(t, err, content.ErrUnsafePath)

	d := desc(ocispec.MediaTypeImageLayer, map[string]string{ocispec.AnnotationTitle: "m.bin"})
	d.Digest = digest.Digest("sha512:" + hex + hex)
	_, err = fileLayer(d)
	assert.ErrorIs(t, err, ErrUnsupportedArtifact, "only sha256 digests can be verified")
	assert.Contains(t, err.Error(), "sha512")

	assert.True(t, archiveLayer(desc("application/vnd.cncf.model.weight.v1.tar+zstd", nil)))
	assert.False(t, archiveLayer(desc("application/vnd.cncf.model.weight.v1.raw", nil)))
	assert.False(t, archiveLayer(desc(ocispec.MediaTypeImageLayer, nil)), "oras push gives plain files this type")
}
