package redact_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/redact"
)

// hfToken has the shape of a Hugging Face user access token.
const hfToken = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

func TestURL(t *testing.T) {
	tests := []struct {
		name string
		url  *url.URL
		want string
	}{
		{
			name: "nil",
			url:  nil,
			want: "",
		},
		{
			name: "clean",
			url:  &url.URL{Scheme: "https", Host: "huggingface.co", Path: "/org/model/resolve/main/config.json"},
			want: "https://huggingface.co/org/model/resolve/main/config.json",
		},
		{
			name: "user and password",
			url:  &url.URL{Scheme: "https", User: url.UserPassword("alice", "s3cr3t-pw"), Host: "models.example", Path: "/a.gguf"},
			want: "https://REDACTED@models.example/a.gguf",
		},
		{
			name: "empty password",
			url:  &url.URL{Scheme: "https", User: url.UserPassword("alice", ""), Host: "models.example"},
			want: "https://REDACTED@models.example",
		},
		{
			name: "bare username kept",
			url:  &url.URL{Scheme: "https", User: url.User("alice"), Host: "models.example"},
			want: "https://alice@models.example",
		},
		{
			name: "token as username",
			url:  &url.URL{Scheme: "https", User: url.User(hfToken), Host: "huggingface.co"},
			want: "https://REDACTED@huggingface.co",
		},
		{
			name: "password with reserved characters",
			url:  &url.URL{Scheme: "https", User: url.UserPassword("bob", "p@ss/w?rd#1:x"), Host: "models.example", Path: "/x"},
			want: "https://REDACTED@models.example/x",
		},
		{
			name: "IPv6 host with port",
			url:  &url.URL{Scheme: "http", User: url.UserPassword("u", "pw123456"), Host: "[fe80::1%en0]:8080", Path: "/m", RawQuery: "sig=abc&n=1"},
			want: "http://REDACTED@[fe80::1%25en0]:8080/m?sig=REDACTED&n=1",
		},
		{
			name: "fragment kept",
			url:  &url.URL{Scheme: "https", Host: "example.com", Path: "/docs", RawQuery: "token=abc", Fragment: "section-2"},
			want: "https://example.com/docs?token=REDACTED#section-2",
		},
		{
			name: "token in fragment",
			url:  &url.URL{Scheme: "https", Host: "app.example", Path: "/cb", Fragment: "access_token=abc&state=xyz"},
			want: "https://app.example/cb#access_token=REDACTED&state=xyz",
		},
		{
			name: "relative with query",
			url:  &url.URL{Path: "/v2/token", RawQuery: "access_token=abc&scope=repository:x:pull"},
			want: "/v2/token?access_token=REDACTED&scope=repository:x:pull",
		},
		{
			name: "not modified",
			url:  mustParse(t, "https://u:p@h/x?sig=1"),
			want: "https://REDACTED@h/x?sig=REDACTED",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before string
			if tc.url != nil {
				before = tc.url.String()
			}
			assert.Equal(t, tc.want, redact.URL(tc.url))
			if tc.url != nil {
				assert.Equal(t, before, tc.url.String(), "URL modified its argument")
			}
		})
	}
}

func TestURLString_QueryParameters(t *testing.T) {
	// Every parameter name in this table carries a secret; each is checked
	// in the middle of other parameters, whose order and encoding must
	// survive.
	names := []string{
		"X-Amz-Signature", "x-amz-signature", "X-Amz-Credential", "X-Amz-Security-Token",
		"X-Goog-Signature", "X-Goog-Credential", "Signature", "sig", "SIG",
		"Policy", "Key-Pair-Id", "AWSAccessKeyId", "token", "access_token", "refresh_token",
		"api_key", "apikey", "api-key", "key", "client_secret", "password", "db_password",
		"credentials", "x-custom-token", "MyToken", "session_signature", "X%2DAmz%2DSignature",
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			in := "https://bucket.s3.amazonaws.com/m.bin?a=1&" + name + "=S3CRETvalue%2F42&b=%20x+y"
			want := "https://bucket.s3.amazonaws.com/m.bin?a=1&" + name + "=REDACTED&b=%20x+y"
			assert.Equal(t, want, redact.URLString(in))
		})
	}
}

