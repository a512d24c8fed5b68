package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Redacted is the placeholder that replaces every secret.
const Redacted = "REDACTED"

// maxDepth bounds how deeply URLs nested in other URLs (a pre-signed URL in
// a redirect parameter, say) are taken apart. Past it, any part that still
// looks as if it might hold a secret is replaced whole. The bound keeps
// hostile input from costing quadratic time.
const maxDepth = 4

// URL returns u as a string with its credentials replaced by Redacted: the
// whole userinfo when it has a password, and the values of secret query and
// fragment parameters (see the package documentation). A nil u yields "".
// u is not modified.
func URL(u *url.URL) string {
	if u == nil {
		return ""
	}
	return redactURLString(u.String())
}

// URLString is URL for a URL held as a string. Parameters and their encoding
// are kept as they appear in s. A string that does not parse as a URL is
// redacted as free text with String, so URLString never returns a secret
// that String would have removed.
func URLString(s string) string {
	if _, err := url.Parse(s); err != nil {
		return String(s)
	}
	return redactURLString(s)
}

// String returns s with every credential it can recognise replaced by
// Redacted: URLs embedded anywhere in the text (as in net/http's
// `Get "https://...": dial tcp ...` errors), Authorization-style header
// values, bearer tokens, Hugging Face tokens and the values of
// secret-looking keys. Text around the secrets is kept byte for byte; a
// string with nothing to redact is returned as is, without allocating.
func String(s string) string {
	return redactText(s, 0)
}

// Err returns err.Error() redacted with String, or "" for a nil err.
func Err(err error) string {
	if err == nil {
		return ""
	}
	return String(err.Error())
}

// Trigger flags found by scan; each selects the passes worth running.
const (
	hasURL = 1 << iota
	hasHeader
	hasBearer
	hasKeyValue
	hasHFToken
)

// scan reports which kinds of secret s might hold. It is a single pass over
// the bytes that allocates nothing, so text with nothing to redact (the
// common case for log lines) never reaches a regular expression.
func scan(s string) int {
	var f int
	for i := 0; i < len(s); i++ {
		rest := s[i:]
		switch lower(s[i]) {
		case ':':
			if strings.HasPrefix(rest, "://") {
				f |= hasURL
			}
		case 'a':
			switch {
			case hasPrefixFold(rest, "auth"):
				f |= hasHeader | hasKeyValue
			case hasPrefixFold(rest, "apikey"), hasPrefixFold(rest, "api_key"), hasPrefixFold(rest, "api-key"):
				f |= hasHeader | hasKeyValue
			}
		case 'b':
			if hasPrefixFold(rest, "bearer") {
				f |= hasBearer
			}
		case 'c':
			if hasPrefixFold(rest, "credential") {
				f |= hasKeyValue
			}
		case 'h':
			if hasPrefixFold(rest, "hf_") {
				f |= hasHFToken
			}
		case 'p':
			switch {
			case hasPrefixFold(rest, "passw"), hasPrefixFold(rest, "passp"):
				f |= hasKeyValue
			case hasPrefixFold(rest, "private"):
				f |= hasHeader | hasKeyValue
			}
		case 's':
			if hasPrefixFold(rest, "secret") || hasPrefixFold(rest, "signature") {
				f |= hasKeyValue
			}
		case 't':
			if hasPrefixFold(rest, "token") {
				f |= hasKeyValue
			}
		}
	}
	return f
}

// redactText is String with the nesting depth of the URL being taken apart,
// if any.
func redactText(s string, depth int) string {
	f := scan(s)
	if f == 0 {
		return s
	}
	if depth > maxDepth {
		return Redacted
	}
	if f&hasURL != 0 {
		s = redactURLs(s, depth)
	}
	return redactPatterns(s, f)
}

// secretKeyRe matches a key that may name a secret; isSecretName has the
// final say.
const secretKeyRe = `[\w.-]*(?i:token|secret|passw(?:or)?d|passphrase|credential|signature|authorization|api[_-]?key|private[_-]?key)[\w.-]*`

