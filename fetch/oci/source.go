package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/fetch/download"
	"github.com/model-provisioner/model-provisioner/fetch/https"
	"github.com/model-provisioner/model-provisioner/redact"
)

// blobSource reads one layer from the registry's blob endpoint,
// GET /v2/<repository>/blobs/<digest>, by byte range, through the
// authenticating client. It implements download.Source.
//
// A blob is named by its digest, so the bytes behind a URL never change:
// there is no version to guard with If-Range, a partial download can always
// be resumed, and the digest serves as the ETag. Registries that keep blobs
// in object storage answer with a redirect to it; the client follows it and
// drops the Authorization header when the host changes.
type blobSource struct {
	client *auth.Client
	url    string
	ref    registry.Reference // repository, for the token scope
	desc   ocispec.Descriptor
	name   string // oci://registry/repository@digest, for messages
	ua     string
}

var _ download.Source = (*blobSource)(nil)

// String names the layer; it holds no secret.
func (s *blobSource) String() string { return s.name }

func (s *blobSource) request(ctx context.Context) (*http.Request, error) {
	// Registries with token authentication grant a token per repository
	// and action; the auth client asks for the scopes in the context.
	ctx = auth.AppendRepositoryScope(ctx, s.ref, auth.ActionPull)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fetch.Permanent(fmt.Errorf("%s: %w", s, err))
	}
	if s.ua != "" {
		req.Header.Set("User-Agent", s.ua)
	}
	return req, nil
}

func (s *blobSource) do(req *http.Request) (*http.Response, error) {
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, classifyTransport(s.name, &transportError{msg: redact.String(err.Error()), err: err})
	}
	return resp, nil
}

// transportError keeps a network failure's cause for errors.Is/As while its
// message is redacted: the client's errors quote URLs, and a registry's
// redirect to object storage carries a signed query.
type transportError struct {
	msg string
	err error
}

func (e *transportError) Error() string { return e.msg }
func (e *transportError) Unwrap() error { return e.err }

// Stat asks for the first byte: the answer tells whether the registry
// serves ranges, checks access before any download starts, and confirms
// the size the manifest gave. The digest is the ETag.
func (s *blobSource) Stat(ctx context.Context) (download.Info, error) {
	req, err := s.request(ctx)
	if err != nil {
		return download.Info{}, err
	}
	req.Header.Set("Range", "bytes=0-0")
	resp, err := s.do(req)
	if err != nil {
		return download.Info{}, err
	}
	defer drain(resp.Body)
	info := download.Info{Size: s.desc.Size, ETag: s.desc.Digest.String()}
	size := int64(-1)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, _, total, ok := download.ParseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != 0 {
			return download.Info{}, fmt.Errorf("%s: %w: Content-Range %q", s, download.ErrBadRange, resp.Header.Get("Content-Range"))
		}
		size, info.Ranges = total, true
	case http.StatusOK:
		size = resp.ContentLength
	case http.StatusRequestedRangeNotSatisfiable:
		size = 0
	default:
		return download.Info{}, https.StatusError(s.name, resp)
	}
	if size >= 0 && size != s.desc.Size {
		return download.Info{}, fetch.Permanent(fmt.Errorf("%s: the registry serves %d bytes where the manifest says %d; the registry's copy of this layer is damaged", s, size, s.desc.Size))
	}
	return info, nil
}

// Range implements download.Source.
func (s *blobSource) Range(ctx context.Context, off, end int64, info download.Info) (io.ReadCloser, error) {
	req, err := s.request(ctx)
	if err != nil {
		return nil, err
	}
	ranged := off > 0 || (end >= 0 && end != s.desc.Size)
	if ranged {
		if end >= 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, end-1))
		} else {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
		}
	}
	resp, err := s.do(req)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if ranged {
			drain(resp.Body)
			return nil, fmt.Errorf("%s: %w: asked for bytes from %d, got status 200", s, download.ErrRangeIgnored, off)
		}
		return resp.Body, nil
	case http.StatusPartialContent:
		start, _, total, ok := download.ParseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != off || (total >= 0 && total != s.desc.Size) {
			drain(resp.Body)
			return nil, fmt.Errorf("%s: %w: asked for bytes from %d of %d, got Content-Range %q", s, download.ErrBadRange, off, s.desc.Size, resp.Header.Get("Content-Range"))
		}
		return resp.Body, nil
	default:
		defer drain(resp.Body)
		return nil, https.StatusError(s.name, resp)
	}
}

// classifyTransport marks the auth client's own failures, which no retry
// fixes, as permanent; network failures stay transient.
func classifyTransport(what string, err error) error {
	var ke *keychainError
	switch {
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		return fetch.Permanent(fmt.Errorf("%s: %w", what, ErrNoCredentials))
	case errors.As(err, &ke):
		return fetch.Permanent(ke)
	}
	return err
}

// drain reads a little of an unwanted body so the connection can be reused,
// then closes it.
func drain(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 64<<10)
	body.Close()
}
