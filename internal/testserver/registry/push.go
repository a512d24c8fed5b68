package registry

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// DefaultLayerMediaType is the media type `oras push` gives a file layer
// when none is asked for. The layer holds the file's bytes as they are.
const DefaultLayerMediaType = ocispec.MediaTypeImageLayer

// File is one layer of an artifact.
type File struct {
	// Name becomes the layer's org.opencontainers.image.title annotation,
	// the file name ORAS-style artifacts carry; empty leaves it out.
	Name string
	// Data is the layer's content.
	Data []byte
	// MediaType defaults to DefaultLayerMediaType.
	MediaType string
	// Annotations are added to the layer's (e.g. org.cncf.model.filepath
	// for a ModelPack-style layer).
	Annotations map[string]string
}

// Repository returns an oras-go client for repo on the registry itself,
// bypassing the proxy, authenticated as the first configured user.
func (s *Server) Repository(t testing.TB, repo string) *remote.Repository {
	t.Helper()
	r, err := remote.NewRepository(s.RegistryHost + "/" + repo)
	if err != nil {
		t.Fatalf("registry: repository %s: %v", repo, err)
	}
	r.PlainHTTP = true
	c := &auth.Client{Client: &http.Client{Timeout: 2 * time.Minute}, Cache: auth.NewCache()}
	if s.user != "" {
		c.Credential = auth.StaticCredential(s.RegistryHost, auth.Credential{Username: s.user, Password: s.password})
	}
	r.Client = c
	return r
}

// Push uploads files as the layers of an OCI image manifest (version 1.1,
// artifact type application/vnd.unknown.artifact.v1, as `oras push` makes)
// to repo, tags it (unless tag is empty) and returns the manifest digest.
// Layers already stored are not uploaded again. It fails the test on error.
func (s *Server) Push(t testing.TB, repo, tag string, files ...File) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := s.Repository(t, repo)
	layers := make([]ocispec.Descriptor, 0, len(files))
	for _, f := range files {
		mt := f.MediaType
		if mt == "" {
			mt = DefaultLayerMediaType
		}
		desc := content.NewDescriptorFromBytes(mt, f.Data)
		desc.Annotations = maps.Clone(f.Annotations)
		if f.Name != "" {
			if desc.Annotations == nil {
				desc.Annotations = map[string]string{}
			}
			desc.Annotations[ocispec.AnnotationTitle] = f.Name
		}
		exists, err := r.Blobs().Exists(ctx, desc)
		if err != nil {
			t.Fatalf("registry: push %s: %v", repo, err)
		}
		if !exists {
			if err := r.Blobs().Push(ctx, desc, bytes.NewReader(f.Data)); err != nil {
				t.Fatalf("registry: push layer %q to %s: %v", f.Name, repo, err)
			}
		}
		layers = append(layers, desc)
	}
	desc, err := oras.PackManifest(ctx, r, oras.PackManifestVersion1_1, oras.MediaTypeUnknownArtifact, oras.PackManifestOptions{Layers: layers})
	if err != nil {
		t.Fatalf("registry: push manifest to %s: %v", repo, err)
	}
	if tag != "" {
		if err := r.Tag(ctx, desc, tag); err != nil {
			t.Fatalf("registry: tag %s:%s: %v", repo, tag, err)
		}
	}
	return desc.Digest.String()
}

// PushManifest uploads raw as a manifest of mediaType and tags it; the
// blobs it names must be pushed already. It returns the manifest digest.
// Tests use it for manifests Push does not make (images, indexes, odd
// annotations).
func (s *Server) PushManifest(t testing.TB, repo, tag, mediaType string, raw []byte) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := s.Repository(t, repo)
	desc := content.NewDescriptorFromBytes(mediaType, raw)
	if err := r.Manifests().PushReference(ctx, desc, bytes.NewReader(raw), tag); err != nil {
		t.Fatalf("registry: push manifest %s:%s: %v", repo, tag, err)
	}
	return desc.Digest.String()
}

// PushBlob uploads data as a blob of repo and returns its descriptor.
func (s *Server) PushBlob(t testing.TB, repo, mediaType string, data []byte) ocispec.Descriptor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := s.Repository(t, repo)
	desc := content.NewDescriptorFromBytes(mediaType, data)
	if err := r.Blobs().Push(ctx, desc, bytes.NewReader(data)); err != nil {
		t.Fatalf("registry: push blob to %s: %v", repo, err)
	}
	return desc
}

// BlobFile returns where the registry's filesystem storage keeps the
// content of blob digest (sha256:HEX).
func (s *Server) BlobFile(digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	if len(hex) < 2 {
		return ""
	}
	return filepath.Join(s.Root, "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
}

// Tamper flips one byte in the middle of the stored content of blob digest,
// keeping its size, so the registry serves bytes that no longer match the
// digest it names them by: what a corrupted disk or a malicious mirror
// does. It fails the test when the blob is not stored.
func (s *Server) Tamper(t testing.TB, digest string) {
	t.Helper()
	p := s.BlobFile(digest)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("registry: tamper with %s: %v", digest, err)
	}
	if len(data) == 0 {
		t.Fatalf("registry: tamper with %s: the blob is empty", digest)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatalf("registry: tamper with %s: %v", digest, err)
	}
}