// Patterns for secrets outside URL structure. They are compiled once and
// never changed.
var (
	// headerRe matches the value of an Authorization-like header, with an
	// optional auth scheme, in "Name: value", "Name=value", JSON and Go's
	// http.Header formatting (map[Authorization:[Bearer x]]).
	headerRe = regexp.MustCompile(`(?i)\b(?:(?:proxy-)?authorization|x-api-key|api-key|x-auth-token|private-token)["']?[ \t]*[:=][ \t]*["'\[]?[ \t]*(?:(?:bearer|basic|token|digest|negotiate|aws4-hmac-sha256)[ \t]+)?([^\s"'\\\],;&#]+)`)

	// bearerRe matches a bearer token (RFC 6750 b64token) anywhere.
	bearerRe = regexp.MustCompile(`(?i)\b(bearer)\s+([A-Za-z0-9._~+/-]+=*)`)

	// jsonRe matches a JSON string member whose key looks like the name of
	// a secret, also inside a %q-quoted string (\"key\":\"value\").
	jsonRe = regexp.MustCompile(`"(` + secretKeyRe + `)\\?"\s*:\s*\\?"((?:[^"\\]|\\[^"])*)`)

	// kvRe matches key=value, and key:value with no space after the colon
	// (as fmt prints struct fields and maps), for keys that look like the
	// name of a secret. A space after the colon is left alone on purpose:
	// "token: file not found" is prose, and redacting its reason would hide
	// why a fetch failed. Only secret-looking keys are matched so that the
	// value of an unrelated key cannot swallow a secret pair after it.
	kvRe = regexp.MustCompile(`\b(` + secretKeyRe + `)(?:[ \t]*=[ \t]*|:)(?:"([^"]*)"|'([^']*)'|([^\s"'&#,;)\[\]{}<>]+))`)

	// hfTokenRe matches a Hugging Face user access token.
	hfTokenRe = regexp.MustCompile(`hf_[A-Za-z0-9]{20,}`)
)

// redactPatterns runs the regular-expression passes selected by the scan
// flags f.
func redactPatterns(s string, f int) string {
	if f&(hasHeader|hasKeyValue) != 0 {
		s = replaceGroup(s, headerRe, nil, 1)
	}
	if f&hasBearer != 0 {
		s = replaceGroup(s, bearerRe, isBearerToken, 2)
	}
	if f&hasKeyValue != 0 {
		s = replaceGroup(s, jsonRe, secretKey, 2)
		s = replaceGroup(s, kvRe, secretKeyValue, 2, 3, 4)
	}
	if f&hasHFToken != 0 {
		s = replaceGroup(s, hfTokenRe, nil, 0)
	}
	return s
}

// secretKey reports whether the key captured as group 1 of match m looks
// like the name of a secret.
func secretKey(s string, m []int) bool {
	return isSecretName(s[m[2]:m[3]])
}

// secretKeyValue is secretKey for kvRe matches, except that it leaves
// alone a value that is only the auth scheme of a header value
// ("authorization=Basic xyz"), whose credential headerRe has redacted.
func secretKeyValue(s string, m []int) bool {
	if !secretKey(s, m) {
		return false
	}
	if m[8] < 0 || m[9] >= len(s) || (s[m[9]] != ' ' && s[m[9]] != '\t') {
		return true
	}
	return !isAuthScheme(s[m[8]:m[9]])
}

// authSchemes are the HTTP authentication schemes headerRe knows, lower
// case.
var authSchemes = []string{"bearer", "basic", "token", "digest", "negotiate", "aws4-hmac-sha256"}

func isAuthScheme(s string) bool {
	for _, a := range authSchemes {
		if strings.EqualFold(s, a) {
			return true
		}
	}
	return false
}

// isBearerToken decides whether a bearerRe match is a credential. It is not
// when it is a parameter of a WWW-Authenticate challenge (Bearer
// realm="..."), or when it is plain prose: a short run of letters after a
// lower-case "bearer", as in "missing bearer token". Headers spell the
// scheme "Bearer", and real tokens are long or contain digits and
// punctuation.
func isBearerToken(s string, m []int) bool {
	tok := s[m[4]:m[5]]
	if strings.HasSuffix(tok, "=") && m[5] < len(s) && s[m[5]] == '"' {
		return false
	}
	if s[m[2]:m[3]] != "bearer" || len(tok) >= 16 {
		return true
	}
	for i := 0; i < len(tok); i++ {
		if lower(tok[i]) < 'a' || lower(tok[i]) > 'z' {
			return true
		}
	}
	return false
}