func TestURLString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{
			name: "S3 presigned",
			in:   "https://b.s3.us-east-1.amazonaws.com/models/llama.gguf?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=deadbeef",
			want: "https://b.s3.us-east-1.amazonaws.com/models/llama.gguf?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Date=20240101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=REDACTED",
		},
		{
			name: "Azure SAS",
			in:   "https://acct.blob.core.windows.net/c/m.bin?sv=2022-11-02&se=2024-01-01T00%3A00%3A00Z&sr=b&sp=r&sig=abc%2Bdef%3D",
			want: "https://acct.blob.core.windows.net/c/m.bin?sv=2022-11-02&se=2024-01-01T00%3A00%3A00Z&sr=b&sp=r&sig=REDACTED",
		},
		{
			name: "CloudFront",
			in:   "https://d111.cloudfront.net/m.bin?Expires=1700000000&Signature=abc~def&Key-Pair-Id=K2JCJMDEHXQW5F",
			want: "https://d111.cloudfront.net/m.bin?Expires=1700000000&Signature=REDACTED&Key-Pair-Id=REDACTED",
		},
		{
			name: "GCS",
			in:   "https://storage.googleapis.com/b/o?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sa%40p.iam&X-Goog-Signature=0a1b",
			want: "https://storage.googleapis.com/b/o?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=REDACTED&X-Goog-Signature=REDACTED",
		},
		{
			name: "userinfo",
			in:   "oci://robot:hunter2hunter2@registry.example:5000/models/llama:1",
			want: "oci://REDACTED@registry.example:5000/models/llama:1",
		},
		{
			name: "IPv6 host",
			in:   "http://[::1]:9000/bucket/key?X-Amz-Signature=abc",
			want: "http://[::1]:9000/bucket/key?X-Amz-Signature=REDACTED",
		},
		{
			name: "fragment",
			in:   "https://example.com/a?token=t0k#frag",
			want: "https://example.com/a?token=REDACTED#frag",
		},
		{
			name: "empty value kept",
			in:   "https://example.com/a?token=&b=1",
			want: "https://example.com/a?token=&b=1",
		},
		{
			name: "parameter without value",
			in:   "https://example.com/a?token&b",
			want: "https://example.com/a?token&b",
		},
		{
			name: "nested presigned URL in a redirect parameter",
			in:   "https://proxy.example/fetch?next=https%3A%2F%2Fb.s3.amazonaws.com%2Fk%3FX-Amz-Signature%3Ddeadbeef&x=1",
			want: "https://proxy.example/fetch?next=https%3A%2F%2Fb.s3.amazonaws.com%2Fk%3FX-Amz-Signature%3DREDACTED&x=1",
		},
		{
			name: "hf token in path",
			in:   "https://example.com/" + hfToken + "/x",
			want: "https://example.com/REDACTED/x",
		},
		{
			name: "clean URL unchanged",
			in:   "https://huggingface.co/meta-llama/Llama-3.1-8B/resolve/main/model-00001-of-00004.safetensors?download=true",
			want: "https://huggingface.co/meta-llama/Llama-3.1-8B/resolve/main/model-00001-of-00004.safetensors?download=true",
		},
		{
			name: "max_tokens is not a secret",
			in:   "https://api.example/v1?max_tokens=512&tokenizer=bpe",
			want: "https://api.example/v1?max_tokens=512&tokenizer=bpe",
		},
		{
			name: "unparseable falls back to String",
			in:   "https://user:pw@host:badport/x Bearer abcdefgh12345",
			want: "https://REDACTED@host:badport/x Bearer REDACTED",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, redact.URLString(tc.in))
		})
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{
			name: "empty",
			in:   "",
			want: "",
		},
		{
			name: "Go http error with stripped password and signature",
			in:   `Get "https://alice:***@b.s3.amazonaws.com/m.gguf?X-Amz-Signature=abc123&X-Amz-Date=20240101T000000Z": dial tcp 10.0.0.1:443: connect: connection refused`,
			want: `Get "https://REDACTED@b.s3.amazonaws.com/m.gguf?X-Amz-Signature=REDACTED&X-Amz-Date=20240101T000000Z": dial tcp 10.0.0.1:443: connect: connection refused`,
		},
		{
			name: "raw password in URL",
			in:   `fetch https://user:pw@host/x?X-Amz-Signature=abc failed`,
			want: `fetch https://REDACTED@host/x?X-Amz-Signature=REDACTED failed`,
		},
		{
			name: "several URLs",
			in:   "redirect from https://a.example/x?token=one to https://b.example/y?sig=two.",
			want: "redirect from https://a.example/x?token=REDACTED to https://b.example/y?sig=REDACTED.",
		},
		{
			name: "URL in parentheses",
			in:   "mirror (https://u:p4ss@mirror.example:8443/m)",
			want: "mirror (https://REDACTED@mirror.example:8443/m)",
		},
		{
			name: "password with raw slash",
			in:   `Get "https://user:pa/ss@host/x"`,
			want: `Get "https://REDACTED@host/x"`,
		},
		{
			name: "password with raw slash and no host",
			in:   "https://user:pa",
			want: "https://REDACTED",
		},
		{
			name: "Authorization header",
			in:   "request headers: Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig Accept: */*",
			want: "request headers: Authorization: Bearer REDACTED Accept: */*",
		},
		{
			name: "Authorization basic",
			in:   "authorization=Basic dXNlcjpwYXNz",
			want: "authorization=Basic REDACTED",
		},
		{
			name: "http.Header formatting",
			in:   "map[Authorization:[Bearer abc] X-Api-Key:[k3y-value] Accept:[*/*]]",
			want: "map[Authorization:[Bearer REDACTED] X-Api-Key:[REDACTED] Accept:[*/*]]",
		},
		{
			name: "bearer alone",
			in:   "using Bearer abc.def-ghi for registry",
			want: "using Bearer REDACTED for registry",
		},
		{
			name: "bearer prose kept",
			in:   "registry: missing bearer token",
			want: "registry: missing bearer token",
		},
		{
			name: "bearer challenge kept",
			in:   `Www-Authenticate: Bearer realm="https://auth.example/token",service="registry.example"`,
			want: `Www-Authenticate: Bearer realm="https://auth.example/token",service="registry.example"`,
		},
		{
			name: "hf token",
			in:   "401 for token " + hfToken + ", check HF_TOKEN",
			want: "401 for token REDACTED, check HF_TOKEN",
		},
		{
			name: "hf token glued to text",
			in:   "x" + hfToken + "y",
			want: "xREDACTED",
		},
		{
			name: "short hf_ kept",
			in:   "repo hf_internal_testing",
			want: "repo hf_internal_testing",
		},
		{
			name: "JSON token response",
			in:   `decode token response: {"token":"eyJabc","access_token":"eyJdef","expires_in":300}`,
			want: `decode token response: {"token":"REDACTED","access_token":"REDACTED","expires_in":300}`,
		},
		{
			name: "quoted JSON in error",
			in:   `unexpected body "{\"client_secret\":\"ab\\/cd\",\"n\":1}"`,
			want: `unexpected body "{\"client_secret\":\"REDACTED\",\"n\":1}"`,
		},
		{
			name: "key=value",
			in:   `config: hf_token=abc123 password="two words" secret='x' n=1`,
			want: `config: hf_token=REDACTED password="REDACTED" secret='REDACTED' n=1`,
		},
		{
			name: "struct formatting",
			in:   "{Name:llama Token:abc123 Tokens:4096}",
			want: "{Name:llama Token:REDACTED Tokens:4096}",
		},
		{
			name: "prose colon kept",
			in:   "read token: open /run/secrets/hf: no such file or directory",
			want: "read token: open /run/secrets/hf: no such file or directory",
		},
		{
			name: "already redacted is stable",
			in:   "https://REDACTED@h/x?sig=REDACTED Authorization: Bearer REDACTED",
			want: "https://REDACTED@h/x?sig=REDACTED Authorization: Bearer REDACTED",
		},
		{
			name: "clean text",
			in:   "fetched meta-llama/Llama-3.1-8B model-00001-of-00004.safetensors (4.9 GB) in 41s",
			want: "fetched meta-llama/Llama-3.1-8B model-00001-of-00004.safetensors (4.9 GB) in 41s",
		},
		{
			name: "clean URLs",
			in:   `Get "https://huggingface.co/api/models/org/m/revision/main?blobs=true": 503 Service Unavailable; retry http://[::1]:8080/x#top`,
			want: `Get "https://huggingface.co/api/models/org/m/revision/main?blobs=true": 503 Service Unavailable; retry http://[::1]:8080/x#top`,
		},
		{
			name: "clean metadata",
			in:   "gguf: tokenizer.ggml.tokens=151936 max_tokens=4096 context_length=32768",
			want: "gguf: tokenizer.ggml.tokens=151936 max_tokens=4096 context_length=32768",
		},
		{
			name: "invalid UTF-8",
			in:   "\xff\xfe https://u:p@h/\xff?sig=\xfe",
			want: "\xff\xfe https://REDACTED@h/\xff?sig=REDACTED",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := redact.String(tc.in)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, got, redact.String(got), "redacting twice changed the result")
		})
	}
}

