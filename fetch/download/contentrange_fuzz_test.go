package download

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseContentRange checks ParseContentRange against RFC 9110's
// Content-Range for a satisfied range, "bytes FIRST-LAST/COMPLETE" with
// COMPLETE possibly "*" (reported as -1): every accepted header has
// 0 <= FIRST <= LAST and LAST < COMPLETE when COMPLETE is known, each number
// is plain decimal digits, and formatting the result parses back to it.
func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{
		"bytes 0-0/1",
		"bytes 0-99/100",
		"bytes 100-199/*",
		"bytes 5-4/10",
		"bytes 0-9/9",
		"bytes 0-9/10",
		"bytes */100",
		"bytes 0-9223372036854775806/9223372036854775807",
		"bytes 0-9223372036854775807/*",
		"bytes 0-99/9223372036854775808",
		"bytes +0-+9/+10",
		"bytes 0--0/10",
		"bytes 00-09/010",
		"bytes -1-5/10",
		"bytes 0-5",
		"bytes=0-5/10",
		"Bytes 0-5/10",
		"bytes  0-5/10",
		"bytes 0-5/10 ",
		"bytes 0_1-5/10",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		start, end, total, ok := ParseContentRange(v)
		if !ok {
			if start != 0 || end != 0 || total != 0 {
				t.Fatalf("ParseContentRange(%q) rejected but returned %d, %d, %d", v, start, end, total)
			}
			return
		}
		if start < 0 || end < start || (total != -1 && total <= end) || total < -1 {
			t.Fatalf("ParseContentRange(%q) = %d-%d/%d: want 0 <= start <= end < total (or total -1)", v, start, end, total)
		}
		rest, _ := strings.CutPrefix(v, "bytes ")
		span, complete, _ := strings.Cut(rest, "/")
		first, last, _ := strings.Cut(span, "-")
		for _, n := range []string{first, last, complete} {
			if n == "*" && n == complete {
				continue
			}
			if !digits(n) {
				t.Fatalf("ParseContentRange(%q) accepted %q, which is not a decimal number", v, n)
			}
		}
		formatted := formatContentRange(start, end, total)
		s2, e2, t2, ok := ParseContentRange(formatted)
		if !ok || s2 != start || e2 != end || t2 != total {
			t.Fatalf("ParseContentRange(%q) = %d-%d/%d, formatted %q parses as %d-%d/%d, %v", v, start, end, total, formatted, s2, e2, t2, ok)
		}
		// Leading zeros are valid but not canonical; otherwise the header
		// is exactly what formatting its numbers gives.
		if !leadingZero(first) && !leadingZero(last) && !leadingZero(complete) && formatted != v {
			t.Fatalf("ParseContentRange(%q) = %d-%d/%d, which formats as %q", v, start, end, total, formatted)
		}
	})
}

// formatContentRange writes what a server sends for bytes start..end of a
// total-byte object (-1: unknown).
func formatContentRange(start, end, total int64) string {
	complete := "*"
	if total >= 0 {
		complete = strconv.FormatInt(total, 10)
	}
	return "bytes " + strconv.FormatInt(start, 10) + "-" + strconv.FormatInt(end, 10) + "/" + complete
}

func leadingZero(s string) bool { return len(s) > 1 && s[0] == '0' }

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