// replaceGroup replaces, in every match of re in s that keep accepts (nil
// accepts all), the first of groups that took part in the match with
// Redacted. Empty groups and groups already equal to Redacted are left
// alone, so redaction is idempotent and never invents a value. s is
// returned as is, without a copy, when nothing changes.
func replaceGroup(s string, re *regexp.Regexp, keep func(string, []int) bool, groups ...int) string {
	matches := re.FindAllStringSubmatchIndex(s, -1)
	var b strings.Builder
	last := 0
	for _, m := range matches {
		start, end := -1, -1
		for _, g := range groups {
			if m[2*g] >= 0 {
				start, end = m[2*g], m[2*g+1]
				break
			}
		}
		if start < 0 || start == end || s[start:end] == Redacted {
			continue
		}
		if keep != nil && !keep(s, m) {
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last:start])
		b.WriteString(Redacted)
		last = end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// redactURLs redacts every URL embedded in the free text s. A URL starts
// with its scheme before "://" and runs to the first byte that cannot
// appear in one (space, quote, angle bracket, ...); trailing punctuation
// such as the full stop ending a sentence is not taken as part of it.
func redactURLs(s string, depth int) string {
	var b strings.Builder
	last, i := 0, 0
	for i < len(s) {
		k := strings.Index(s[i:], "://")
		if k < 0 {
			break
		}
		k += i
		start := k
		for start > i && isSchemeByte(s[start-1]) {
			start--
		}
		for start < k && !isLetter(s[start]) {
			start++
		}
		end := k + 3
		for end < len(s) && isURLByte(s[end]) {
			end++
		}
		for end > k+3 && strings.IndexByte(".,;:!?)]", s[end-1]) >= 0 {
			end--
		}
		if r := redactRawURL(s[start:end], depth); r != s[start:end] {
			b.WriteString(s[last:start])
			b.WriteString(r)
			last = end
		}
		i = end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// redactURLString redacts the URL s, then any token patterns left in it (a
// Hugging Face token in a path, say).
func redactURLString(s string) string {
	s = redactRawURL(s, 0)
	if f := scan(s) &^ hasURL; f != 0 {
		s = redactPatterns(s, f)
	}
	return s
}

// redactRawURL redacts one URL without parsing it with net/url, so that the
// bytes of everything that is not a secret are kept exactly, and so that a
// malformed URL is still redacted. It splits s the way url.Parse does: the
// fragment at the first '#', the query at the first '?' before it, and the
// authority, after "scheme://" or "//", up to the first '/', '?' or '#'.
func redactRawURL(s string, depth int) string {
	if depth > maxDepth {
		if scan(s) != 0 {
			return Redacted
		}
		return s
	}
	authStart := -1
	if k := strings.Index(s, "://"); k >= 0 && strings.IndexAny(s[:k], "/?#") < 0 {
		authStart = k + 3
	} else if strings.HasPrefix(s, "//") {
		authStart = 2
	}
	restStart := 0
	var auth string
	if authStart >= 0 {
		restStart = len(s)
		if j := strings.IndexAny(s[authStart:], "/?#"); j >= 0 {
			restStart = authStart + j
		}
		auth = s[authStart:restStart]
		if strings.IndexByte(auth, '@') < 0 && !validHostPort(auth) {
			// net/url would reject this URL. The usual cause is a password
			// holding a raw '/', '?' or '#', which ends the authority
			// early and leaves the rest of the password in the path. Hide
			// everything up to the last '@', or the whole authority when
			// there is none.
			if j := strings.LastIndexByte(s[restStart:], '@'); j >= 0 {
				return redactRawURL(s[:authStart]+Redacted+s[restStart+j:], depth+1)
			}
			return s[:authStart] + Redacted + redactRest(s[restStart:], depth)
		}
	}
	newAuth := auth
	if at := strings.LastIndexByte(auth, '@'); at >= 0 {
		userinfo := auth[:at]
		if strings.IndexByte(userinfo, ':') >= 0 {
			newAuth = Redacted + auth[at:]
		} else if r := redactText(userinfo, depth+1); r != userinfo {
			newAuth = r + auth[at:]
		}
	}
	rest := redactRest(s[restStart:], depth)
	if newAuth == auth && rest == s[restStart:] {
		return s
	}
	if authStart < 0 {
		return rest
	}
	return s[:authStart] + newAuth + rest
}

// redactRest redacts the part of a URL after its authority: path, query and
// fragment.
func redactRest(s string, depth int) string {
	beforeFrag, frag, hasFrag := strings.Cut(s, "#")
	path, query, hasQuery := strings.Cut(beforeFrag, "?")

	newPath := redactText(path, depth+1)
	newQuery := redactQuery(query, depth)
	var newFrag string
	if strings.IndexByte(frag, '=') >= 0 {
		// OAuth implicit grants return tokens as fragment parameters.
		newFrag = redactQuery(frag, depth)
	} else {
		newFrag = redactText(frag, depth+1)
	}
	if newPath == path && newQuery == query && newFrag == frag {
		return s
	}
	var b strings.Builder
	b.WriteString(newPath)
	if hasQuery {
		b.WriteByte('?')
		b.WriteString(newQuery)
	}
	if hasFrag {
		b.WriteByte('#')
		b.WriteString(newFrag)
	}
	return b.String()
}

// redactQuery redacts the raw query q parameter by parameter, keeping their
// order and encoding. A secret parameter loses its value; any other value is
// redacted as text, both raw and unescaped, because it may itself be a URL
// (a redirect target, say) with credentials in it.
func redactQuery(q string, depth int) string {
	var b strings.Builder
	last := 0
	for start := 0; start <= len(q); {
		end := strings.IndexByte(q[start:], '&')
		if end < 0 {
			end = len(q)
		} else {
			end += start
		}
		if r, changed := redactParam(q[start:end], depth); changed {
			b.WriteString(q[last:start])
			b.WriteString(r)
			last = end
		}
		start = end + 1
	}
	if last == 0 {
		return q
	}
	b.WriteString(q[last:])
	return b.String()
}

// redactParam redacts one name=value query parameter.
func redactParam(p string, depth int) (string, bool) {
	if strings.Contains(p, "://") {
		// A URL in the parameter name means the query was not split where
		// its author meant; redact the parameter as a whole.
		r := redactText(p, depth+1)
		return r, r != p
	}
	name, value, ok := strings.Cut(p, "=")
	if !ok {
		r := redactText(p, depth+1)
		return r, r != p
	}
	if value == "" || value == Redacted {
		return p, false
	}
	if isSecretParam(unescapeQuery(name)) {
		return name + "=" + Redacted, true
	}
	if r := redactText(value, depth+1); r != value {
		return name + "=" + r, true
	}
	if u := unescapeQuery(value); u != value {
		if r := redactText(u, depth+1); r != u {
			return name + "=" + url.QueryEscape(r), true
		}
	}
	return p, false
}

// unescapeQuery returns the unescaped form of a query component, or s itself
// when it has nothing to unescape or is not validly escaped.
func unescapeQuery(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// secretParams are query parameter names, lower case, that carry a secret
// whatever isSecretName says: signatures of pre-signed URLs (S3 SigV2 and
// SigV4, GCS, Azure SAS, CloudFront) and common API key parameters.
var secretParams = []string{
	"sig",
	"signature",
	"policy",
	"key-pair-id",
	"awsaccesskeyid",
	"x-amz-signature",
	"x-amz-credential",
	"x-amz-security-token",
	"x-goog-signature",
	"x-goog-credential",
	"token",
	"access_token",
	"key",
	"apikey",
	"api_key",
	"api-key",
	"auth",
	"pwd",
}

// isSecretParam reports whether a query parameter called name carries a
// secret.
func isSecretParam(name string) bool {
	for _, p := range secretParams {
		if strings.EqualFold(name, p) {
			return true
		}
	}
	return isSecretName(name)
}

// secretWords are substrings, lower case, that mark a key, attribute or
// parameter name as naming a secret. "token" is handled by isSecretName.
var secretWords = []string{
	"secret",
	"password",
	"passwd",
	"passphrase",
	"credential",
	"signature",
	"authorization",
	"apikey",
	"api_key",
	"api-key",
	"privatekey",
	"private_key",
	"private-key",
}

// isSecretName reports whether name, compared without regard to case, looks
// like the name of a secret: it contains one of secretWords, or "token"
// other than in "tokens" and "tokenizer", which name counts and vocabulary
// in model metadata, not credentials.
func isSecretName(name string) bool {
	for _, w := range secretWords {
		if containsFold(name, w) {
			return true
		}
	}
	for i := 0; i+len("token") <= len(name); i++ {
		if !hasPrefixFold(name[i:], "token") {
			continue
		}
		after := name[i+len("token"):]
		if hasPrefixFold(after, "s") || hasPrefixFold(after, "iz") || hasPrefixFold(after, "is") {
			continue
		}
		return true
	}
	return false
}

// validHostPort reports whether hostport could be the host and port of a
// URL: its port, if any, is all digits. Anything else after a colon is how
// a password with a raw '/', '?' or '#' in it looks once the authority has
// been cut short.
func validHostPort(hostport string) bool {
	if strings.HasPrefix(hostport, "[") {
		i := strings.IndexByte(hostport, ']')
		if i < 0 {
			return false
		}
		rest := hostport[i+1:]
		if rest == "" {
			return true
		}
		if rest[0] != ':' {
			return false
		}
		return allDigits(rest[1:])
	}
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 {
		return true
	}
	return allDigits(hostport[i+1:])
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// lower maps ASCII upper-case letters to lower case and leaves every other
// byte alone.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

func isLetter(c byte) bool {
	c = lower(c)
	return 'a' <= c && c <= 'z'
}

func isSchemeByte(c byte) bool {
	return isLetter(c) || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
}

// isURLByte reports whether c can be part of a URL in free text. Bytes of
// UTF-8 sequences are, so that internationalised URLs are kept whole.
func isURLByte(c byte) bool {
	if c <= ' ' || c == 0x7f {
		return false
	}
	return strings.IndexByte("\"'<>`\\{}|^", c) < 0
}

// hasPrefixFold reports whether s starts with prefix, ignoring ASCII case.
// prefix must be lower case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if lower(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}

// containsFold reports whether s contains sub, ignoring ASCII case. sub must
// be lower case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if hasPrefixFold(s[i:], sub) {
			return true
		}
	}
	return false
}