// TestString_NetHTTPError redacts the error a real net/http client returns
// for a request to a closed loopback port.
func TestString_NetHTTPError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	client := &http.Client{}
	resp, err := client.Get("http://alice:pa55word@" + addr + "/m.gguf?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=deadbeef&part=1")
	if resp != nil {
		resp.Body.Close()
	}
	require.Error(t, err)

	got := redact.String(err.Error())
	for _, secret := range []string{"pa55word", "alice", "AKIAEXAMPLE", "deadbeef"} {
		assert.NotContains(t, got, secret)
	}
	assert.Contains(t, got, "http://REDACTED@"+addr+"/m.gguf?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&part=1")
	assert.Equal(t, got, redact.Err(err))
}

func TestErr(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "nil", err: nil, want: ""},
		{name: "clean", err: errors.New("disk full"), want: "disk full"},
		{
			name: "wrapped URL",
			err:  fmt.Errorf("fetch m: %w", &url.Error{Op: "Get", URL: "https://h/x?token=abc", Err: errors.New("EOF")}),
			want: `fetch m: Get "https://h/x?token=REDACTED": EOF`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, redact.Err(tc.err))
		})
	}
}

func TestString_LongInput(t *testing.T) {
	// Deeply nested URLs and long runs must stay linear and bounded.
	nested := strings.Repeat("https://h/?a=", 2000) + "https://u:SECRETPW@h/"
	got := redact.String(nested)
	assert.NotContains(t, got, "SECRETPW")

	long := strings.Repeat("a=", 50000) + "token=SECRETTOKEN"
	assert.NotContains(t, redact.String(long), "SECRETTOKEN")
}

