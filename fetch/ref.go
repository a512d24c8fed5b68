package fetch

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"unicode"
)

// Scheme is the kind of source a reference points at.
type Scheme string

// Reference schemes.
const (
	SchemeFile  Scheme = "file"
	SchemeHF    Scheme = "hf"
	SchemeHTTPS Scheme = "https"
	SchemeHTTP  Scheme = "http"
	SchemeS3    Scheme = "s3"
	SchemeOCI   Scheme = "oci"
)

// DefaultHFRevision is the revision an hf: reference without @REVISION means.
const DefaultHFRevision = "main"

// ErrInvalidRef is wrapped by every *RefError.
var ErrInvalidRef = errors.New("invalid model reference")

// RefError reports a reference that cannot be parsed. Input is quoted with
// any secret (URL userinfo password, query string) removed.
type RefError struct {
	Input  string
	Reason string
}

func (e *RefError) Error() string {
	return fmt.Sprintf("invalid model_ref %q: %s", e.Input, e.Reason)
}

// Unwrap lets errors.Is(err, ErrInvalidRef) match.
func (e *RefError) Unwrap() error { return ErrInvalidRef }

// Ref is a parsed model reference. Only the fields of its Scheme are set.
type Ref struct {
	Scheme Scheme

	// Path is the cleaned absolute path of a file reference.
	Path string

	// Org, Repo, File and Revision describe an hf: reference. File is empty
	// for a whole-repository reference; Revision defaults to "main".
	Org, Repo, File, Revision string

	// URL is an http(s) reference with its scheme and host lower-cased. It
	// may carry userinfo or a signed query: never log it, log ID instead.
	URL *url.URL

	// Bucket and Key describe an s3: reference; a Key ending in "/" is a
	// prefix (a multi-file model).
	Bucket, Key string

	// Registry, Repository, Tag and Digest describe an oci: reference;
	// exactly one of Tag and Digest is set.
	Registry, Repository, Tag, Digest string
}

// ID returns the normalized reference: the one identity of a model however
// its reference was written. It never contains credentials or a query
// string, so it is safe to log and to store.
func (r Ref) ID() string {
	switch r.Scheme {
	case SchemeFile:
		return "file:" + r.Path
	case SchemeHF:
		p := "hf:" + r.Org + "/" + r.Repo
		if r.File != "" {
			p += "/" + r.File
		}
		return p + "@" + r.Revision
	case SchemeHTTP, SchemeHTTPS:
		return string(r.Scheme) + "://" + r.URL.Host + r.URL.EscapedPath()
	case SchemeS3:
		return "s3://" + r.Bucket + "/" + r.Key
	case SchemeOCI:
		id := "oci://" + r.Registry + "/" + r.Repository
		if r.Digest != "" {
			return id + "@" + r.Digest
		}
		return id + ":" + r.Tag
	}
	return ""
}

// String returns ID.
func (r Ref) String() string { return r.ID() }

// DefaultName returns the model name to use when a spec gives none: the last
// path element without its extension.
func (r Ref) DefaultName() string {
	var base string
	switch r.Scheme {
	case SchemeFile:
		base = filepath.Base(r.Path)
	case SchemeHF:
		base = r.Repo
		if r.File != "" {
			base = path.Base(r.File)
		}
	case SchemeHTTP, SchemeHTTPS:
		base = path.Base(r.URL.Path)
	case SchemeS3:
		base = path.Base(strings.TrimSuffix(r.Key, "/"))
	case SchemeOCI:
		base = path.Base(r.Repository)
	}
	if ext := path.Ext(base); ext != "" && ext != base {
		base = strings.TrimSuffix(base, ext)
	}
	return base
}

// ParseRef parses a model reference. Relative paths are resolved against
// baseDir: the spec file's directory, or the working directory for the
// one-shot command. baseDir must be absolute when s may be relative.
//
// Errors wrap ErrInvalidRef (as a *RefError).
func ParseRef(s, baseDir string) (Ref, error) {
	ref, err := parseRef(s, baseDir)
	if err != nil {
		return Ref{}, err
	}
	// Percent-escapes decode too: "http://%C2%80/x" names a host holding
	// a control character.
	if strings.IndexFunc(ref.ID(), unicode.IsControl) >= 0 {
		return Ref{}, &RefError{Input: redact(strings.TrimSpace(s)), Reason: "decodes to a control character (a newline, tab or escape)"}
	}
	return ref, nil
}

