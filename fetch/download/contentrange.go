package download

import (
	"strconv"
	"strings"
)

// ParseContentRange parses the Content-Range of a satisfied range request,
// "bytes START-END/TOTAL" (TOTAL may be "*", returned as -1), as every
// source's ranged reads check it: the numbers are plain digits, START <=
// END, and END < TOTAL when TOTAL is known.
func ParseContentRange(v string) (start, end, total int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	span, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(span, "-")
	if !found {
		return 0, 0, 0, false
	}
	if start, ok = decimal(a); !ok {
		return 0, 0, 0, false
	}
	if end, ok = decimal(b); !ok || end < start {
		return 0, 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, ok = decimal(tot); !ok || total <= end {
			return 0, 0, 0, false
		}
	}
	return start, end, total, true
}

// decimal parses a non-negative number written with digits only, as HTTP
// writes byte positions: strconv alone would also accept a sign ("+5",
// "-0").
func decimal(s string) (int64, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
