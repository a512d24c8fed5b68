package redact

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// MinSecretLen is the shortest value Secrets.Add accepts. Shorter values
// would match ordinary words and numbers all over the logs, and a secret
// that short is not worth protecting this way.
const MinSecretLen = 8

// Secrets is a set of known secret values, such as tokens and passwords the
// agent read from files or the environment at start-up, that are redacted
// wherever they appear.
//
// The zero value is an empty set ready to use, and a nil *Secrets redacts
// with String alone. A Secrets is safe for concurrent use; it must not be
// copied after first use.
type Secrets struct {
	// mu serialises Add. Redact never takes it: it loads the replacer,
	// which Add rebuilds and publishes whole, so readers never wait for a
	// writer and never see a half-built set.
	mu       sync.Mutex
	values   []string // guarded by mu
	replacer atomic.Pointer[strings.Replacer]
}

// Add adds v to the set, with surrounding white space (such as the newline
// ending a token file) trimmed. Values shorter than MinSecretLen bytes after
// trimming are ignored. Adding a value twice is harmless.
//
// Add rebuilds the set's replacer, so it is meant for the few values known
// at start-up or on credential rotation, not for every request.
func (s *Secrets) Add(v string) {
	v = strings.TrimSpace(v)
	if len(v) < MinSecretLen {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Contains(s.values, v) {
		return
	}
	s.values = append(s.values, v)

	var forms []string
	for _, v := range s.values {
		for _, f := range []string{v, url.QueryEscape(v), url.PathEscape(v)} {
			if !slices.Contains(forms, f) {
				forms = append(forms, f)
			}
		}
	}
	// At a given position strings.Replacer uses the first old string that
	// matches, in argument order. Longest first means a secret that is a
	// prefix of another cannot leave the other's tail behind.
	slices.SortStableFunc(forms, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, Redacted)
	}
	s.replacer.Store(strings.NewReplacer(pairs...))
}

// Redact returns str with every occurrence of every known secret, plain or
// URL-escaped, replaced by Redacted, and then redacted with String.
func (s *Secrets) Redact(str string) string {
	if s != nil {
		if r := s.replacer.Load(); r != nil {
			str = r.Replace(str)
		}
	}
	return String(str)
}
