package verify

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseDigest checks ParseDigest against an independent statement of
// what it accepts: "sha256" in any case and 64 hex digits in any case, each
// with surrounding white space allowed. Accepted digests are stored
// lower-case and round-trip through String; one hex digit fewer or more, or
// another algorithm, is rejected with the matching sentinel.
func FuzzParseDigest(f *testing.F) {
	const hex64 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	for _, s := range []string{
		"sha256:" + hex64,
		"SHA256:" + strings.ToUpper(hex64),
		" sha256 : " + hex64 + " ",
		"sha256:" + hex64[:63],
		"sha256:" + hex64 + "0",
		"sha256:" + hex64[:63] + "g",
		"sha512:" + hex64 + hex64,
		"md5:900150983cd24fb0d6963f7d28e17f72",
		"sha256" + hex64,
		":" + hex64,
		"sha256:",
		"",
		"sha256:" + hex64 + ":" + hex64,
		"sha256:\u212a" + hex64[1:],
		"\u017fha256:" + hex64,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		algo, value, hasColon := strings.Cut(s, ":")
		want := hasColon && isSHA256Name(strings.TrimSpace(algo)) && isHex64(strings.TrimSpace(value))
		if err != nil {
			if want {
				t.Fatalf("ParseDigest(%q) rejected a valid digest: %v", s, err)
			}
			if !errors.Is(err, ErrMalformedDigest) && !errors.Is(err, ErrUnknownAlgo) {
				t.Fatalf("ParseDigest(%q): error %v wraps neither ErrMalformedDigest nor ErrUnknownAlgo", s, err)
			}
			if d != (Digest{}) {
				t.Fatalf("ParseDigest(%q) returned %+v with error %v", s, d, err)
			}
			return
		}
		if !want {
			t.Fatalf("ParseDigest(%q) = %+v, want an error", s, d)
		}
		if d.Algo != SHA256 || len(d.Value) != 64 || d.Value != strings.ToLower(strings.TrimSpace(value)) {
			t.Fatalf("ParseDigest(%q) = %+v, want sha256 and the lower-cased value", s, d)
		}
		for _, c := range []byte(d.Value) {
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				t.Fatalf("ParseDigest(%q): value %q is not lower-case hex", s, d.Value)
			}
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("ParseDigest(%q) = %+v, which does not validate: %v", s, d, err)
		}

		// Round trip through the canonical spelling.
		str := d.String()
		if str != "sha256:"+d.Value {
			t.Fatalf("String() = %q", str)
		}
		again, err := ParseDigest(str)
		if err != nil || again != d {
			t.Fatalf("ParseDigest(%q) = %+v, %v; want %+v", str, again, err, d)
		}
		if !again.Equal(d) || !d.Equal(Digest{Algo: SHA256, Value: strings.ToUpper(d.Value)}) {
			t.Fatalf("Equal does not hold between spellings of %s", str)
		}
		if nd, err := NewDigest(string(d.Algo), strings.ToUpper(d.Value)); err != nil || nd != d {
			t.Fatalf("NewDigest(sha256, upper-case %s) = %+v, %v", d.Value, nd, err)
		}

		// One digit short or over, or another algorithm, is refused.
		for _, bad := range []string{"sha256:" + d.Value[:63], "sha256:" + d.Value + "0", "sha256:" + d.Value + d.Value} {
			if _, err := ParseDigest(bad); !errors.Is(err, ErrMalformedDigest) {
				t.Fatalf("ParseDigest(%q) = %v, want ErrMalformedDigest", bad, err)
			}
		}
		for _, algo := range []string{"sha512", "md5", "sha1", "sha-256", "sha256 x", ""} {
			bad := algo + ":" + d.Value
			if _, err := ParseDigest(bad); !errors.Is(err, ErrUnknownAlgo) {
				t.Fatalf("ParseDigest(%q) = %v, want ErrUnknownAlgo", bad, err)
			}
		}
	})
}

// isSHA256Name reports whether s is "sha256" in any ASCII case. Unicode
// case folding would also match "ſha256", which names no algorithm.
func isSHA256Name(s string) bool {
	if len(s) != len("sha256") {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != "sha256"[i] {
			return false
		}
	}
	return true
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}