func TestString_CleanDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "prose", in: "fetched meta-llama/Llama-3.1-8B model-00001-of-00004.safetensors (4.9 GB) in 41s"},
		{name: "URL", in: `Get "https://huggingface.co/org/m/resolve/main/config.json?download=true#x": EOF`},
		{name: "IPv6 URL", in: "listening on http://[::1]:9100/metrics"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(100, func() {
				if redact.String(tc.in) != tc.in {
					t.Fatal("clean string changed")
				}
			})
			assert.Zero(t, allocs)
		})
	}
}

func BenchmarkString_Clean(b *testing.B) {
	s := "fetched meta-llama/Llama-3.1-8B model-00001-of-00004.safetensors (4.9 GB) in 41s, sha256 verified"
	b.ReportAllocs()
	for b.Loop() {
		if redact.String(s) != s {
			b.Fatal("clean string changed")
		}
	}
}

func BenchmarkString_CleanURL(b *testing.B) {
	s := `Get "https://huggingface.co/meta-llama/Llama-3.1-8B/resolve/main/config.json?download=true": context deadline exceeded`
	b.ReportAllocs()
	for b.Loop() {
		if redact.String(s) != s {
			b.Fatal("clean string changed")
		}
	}
}

func BenchmarkString_Secret(b *testing.B) {
	s := `Get "https://alice:***@b.s3.amazonaws.com/m.gguf?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc123": dial tcp: connection refused`
	b.ReportAllocs()
	for b.Loop() {
		_ = redact.String(s)
	}
}