func parseRef(s, baseDir string) (Ref, error) {
	if strings.ContainsRune(s, 0) {
		return Ref{}, &RefError{Input: redact(s), Reason: "contains a NUL byte"}
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return Ref{}, &RefError{Input: s, Reason: "empty; give a path, file:/abs/path, hf:ORG/REPO/FILE, https://, s3:// or oci:// reference"}
	}
	// An id is logged, stored and shown: a newline or an escape sequence in
	// it would forge log lines or garble a terminal.
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return Ref{}, &RefError{Input: redact(s), Reason: "contains a control character (a newline, tab or escape)"}
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok && isSchemeName(scheme) {
		switch Scheme(strings.ToLower(scheme)) {
		case SchemeHTTP, SchemeHTTPS:
			return parseHTTP(s)
		case SchemeS3:
			return parseS3(s, rest)
		case SchemeOCI:
			return parseOCI(s, rest)
		case SchemeFile:
			return parseFile(s, "/"+strings.TrimLeft(rest, "/"), baseDir)
		default:
			return Ref{}, &RefError{Input: redact(s), Reason: fmt.Sprintf("unknown scheme %q; use a path, file:, hf:, https://, s3:// or oci://", scheme)}
		}
	}
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "file:"):
		return parseFile(s, s[len("file:"):], baseDir)
	case strings.HasPrefix(lower, "hf:"):
		return parseHF(s, s[len("hf:"):])
	}
	return parseFile(s, s, baseDir)
}

func isSchemeName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

func parseFile(input, p, baseDir string) (Ref, error) {
	if p == "" {
		return Ref{}, &RefError{Input: input, Reason: "file: with no path; write file:/absolute/path or a path relative to the spec file"}
	}
	if !filepath.IsAbs(p) {
		if baseDir == "" || !filepath.IsAbs(baseDir) {
			return Ref{}, &RefError{Input: input, Reason: "relative path with no absolute base directory to resolve it against"}
		}
		p = filepath.Join(baseDir, p)
	}
	p = filepath.Clean(p)
	// The id must name this path when parsed again, and parsing trims white
	// space; the base directory must not smuggle in control characters.
	if strings.IndexFunc(p, unicode.IsControl) >= 0 || strings.TrimRightFunc(p, unicode.IsSpace) != p {
		return Ref{}, &RefError{Input: input, Reason: fmt.Sprintf("path %q contains a control character or ends in white space", p)}
	}
	return Ref{Scheme: SchemeFile, Path: p}, nil
}

func parseHF(input, rest string) (Ref, error) {
	const want = "; want hf:ORG/REPO[/PATH/IN/REPO][@REVISION]"
	body, rev, hasRev := strings.Cut(rest, "@")
	if hasRev && rev == "" {
		return Ref{}, &RefError{Input: input, Reason: "empty revision after @" + want}
	}
	if hasRev && strings.ContainsAny(rev, "@ ") {
		return Ref{}, &RefError{Input: input, Reason: "revision may not contain '@' or spaces" + want}
	}
	parts := strings.Split(body, "/")
	if len(parts) < 2 {
		return Ref{}, &RefError{Input: input, Reason: "missing repository" + want}
	}
	org, repo := parts[0], parts[1]
	if org == "" {
		return Ref{}, &RefError{Input: input, Reason: "empty organization" + want}
	}
	if repo == "" {
		return Ref{}, &RefError{Input: input, Reason: "empty repository" + want}
	}
	for _, seg := range []string{org, repo} {
		if !validHFName(seg) {
			return Ref{}, &RefError{Input: input, Reason: fmt.Sprintf("%q is not a valid organization or repository name (letters, digits, '-', '_', '.')", seg) + want}
		}
	}
	file := strings.Join(parts[2:], "/")
	if file != "" {
		for _, seg := range parts[2:] {
			if seg == "" || seg == "." || seg == ".." {
				return Ref{}, &RefError{Input: input, Reason: fmt.Sprintf("path in repository %q has an empty, '.' or '..' element", file) + want}
			}
		}
	}
	if !hasRev {
		rev = DefaultHFRevision
	}
	return Ref{Scheme: SchemeHF, Org: org, Repo: repo, File: file, Revision: rev}, nil
}

