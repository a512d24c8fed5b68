package s3

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"

	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/fetch/download"
	"github.com/model-provisioner/model-provisioner/redact"
	"github.com/model-provisioner/model-provisioner/verify"
)

// ErrAccessDenied is wrapped by errors for requests the server refused:
// wrong or expired credentials, or credentials without permission.
var ErrAccessDenied = errors.New("access denied")

// Error is a failure answer from the S3 server. It unwraps to
// fetch.ErrNotFound, ErrAccessDenied or download.ErrChanged where those
// apply.
type Error struct {
	// Source is the object or bucket asked for (s3://BUCKET/KEY).
	Source string
	// Code is the S3 error code (NoSuchKey, AccessDenied, SlowDown, ...)
	// and StatusCode the HTTP status.
	Code       string
	StatusCode int
	// Message is the server's explanation, with secrets removed.
	Message string
	// Hint says what to do about it.
	Hint string

	kind error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %s (HTTP %d)", e.Source, e.Code, e.StatusCode)
	if e.Message != "" && e.Message != e.Code {
		msg += ": " + strings.TrimSuffix(e.Message, ".")
	}
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

// Unwrap returns the sentinel the failure is an instance of, if any.
func (e *Error) Unwrap() error { return e.kind }

// Source is one S3 object read by byte range. It implements
// download.Source and is safe for concurrent use.
type Source struct {
	client    *minio.Client
	bucket    string
	key       string
	versionID string
	// creds says where the credentials came from, for hints.
	creds string

	// primed is the answer of the stat that resolved this source, handed
	// to the download's first Stat: the digest the download is checked
	// against and the size and ETag it reads by come from one answer, so
	// an object replaced in between cannot pair the old checksum with the
	// new bytes.
	mu     sync.Mutex
	primed *download.Info
}

var _ download.Source = (*Source)(nil)

// String names the object, and its version when pinned.
func (s *Source) String() string {
	name := "s3://" + s.bucket + "/" + s.key
	if s.versionID != "" {
		name += " (version " + s.versionID + ")"
	}
	return name
}

// stat asks for the object's metadata, with its checksum when it has one.
func (s *Source) stat(ctx context.Context) (minio.ObjectInfo, error) {
	oi, err := s.client.StatObject(ctx, s.bucket, s.key, minio.StatObjectOptions{VersionID: s.versionID, Checksum: true})
	if err != nil {
		return oi, s.explainHead(ctx, err)
	}
	if oi.IsDeleteMarker {
		return oi, fetch.Permanent(&Error{Source: s.String(), Code: "DeleteMarker", StatusCode: http.StatusNotFound, Message: "the object was deleted", kind: fetch.ErrNotFound})
	}
	return oi, nil
}

// explainHead turns a failed HEAD into an error. A HEAD answer has no body,
// so a 400 or 404 does not say what is missing (the bucket, the key, the
// version, or the account on some servers); one ranged GET of a single
// byte asks the server for its reason. It is not a retry: its answer only
// names the failure.
func (s *Source) explainHead(ctx context.Context, err error) error {
	var er minio.ErrorResponse
	if errors.As(err, &er) && (er.StatusCode == http.StatusNotFound || er.StatusCode == http.StatusBadRequest) && ctx.Err() == nil {
		opts := minio.GetObjectOptions{VersionID: s.versionID}
		_ = opts.SetRange(0, 0)
		body, _, _, gerr := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, s.key, opts)
		if gerr == nil {
			body.Close()
		} else if errors.As(gerr, new(minio.ErrorResponse)) {
			err = gerr
		}
	}
	return s.classify(ctx, err)
}

// resolve stats the object and returns the source to download it from,
// pinned to the version found, with the digest the object vouches for.
func (s *Source) resolve(ctx context.Context) (download.Resolved, error) {
	oi, err := s.stat(ctx)
	if err != nil {
		return download.Resolved{}, err
	}
	expected, err := objectDigest(oi, s.String())
	if err != nil {
		return download.Resolved{}, err
	}
	src := &Source{client: s.client, bucket: s.bucket, key: s.key, versionID: s.versionID, creds: s.creds}
	if src.versionID == "" && oi.VersionID != "" && oi.VersionID != "null" {
		// Read exactly the version that was resolved, even if the key is
		// overwritten while the download runs.
		src.versionID = oi.VersionID
	}
	info := infoOf(oi)
	src.primed = &info
	return download.Resolved{
		Source:     src,
		Expected:   expected,
		Validators: fetch.Validators{ETag: info.ETag, LastModified: info.LastModified, VersionID: oi.VersionID},
	}, nil
}

