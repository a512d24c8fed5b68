package redact_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"testing/slogtest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/redact"
)

// registryToken is registered with Secrets; it has no recognisable shape.
const registryToken = "opaque-registry-t0ken-value"

// stringer is a fmt.Stringer whose JSON form would show a field that its
// String method hides.
type stringer struct{ Token string }

func (s stringer) String() string { return "creds(" + s.Token + ")" }

// valuer is a slog.LogValuer that resolves to a group.
type valuer struct{}

func (valuer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", "https://h/?sig=valuer-sig"))
}

type config struct {
	Name string
	Pass string
}

func TestHandler(t *testing.T) {
	tests := []struct {
		name   string
		log    func(l *slog.Logger)
		secret string
		want   string // a substring of the text output
	}{
		{
			name:   "message",
			log:    func(l *slog.Logger) { l.Info("fetch https://u:msgpass@h/x failed") },
			secret: "msgpass",
			want:   "https://REDACTED@h/x",
		},
		{
			name:   "message with known secret",
			log:    func(l *slog.Logger) { l.Info("login as " + registryToken) },
			secret: registryToken,
			want:   "login as REDACTED",
		},
		{
			name:   "string attr",
			log:    func(l *slog.Logger) { l.Info("fetch", "src", "https://h/m?X-Amz-Signature=attrsig") },
			secret: "attrsig",
			want:   "X-Amz-Signature=REDACTED",
		},
		{
			name: "error attr",
			log: func(l *slog.Logger) {
				err := fmt.Errorf("fetch: %w", &url.Error{Op: "Get", URL: "https://h/?token=errtok", Err: errors.New("EOF")})
				l.Error("failed", "err", err)
			},
			secret: "errtok",
			want:   "token=REDACTED",
		},
		{
			name:   "url attr",
			log:    func(l *slog.Logger) { l.Info("fetch", "url", mustParseURL("https://u:urlpass@h/x?sig=urlsig")) },
			secret: "urlpass",
			want:   "https://REDACTED@h/x?sig=REDACTED",
		},
		{
			name:   "url value attr",
			log:    func(l *slog.Logger) { l.Info("fetch", "url", *mustParseURL("https://h/x?sig=urlvalsig")) },
			secret: "urlvalsig",
			want:   "sig=REDACTED",
		},
		{
			name:   "stringer attr",
			log:    func(l *slog.Logger) { l.Info("auth", "creds", stringer{Token: "Bearer strtok123"}) },
			secret: "strtok123",
			want:   "creds(Bearer REDACTED)",
		},
		{
			name:   "nil stringer",
			log:    func(l *slog.Logger) { l.Info("auth", "creds", (*url.URL)(nil), "e", error(nil)) },
			secret: "\x00",
			want:   "auth",
		},
		{
			name: "group attr",
			log: func(l *slog.Logger) {
				l.Info("fetch", slog.Group("src", slog.String("url", "https://h/?sig=groupsig"), slog.Int("n", 1)))
			},
			secret: "groupsig",
			want:   "sig=REDACTED",
		},
		{
			name:   "secret key",
			log:    func(l *slog.Logger) { l.Info("config", "hf_token", "plainvalue", "Registry-Password", 12345678) },
			secret: "plainvalue",
			want:   "hf_token=REDACTED",
		},
		{
			name:   "secret key number",
			log:    func(l *slog.Logger) { l.Info("config", "Registry-Password", 87654321) },
			secret: "87654321",
			want:   "Registry-Password=REDACTED",
		},
		{
			name: "secret group",
			log: func(l *slog.Logger) {
				l.Info("config", slog.Group("credentials", slog.String("user", "grpuser"), slog.Int("id", 4242)))
			},
			secret: "grpuser",
			want:   "credentials.user=REDACTED",
		},
		{
			name:   "WithAttrs",
			log:    func(l *slog.Logger) { l.With("src", "https://h/?token=withtok").Info("fetch") },
			secret: "withtok",
			want:   "token=REDACTED",
		},
		{
			name:   "WithAttrs secret key",
			log:    func(l *slog.Logger) { l.With("authorization", "Basic d2l0aGF1dGg=").Info("fetch") },
			secret: "d2l0aGF1dGg",
			want:   "authorization=REDACTED",
		},
		{
			name:   "WithGroup",
			log:    func(l *slog.Logger) { l.WithGroup("fetch").Info("start", "src", "https://h/?sig=wgsig") },
			secret: "wgsig",
			want:   "fetch.src=",
		},
		{
			name:   "WithGroup secret name",
			log:    func(l *slog.Logger) { l.WithGroup("secrets").Info("loaded", "hf", "unshaped-value") },
			secret: "unshaped-value",
			want:   "secrets.hf=REDACTED",
		},
		{
			name:   "LogValuer",
			log:    func(l *slog.Logger) { l.Info("fetch", "v", valuer{}) },
			secret: "valuer-sig",
			want:   "sig=REDACTED",
		},
		{
			name:   "struct with known secret",
			log:    func(l *slog.Logger) { l.Info("config", "cfg", config{Name: "m", Pass: registryToken}) },
			secret: registryToken,
			want:   "Pass:REDACTED",
		},
		{
			name:   "bytes",
			log:    func(l *slog.Logger) { l.Info("body", "b", []byte(`{"token":"bytestok"}`)) },
			secret: "bytestok",
			want:   "REDACTED",
		},
	}
	formats := []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
	}
	secrets := &redact.Secrets{}
	secrets.Add(registryToken)

	for _, tc := range tests {
		for _, f := range formats {
			t.Run(tc.name+"/"+f.name, func(t *testing.T) {
				var buf bytes.Buffer
				tc.log(slog.New(redact.NewHandler(f.new(&buf), secrets)))
				out := buf.String()
				require.NotEmpty(t, out)
				assert.NotContains(t, out, tc.secret)
				if f.name == "text" {
					assert.Contains(t, out, tc.want)
				} else {
					var m map[string]any
					assert.NoError(t, json.Unmarshal(buf.Bytes(), &m), "invalid JSON: %s", out)
				}
			})
		}
	}
}