func validHFName(s string) bool {
	if s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

func parseHTTP(input string) (Ref, error) {
	u, err := url.Parse(input)
	if err != nil {
		return Ref{}, &RefError{Input: redact(input), Reason: "not a valid URL"}
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Hostname() == "" {
		return Ref{}, &RefError{Input: redact(input), Reason: "URL has no host"}
	}
	u.Host = normalizeHost(u.Scheme, u.Host)
	u.Fragment = ""
	if u.Path == "" || strings.HasSuffix(u.Path, "/") {
		return Ref{}, &RefError{Input: redact(input), Reason: "URL must name a file, not a directory"}
	}
	return Ref{Scheme: Scheme(u.Scheme), URL: u}, nil
}

// normalizeHost lower-cases the host and drops the scheme's default port, so
// that https://Host:443/x and https://host/x are one model.
func normalizeHost(scheme, host string) string {
	host = strings.ToLower(host)
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		return host
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return host
}

func parseS3(input, rest string) (Ref, error) {
	bucket, key, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return Ref{}, &RefError{Input: redact(input), Reason: "missing bucket; want s3://BUCKET/KEY or s3://BUCKET/PREFIX/"}
	}
	if key == "" {
		return Ref{}, &RefError{Input: redact(input), Reason: "missing key; want s3://BUCKET/KEY or s3://BUCKET/PREFIX/"}
	}
	if strings.ContainsAny(bucket, "?#") || strings.ContainsAny(key, "?#") {
		return Ref{}, &RefError{Input: redact(input), Reason: "query strings and fragments are not allowed in s3:// references"}
	}
	return Ref{Scheme: SchemeS3, Bucket: strings.ToLower(bucket), Key: key}, nil
}

func parseOCI(input, rest string) (Ref, error) {
	const want = "; want oci://REGISTRY/REPOSITORY:TAG or oci://REGISTRY/REPOSITORY@sha256:HEX"
	registry, repo, ok := strings.Cut(rest, "/")
	if !ok || registry == "" || repo == "" {
		return Ref{}, &RefError{Input: input, Reason: "missing registry or repository" + want}
	}
	r := Ref{Scheme: SchemeOCI, Registry: strings.ToLower(registry)}
	if name, dgst, ok := strings.Cut(repo, "@"); ok {
		if !strings.HasPrefix(dgst, "sha256:") || len(dgst) != len("sha256:")+64 {
			return Ref{}, &RefError{Input: input, Reason: "digest must be sha256: followed by 64 hex digits" + want}
		}
		if _, err := hex.DecodeString(dgst[len("sha256:"):]); err != nil {
			return Ref{}, &RefError{Input: input, Reason: "digest must be sha256: followed by 64 hex digits" + want}
		}
		r.Repository, r.Digest = name, strings.ToLower(dgst)
	} else if i := strings.LastIndex(repo, ":"); i >= 0 {
		r.Repository, r.Tag = repo[:i], repo[i+1:]
		if r.Tag == "" {
			return Ref{}, &RefError{Input: input, Reason: "empty tag" + want}
		}
	} else {
		return Ref{}, &RefError{Input: input, Reason: "missing tag or digest (a mutable default such as 'latest' is never assumed)" + want}
	}
	if r.Repository == "" || r.Repository != strings.ToLower(r.Repository) {
		return Ref{}, &RefError{Input: input, Reason: "repository must be non-empty and lower-case" + want}
	}
	return r, nil
}

// redact removes URL userinfo passwords and query strings from s so that an
// error message quoting a reference never carries a secret.
func redact(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i] + "?REDACTED"
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
			s = scheme + "://REDACTED@" + rest[at+1:]
		}
	}
	return s
}
