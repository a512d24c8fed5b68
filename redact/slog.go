package redact

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
)

// NewHandler returns a slog.Handler that redacts every record before passing
// it to h.
//
// The message and every attribute value are redacted with secrets.Redact (a
// nil secrets means String alone). That covers strings, errors (through
// their Error method), fmt.Stringers (through String), URLs (with URL) and
// the members of groups, recursively, including attributes given to
// WithAttrs and values produced by slog.LogValuers. Errors and Stringers are
// always logged as their redacted text, because their encoders might
// otherwise write fields that the text leaves out. Any other value is
// formatted with %+v and replaced by that redacted text only if redaction
// changed it; numbers, booleans, times and durations are passed through.
//
// An attribute whose key looks like the name of a secret (it contains token,
// password, secret, authorization, credential, api_key, ...; case is
// ignored) has its value replaced by Redacted whatever it is, as does every
// attribute inside a group, or under WithGroup, named like that.
//
// Enabled is h's. The returned handler is safe for concurrent use if h is.
// NewHandler panics if h is nil.
func NewHandler(h slog.Handler, secrets *Secrets) slog.Handler {
	if h == nil {
		panic("redact: NewHandler called with a nil slog.Handler")
	}
	return &handler{next: h, secrets: secrets}
}

type handler struct {
	next    slog.Handler
	secrets *Secrets
	// hideAll is set under a group named like a secret: every value in it
	// is replaced.
	hideAll bool
}

// Enabled reports whether the wrapped handler handles records at level.
func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle redacts r's message and attributes into a new record, leaving r
// untouched for other handlers, and passes it on.
func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.secrets.Redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a, h.hideAll))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs redacts attrs before the wrapped handler stores them.
func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	redacted := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		redacted[i] = h.attr(a, h.hideAll)
	}
	return &handler{next: h.next.WithAttrs(redacted), secrets: h.secrets, hideAll: h.hideAll}
}

// WithGroup opens a group in the wrapped handler; if name looks like the
// name of a secret, every value logged inside it is replaced.
func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &handler{
		next:    h.next.WithGroup(name),
		secrets: h.secrets,
		hideAll: h.hideAll || isSecretName(name),
	}
}

// attr returns a redacted, resolved copy of a. hide replaces every value.
func (h *handler) attr(a slog.Attr, hide bool) slog.Attr {
	hide = hide || isSecretName(a.Key)
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		members := v.Group()
		out := make([]slog.Attr, len(members))
		for i, m := range members {
			out[i] = h.attr(m, hide)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	}
	if hide {
		return slog.String(a.Key, Redacted)
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.secrets.Redact(v.String()))
	case slog.KindAny:
		return slog.Attr{Key: a.Key, Value: h.any(v)}
	default:
		return slog.Attr{Key: a.Key, Value: v}
	}
}

// any redacts a value of kind slog.KindAny.
func (h *handler) any(v slog.Value) slog.Value {
	switch x := v.Any().(type) {
	case nil:
		return v
	case *url.URL:
		if x == nil {
			return v
		}
		return slog.StringValue(h.secrets.Redact(URL(x)))
	case url.URL:
		return slog.StringValue(h.secrets.Redact(URL(&x)))
	case error, fmt.Stringer:
		// fmt recovers from panics in Error and String methods, such as
		// those of nil pointers, as the standard handlers do.
		return slog.StringValue(h.secrets.Redact(fmt.Sprint(x)))
	case []byte:
		if r := h.secrets.Redact(string(x)); r != string(x) {
			return slog.StringValue(r)
		}
		return v
	default:
		s := fmt.Sprintf("%+v", x)
		if r := h.secrets.Redact(s); r != s {
			return slog.StringValue(r)
		}
		return v
	}
}