func infoOf(oi minio.ObjectInfo) download.Info {
	info := download.Info{Size: oi.Size, Ranges: true}
	if oi.ETag != "" {
		info.ETag = `"` + oi.ETag + `"`
	}
	if !oi.LastModified.IsZero() {
		info.LastModified = oi.LastModified.UTC().Format(http.TimeFormat)
	}
	return info
}

// objectDigest returns the sha256 the object carries: its full-object S3
// ChecksumSHA256 (base64), or else x-amz-meta-sha256 (hex, optionally
// prefixed "sha256:"). A composite checksum of a multipart upload is a
// checksum of part checksums, not of the bytes, and is not used. When the
// object carries both and they disagree, no download can satisfy both and
// the disagreement is reported as a mismatch.
func objectDigest(oi minio.ObjectInfo, what string) (verify.Digest, error) {
	var fromChecksum, fromMeta verify.Digest
	if oi.ChecksumSHA256 != "" && !strings.EqualFold(oi.ChecksumMode, "COMPOSITE") && !strings.Contains(oi.ChecksumSHA256, "-") {
		if raw, err := base64.StdEncoding.DecodeString(oi.ChecksumSHA256); err == nil && len(raw) == 32 {
			fromChecksum = verify.Digest{Algo: verify.SHA256, Value: hex.EncodeToString(raw)}
		}
	}
	meta := strings.ToLower(strings.TrimSpace(oi.Metadata.Get("X-Amz-Meta-Sha256")))
	meta = strings.TrimPrefix(meta, "sha256:")
	if meta != "" {
		d := verify.Digest{Algo: verify.SHA256, Value: meta}
		if d.Validate() != nil {
			return verify.Digest{}, fetch.Permanent(fmt.Errorf("%s: x-amz-meta-sha256 %q is not a sha256 digest (64 hex digits); fix the object's metadata", what, redact.String(meta)))
		}
		fromMeta = d
	}
	switch {
	case fromChecksum.IsZero():
		return fromMeta, nil
	case !fromMeta.IsZero() && !fromMeta.Equal(fromChecksum):
		return verify.Digest{}, fetch.Permanent(&verify.MismatchError{Path: what + " (x-amz-meta-sha256 against the S3 checksum)", Expected: fromMeta, Actual: fromChecksum})
	}
	return fromChecksum, nil
}

// Stat implements download.Source.
func (s *Source) Stat(ctx context.Context) (download.Info, error) {
	s.mu.Lock()
	p := s.primed
	s.primed = nil
	s.mu.Unlock()
	if p != nil {
		return *p, nil
	}
	oi, err := s.stat(ctx)
	if err != nil {
		return download.Info{}, err
	}
	return infoOf(oi), nil
}

// Range implements download.Source. Every request carries If-Match with
// the ETag the download began with: the server refuses a replaced object
// (412), which is reported as download.ErrChanged.
func (s *Source) Range(ctx context.Context, off, end int64, info download.Info) (io.ReadCloser, error) {
	opts := minio.GetObjectOptions{VersionID: s.versionID}
	if etag := strings.Trim(info.ETag, `"`); etag != "" {
		if err := opts.SetMatchETag(etag); err != nil {
			return nil, err
		}
	}
	ranged := off > 0 || (end >= 0 && end != info.Size)
	if ranged {
		// minio's SetRange(start, 0) means "from start to the end".
		last := int64(0)
		if end >= 0 {
			last = end - 1
		}
		if err := opts.SetRange(off, last); err != nil {
			return nil, fmt.Errorf("%s: %w: bytes %d to %d", s, download.ErrBadRange, off, end)
		}
	}
	// Core.GetObject sends the request now; Client.GetObject would defer
	// it, and its error, to the first Read.
	body, oi, h, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, s.key, opts)
	if err != nil {
		return nil, s.classify(ctx, err)
	}
	if oi.ETag != "" && info.ETag != "" && `"`+oi.ETag+`"` != info.ETag {
		body.Close()
		return nil, fmt.Errorf("%s: %w (ETag %q, was %s)", s, download.ErrChanged, oi.ETag, info.ETag)
	}
	cr := h.Get("Content-Range")
	switch {
	case ranged && cr == "":
		body.Close()
		return nil, fmt.Errorf("%s: %w: asked for bytes from %d", s, download.ErrRangeIgnored, off)
	case ranged:
		start, _, total, ok := download.ParseContentRange(cr)
		if !ok || start != off || (info.Size >= 0 && total != info.Size) {
			body.Close()
			return nil, fmt.Errorf("%s: %w: asked for bytes from %d of %d, got Content-Range %q", s, download.ErrBadRange, off, info.Size, cr)
		}
	case info.Size >= 0 && oi.Size >= 0 && oi.Size != info.Size:
		body.Close()
		return nil, fmt.Errorf("%s: %w: size is now %d, was %d", s, download.ErrChanged, oi.Size, info.Size)
	}
	return body, nil
}

