package verify

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Algo names a digest algorithm.
type Algo string

// SHA256 is the only algorithm the agent verifies with. Anything else is
// rejected with ErrUnknownAlgo rather than skipped: a digest that cannot be
// checked must never look like one that passed.
const SHA256 Algo = "sha256"

// Sentinel errors returned (wrapped) by ParseDigest and Digest.Validate.
var (
	// ErrUnknownAlgo means the digest names an algorithm the agent cannot check.
	ErrUnknownAlgo = errors.New("unknown digest algorithm")
	// ErrMalformedDigest means the digest value is not valid for its algorithm.
	ErrMalformedDigest = errors.New("malformed digest")
	// ErrDigestMismatch means the bytes on disk hash to something other than the
	// expected digest.
	ErrDigestMismatch = errors.New("digest mismatch")
)

// Digest is an algorithm and a lower-case hex value. The zero Digest means
// "no digest".
type Digest struct {
	Algo  Algo   `json:"algo"`
	Value string `json:"value"`
}

// NewDigest validates algo and value and returns the digest with its value
// lower-cased. Upper-case hex is accepted because operators paste digests from
// many tools; it is stored lower-case so that one digest has one spelling.
func NewDigest(algo, value string) (Digest, error) {
	d := Digest{Algo: Algo(strings.ToLower(strings.TrimSpace(algo))), Value: strings.ToLower(strings.TrimSpace(value))}
	if err := d.Validate(); err != nil {
		return Digest{}, err
	}
	return d, nil
}

// ParseDigest parses "sha256:HEX". The hex may be in either case.
func ParseDigest(s string) (Digest, error) {
	algo, value, ok := strings.Cut(s, ":")
	if !ok {
		return Digest{}, fmt.Errorf("%w: %q: want ALGO:HEX, e.g. sha256:<64 hex digits>", ErrMalformedDigest, s)
	}
	return NewDigest(algo, value)
}

// Validate reports whether d names a known algorithm and a well-formed value.
// It returns an error wrapping ErrUnknownAlgo or ErrMalformedDigest.
func (d Digest) Validate() error {
	switch d.Algo {
	case SHA256:
	case "":
		return fmt.Errorf("%w: algorithm is empty; use %q", ErrUnknownAlgo, SHA256)
	default:
		return fmt.Errorf("%w %q: only %q is supported", ErrUnknownAlgo, string(d.Algo), SHA256)
	}
	if len(d.Value) != 64 {
		return fmt.Errorf("%w: %s value has %d characters, want 64 hex digits", ErrMalformedDigest, d.Algo, len(d.Value))
	}
	if _, err := hex.DecodeString(d.Value); err != nil {
		return fmt.Errorf("%w: %s value is not hex: %q", ErrMalformedDigest, d.Algo, d.Value)
	}
	return nil
}

// IsZero reports whether d is the zero Digest.
func (d Digest) IsZero() bool { return d.Algo == "" && d.Value == "" }

// String returns "algo:value", or "" for the zero Digest.
func (d Digest) String() string {
	if d.IsZero() {
		return ""
	}
	return string(d.Algo) + ":" + d.Value
}

// Equal reports whether two digests name the same algorithm and value,
// ignoring the case of the hex value.
func (d Digest) Equal(o Digest) bool {
	return d.Algo == o.Algo && strings.EqualFold(d.Value, o.Value)
}

// MismatchError is returned when bytes hash to a digest other than the one
// expected. It wraps ErrDigestMismatch and carries both digests so that the
// message always shows them.
type MismatchError struct {
	Path     string
	Expected Digest
	Actual   Digest
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("digest mismatch for %s: expected %s, got %s; the file differs from what the spec declares: replace the file or correct expected_digest", e.Path, e.Expected, e.Actual)
}

// Unwrap lets errors.Is(err, ErrDigestMismatch) match.
func (e *MismatchError) Unwrap() error { return ErrDigestMismatch }
