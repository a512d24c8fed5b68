package redact_test

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/model-provisioner/model-provisioner/redact"
)

func TestSecrets_Redact(t *testing.T) {
	const pw = "p@ss word/+=&x"
	tests := []struct {
		name string
		add  []string
		in   string
		want string
	}{
		{
			name: "zero value",
			in:   "nothing known yet",
			want: "nothing known yet",
		},
		{
			name: "plain occurrence",
			add:  []string{"opaque-registry-token-1"},
			in:   "login with opaque-registry-token-1 failed",
			want: "login with REDACTED failed",
		},
		{
			name: "every occurrence",
			add:  []string{"zz9plural"},
			in:   "zz9plural,zz9plural zz9plural",
			want: "REDACTED,REDACTED REDACTED",
		},
		{
			name: "whitespace trimmed",
			add:  []string{"  rotated-secret-42\n"},
			in:   "value rotated-secret-42.",
			want: "value REDACTED.",
		},
		{
			name: "query-escaped occurrence",
			add:  []string{pw},
			in:   "user=" + url.QueryEscape(pw) + " and " + pw,
			want: "user=REDACTED and REDACTED",
		},
		{
			name: "path-escaped occurrence",
			add:  []string{pw},
			in:   "/v1/" + url.PathEscape(pw) + "/x",
			want: "/v1/REDACTED/x",
		},
		{
			name: "short values ignored",
			add:  []string{"main", "1234567", "        "},
			in:   "main 1234567",
			want: "main 1234567",
		},
		{
			name: "prefix of another secret",
			add:  []string{"abcdefgh", "abcdefgh-longer"},
			in:   "abcdefgh-longer abcdefgh",
			want: "REDACTED REDACTED",
		},
		{
			name: "added twice",
			add:  []string{"duplicated-1", "duplicated-1"},
			in:   "duplicated-1",
			want: "REDACTED",
		},
		{
			name: "patterns still applied",
			add:  []string{"unrelated-value"},
			in:   "https://u:pw@h/?sig=1",
			want: "https://REDACTED@h/?sig=REDACTED",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s redact.Secrets
			for _, v := range tc.add {
				s.Add(v)
			}
			assert.Equal(t, tc.want, s.Redact(tc.in))
		})
	}
}

func TestSecrets_Nil(t *testing.T) {
	var s *redact.Secrets
	assert.Equal(t, "Bearer REDACTED", s.Redact("Bearer abcdef123456"))
}

// TestSecrets_Concurrent adds secrets while other goroutines redact; run
// with -race.
func TestSecrets_Concurrent(t *testing.T) {
	var s redact.Secrets
	const n = 50
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			s.Add(fmt.Sprintf("secret-value-%03d", i))
		}
	})
	for range 4 {
		wg.Go(func() {
			for i := range n {
				_ = s.Redact(fmt.Sprintf("log line with secret-value-%03d", i))
			}
		})
	}
	wg.Wait()

	for i := range n {
		v := fmt.Sprintf("secret-value-%03d", i)
		got := s.Redact("x " + v + " y")
		assert.False(t, strings.Contains(got, v), "secret %d survived: %q", i, got)
	}
}

func BenchmarkSecrets_Redact(b *testing.B) {
	var s redact.Secrets
	s.Add("hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789")
	s.Add("registry-password-1")
	line := "fetched meta-llama/Llama-3.1-8B model-00001-of-00004.safetensors (4.9 GB) in 41s, sha256 verified"
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Redact(line)
	}
}