// Codes of S3 errors that say the credentials are wrong, expired or not
// allowed; retrying does not help.
var credentialCodes = map[string]bool{
	"AccessDenied":          true,
	"InvalidAccessKeyId":    true,
	"SignatureDoesNotMatch": true,
	"InvalidToken":          true,
	"ExpiredToken":          true,
	"TokenRefreshRequired":  true,
	"InvalidSecurity":       true,
	"AccountProblem":        true,
	"AllAccessDisabled":     true,
	"InvalidPayer":          true,
	"NotSignedUp":           true,
	"XAdminUserNotFound":    true, // versitygw: no account with this access key
}

// Codes of S3 errors worth retrying.
var transientCodes = map[string]bool{
	"SlowDown":            true,
	"RequestTimeout":      true,
	"InternalError":       true,
	"ServiceUnavailable":  true,
	"Busy":                true,
	"OperationAborted":    true,
	"RequestThrottled":    true,
	"ThrottlingException": true,
}

// classify turns a client error into one that says what failed and what
// to do, marked permanent where retrying cannot help. Messages are redacted:
// a server may echo request details.
func (s *Source) classify(ctx context.Context, err error) error {
	return classify(ctx, err, s.String(), s.bucket, s.versionID, s.creds)
}

func classify(ctx context.Context, err error, what, bucket, versionID, creds string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		var unknownCA x509.UnknownAuthorityError
		var hostname x509.HostnameError
		var invalid x509.CertificateInvalidError
		if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) {
			return fetch.Permanent(&transportError{
				msg: fmt.Sprintf("%s: %s; trust the endpoint's CA with AWS_CA_BUNDLE or SSL_CERT_FILE, or fix the endpoint name", what, redact.String(err.Error())),
				err: err,
			})
		}
		return &transportError{msg: fmt.Sprintf("%s: %s", what, redact.String(err.Error())), err: err}
	}
	e := &Error{Source: what, Code: er.Code, StatusCode: er.StatusCode, Message: redact.String(er.Message)}
	if e.Code == "" {
		e.Code = http.StatusText(er.StatusCode)
	}
	switch {
	case er.Code == "NoSuchKey":
		e.kind, e.Hint = fetch.ErrNotFound, "check the key in model_ref"
	case er.Code == "NoSuchBucket":
		e.kind, e.Hint = fetch.ErrNotFound, fmt.Sprintf("check the bucket name %q and the endpoint", bucket)
	case er.Code == "NoSuchVersion":
		e.kind, e.Hint = fetch.ErrNotFound, fmt.Sprintf("check version_id %q", versionID)
	case er.Code == "InvalidArgument" && versionID != "":
		e.kind, e.Hint = fetch.ErrNotFound, fmt.Sprintf("version_id %q is not a version of this object; check it", versionID)
	case credentialCodes[er.Code] || er.StatusCode == http.StatusForbidden || er.StatusCode == http.StatusUnauthorized:
		e.kind = ErrAccessDenied
		e.Hint = "check the S3 credentials (in use: " + creds + ") and that they may read this object"
	case er.StatusCode == http.StatusNotFound:
		e.kind, e.Hint = fetch.ErrNotFound, "check the bucket, the key and the endpoint"
	case er.Code == "AuthorizationHeaderMalformed" || er.Code == "InvalidRegion" || er.Code == "PermanentRedirect" || er.StatusCode == http.StatusMovedPermanently:
		e.Hint = "the bucket is in another region or behind another endpoint; set the region (AWS_REGION) or the endpoint"
		if er.Region != "" {
			e.Hint = fmt.Sprintf("the bucket is in region %q; set the region (AWS_REGION) to it", er.Region)
		}
	case er.Code == "RequestTimeTooSkewed":
		e.Hint = "this host's clock is off; fix time synchronization"
	case er.Code == "PreconditionFailed" || er.StatusCode == http.StatusPreconditionFailed,
		er.Code == "InvalidRange" || er.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		e.kind = download.ErrChanged
		return e
	case transientCodes[er.Code] || er.StatusCode >= 500 || er.StatusCode == http.StatusTooManyRequests || er.StatusCode == http.StatusRequestTimeout:
		return e
	}
	return fetch.Permanent(e)
}

// transportError keeps a network failure's cause for errors.Is/As while its
// message is redacted.
type transportError struct {
	msg string
	err error
}

func (e *transportError) Error() string { return e.msg }
func (e *transportError) Unwrap() error { return e.err }