func TestHandler_KeepsOtherValues(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(redact.NewHandler(slog.NewJSONHandler(&buf, nil), nil))
	l.Info("done", "n", 3, "ok", true, "d", 1500*time.Millisecond, "tokens", 4096, "cfg", config{Name: "m"})

	var m map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &m))
	assert.Equal(t, "done", m["msg"])
	assert.EqualValues(t, 3, m["n"])
	assert.Equal(t, true, m["ok"])
	assert.EqualValues(t, 1500*time.Millisecond, m["d"])
	assert.EqualValues(t, 4096, m["tokens"])
	assert.Equal(t, map[string]any{"Name": "m", "Pass": ""}, m["cfg"])
}

func TestHandler_Enabled(t *testing.T) {
	inner := slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn})
	h := redact.NewHandler(inner, nil)
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		t.Run(level.String(), func(t *testing.T) {
			assert.Equal(t, inner.Enabled(context.Background(), level), h.Enabled(context.Background(), level))
		})
	}
	assert.Panics(t, func() { redact.NewHandler(nil, nil) })
}

// TestHandler_Conformance runs the standard library's handler test suite on
// the wrapper, so that groups, empty attributes and the like behave as
// every slog.Handler must.
func TestHandler_Conformance(t *testing.T) {
	var buf bytes.Buffer
	newHandler := func(*testing.T) slog.Handler {
		buf.Reset()
		return redact.NewHandler(slog.NewJSONHandler(&buf, nil), nil)
	}
	result := func(t *testing.T) map[string]any {
		line := strings.TrimSpace(buf.String())
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "line: %s", line)
		return m
	}
	slogtest.Run(t, newHandler, result)
}

func mustParseURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
