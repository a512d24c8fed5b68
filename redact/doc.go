// Package redact removes credentials from text before it reaches a log, an
// error message, a status file or a metric label.
//
// The agent handles several kinds of secret: Hugging Face tokens, OCI
// registry passwords and bearer tokens, S3 and GCS pre-signed URLs, and
// passwords in URL userinfo. Any of them can surface in an error message:
// net/http quotes the request URL in its errors, and a server may echo a
// token back in a response body that ends up in an error. This package is
// the one place that knows what such secrets look like.
//
// # What is redacted
//
// Every secret is replaced by the placeholder "REDACTED" (the constant
// Redacted). Surrounding text is kept byte for byte, so a string with nothing
// to redact comes back unchanged.
//
//   - URLs: the whole userinfo when it holds a password ("user:pw@" becomes
//     "REDACTED@"; a bare username is kept unless it is itself a token), and
//     the values of query (and fragment) parameters whose names are known to
//     carry signatures or credentials (X-Amz-Signature, X-Amz-Credential,
//     X-Amz-Security-Token, X-Goog-Signature, X-Goog-Credential, Signature,
//     sig, Policy, Key-Pair-Id, token, access_token, key, api_key, ...), or
//     whose names contain token, secret, password, credential or signature.
//     Other parameters keep their value, their encoding and their order.
//   - Free text (String): every URL found in it as above, the credentials of
//     Authorization and similar headers ("Authorization: Bearer x"), bearer
//     tokens ("Bearer x"), Hugging Face tokens (hf_ followed by at least 20
//     letters or digits) and values of secret-looking keys in key=value,
//     key:value and JSON "key":"value" form.
//   - Known values (Secrets): the exact tokens the agent read at start-up,
//     and their URL-escaped forms, wherever they occur.
//
// NewHandler applies all of this to every log record written through
// log/slog.
//
// # Trade-offs
//
// The patterns are heuristics. Where they are unsure they redact: a URL so
// malformed that its userinfo cannot be told from its host loses its whole
// authority, and a harmless value under a key named like a secret is hidden.
// Operators can live with an over-redacted line; a leaked token has to be
// revoked. Text that contains none of the trigger words ("://", "bearer",
// "auth", "token", "secret", "passw", "credential", "signature", "hf_", ...)
// is returned at once without allocating, so redacting every log line is
// cheap.
//
// Redaction cannot recognise a secret with no recognisable shape or context,
// such as a bare password in prose; register such values with Secrets.Add.
//
// All functions are safe for concurrent use and never panic, whatever the
// input.
package redact
