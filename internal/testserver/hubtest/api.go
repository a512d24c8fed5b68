package hubtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// serveHub routes a Hub request. Paths are split on the escaped form so
// that a revision sent as one escaped segment ("refs%2Fpr%2F1") stays one.
func (h *Hub) serveHub(w http.ResponseWriter, r *http.Request) {
	if f, ok := h.takeFailure(&h.hubFail); ok {
		writeFailure(w, f, "text/plain; charset=utf-8", "Internal Error - We're working hard to fix this as soon as possible!")
		return
	}
	segs, err := segments(r.URL.EscapedPath())
	if err != nil {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	switch {
	case len(segs) >= 5 && segs[0] == "api" && segs[1] == "models":
		h.serveAPI(w, r, segs[2], segs[3], segs[4:])
	case len(segs) == 4 && segs[0] == "api" && segs[1] == "models":
		h.serveAPI(w, r, segs[2], segs[3], nil)
	case len(segs) >= 6 && segs[0] == "api" && segs[1] == "resolve-cache" && segs[2] == "models":
		h.serveResolveCache(w, r, segs[3], segs[4], segs[5:])
	case len(segs) >= 5 && segs[2] == "resolve":
		h.serveResolve(w, r, segs[0], segs[1], segs[3:])
	default:
		http.NotFound(w, r)
	}
}

func segments(escaped string) ([]string, error) {
	raw := strings.Split(strings.TrimPrefix(escaped, "/"), "/")
	out := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			return nil, err
		}
		out[i] = u
	}
	return out, nil
}

// hubError is an error answer of the Hub.
type hubError struct {
	status  int
	code    string
	message string
}

func (e *hubError) write(w http.ResponseWriter, r *http.Request) {
	if e.code != "" {
		w.Header().Set("X-Error-Code", e.code)
	}
	w.Header().Set("X-Error-Message", e.message)
	body, _ := json.Marshal(map[string]string{"error": e.message})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func repoNotFound() *hubError {
	// The Hub does not say whether a repository is missing or private.
	return &hubError{http.StatusUnauthorized, "RepoNotFound", "Invalid username or password."}
}

func revisionNotFound(rev string) *hubError {
	return &hubError{http.StatusNotFound, "RevisionNotFound", "Invalid rev id: " + rev}
}

func entryNotFound() *hubError {
	return &hubError{http.StatusNotFound, "EntryNotFound", "Entry not found"}
}

// lookupRepo finds org/name and checks the request's token against its
// access rules. Called with h.mu held.
func (h *Hub) lookupRepo(r *http.Request, org, name string) (*repo, *hubError) {
	rp, ok := h.repos[org+"/"+name]
	if !ok {
		return nil, repoNotFound()
	}
	token, hasToken := bearer(r)
	granted := hasToken && rp.cfg.tokens[token]
	switch {
	case rp.cfg.private && !granted:
		return nil, repoNotFound()
	case rp.cfg.gated && !hasToken:
		return nil, &hubError{http.StatusUnauthorized, "GatedRepo",
			fmt.Sprintf("Access to model %s is restricted. You must have access to it and be authenticated to access it. Please log in.", rp.id())}
	case rp.cfg.gated && !granted:
		return nil, &hubError{http.StatusForbidden, "GatedRepo",
			fmt.Sprintf("Access to model %s is restricted and you are not in the authorized list. Visit https://huggingface.co/%s to ask for access.", rp.id(), rp.id())}
	}
	return rp, nil
}

func bearer(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(v, "Bearer ")
	if !ok || tok == "" {
		return "", false
	}
	return tok, true
}

// serveResolve answers /{org}/{name}/resolve/{revision}/{path}.
func (h *Hub) serveResolve(w http.ResponseWriter, r *http.Request, org, name string, rest []string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.mu.Lock()
	rp, herr := h.lookupRepo(r, org, name)
	if herr != nil {
		h.mu.Unlock()
		herr.write(w, r)
		return
	}
	c, rev, fileSegs, ok := rp.splitRevision(rest)
	if !ok {
		h.mu.Unlock()
		revisionNotFound(rest[0]).write(w, r)
		return
	}
	f := c.files[strings.Join(fileSegs, "/")]
	cdnLoc := ""
	if f != nil && f.lfs {
		cdnLoc = h.signedURL(rp, f)
	}
	cache := h.cfg.resolveCache
	h.mu.Unlock()

	w.Header().Set("X-Repo-Commit", c.sha)
	if f == nil {
		entryNotFound().write(w, r)
		return
	}
	w.Header().Set("Accept-Ranges", "bytes")
	switch {
	case f.lfs:
		w.Header().Set("X-Linked-Etag", `"`+f.sha256+`"`)
		w.Header().Set("X-Linked-Size", strconv.FormatInt(f.size(), 10))
		w.Header().Set("ETag", `"`+f.gitOID+`"`)
		redirect(w, r, cdnLoc, http.StatusFound)
	case cache:
		loc := "/api/resolve-cache/models/" + escapeSegment(org) + "/" + escapeSegment(name) + "/" + c.sha + "/" + escapePath(f.path) +
			"?" + url.QueryEscape("/"+org+"/"+name+"/resolve/"+rev+"/"+f.path) + "=&etag=" + url.QueryEscape(`"`+f.gitOID+`"`)
		redirect(w, r, loc, http.StatusTemporaryRedirect)
	default:
		serveGitFile(w, r, f)
	}
}

// serveResolveCache answers the URL a WithResolveCache redirect points to.
func (h *Hub) serveResolveCache(w http.ResponseWriter, r *http.Request, org, name string, rest []string) {
	h.mu.Lock()
	rp, herr := h.lookupRepo(r, org, name)
	if herr != nil {
		h.mu.Unlock()
		herr.write(w, r)
		return
	}
	c, ok := rp.commits[rest[0]]
	var f *file
	if ok {
		f = c.files[strings.Join(rest[1:], "/")]
	}
	h.mu.Unlock()
	if !ok {
		revisionNotFound(rest[0]).write(w, r)
		return
	}
	w.Header().Set("X-Repo-Commit", c.sha)
	if f == nil || f.lfs {
		entryNotFound().write(w, r)
		return
	}
	w.Header().Set("Accept-Ranges", "bytes")
	serveGitFile(w, r, f)
}

// serveGitFile serves a file kept in git, with the Hub's ETag: its git blob
// id. ServeContent answers Range and If-None-Match.
func serveGitFile(w http.ResponseWriter, r *http.Request, f *file) {
	w.Header().Set("ETag", `"`+f.gitOID+`"`)
	http.ServeContent(w, r, path.Base(f.path), time.Time{}, bytes.NewReader(f.data))
}

// redirect writes a redirect with the short plain-text body the Hub sends,
// and its Content-Length, for HEAD too.
func redirect(w http.ResponseWriter, r *http.Request, loc string, status int) {
	body := http.StatusText(status) + ". Redirecting to " + loc
	w.Header().Set("Location", loc)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write([]byte(body))
	}
}

// serveAPI answers /api/models/{org}/{name}[/revision/{rev}|/tree/{rev}[/{path}]].
// The answer is built under h.mu and written after it is released, so a
// slow client holds up no other request.
func (h *Hub) serveAPI(w http.ResponseWriter, r *http.Request, org, name string, rest []string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.mu.Lock()
	a := h.answerAPI(r, org, name, rest)
	h.mu.Unlock()
	for k, v := range a.header {
		w.Header()[k] = v
	}
	switch {
	case a.err != nil:
		a.err.write(w, r)
	case a.body == nil:
		http.NotFound(w, r)
	default:
		writeJSON(w, r, a.body)
	}
}

// apiAnswer is a JSON body, or an error, with extra headers.
type apiAnswer struct {
	header http.Header
	body   any
	err    *hubError
}

// answerAPI is called with h.mu held.
func (h *Hub) answerAPI(r *http.Request, org, name string, rest []string) apiAnswer {
	rp, herr := h.lookupRepo(r, org, name)
	if herr != nil {
		return apiAnswer{err: herr}
	}
	switch {
	case len(rest) == 0:
		rev := r.URL.Query().Get("revision")
		if rev == "" {
			rev = "main"
		}
		return h.answerInfo(r, rp, []string{rev})
	case rest[0] == "revision" && len(rest) >= 2:
		return h.answerInfo(r, rp, rest[1:])
	case rest[0] == "tree" && len(rest) >= 2:
		return h.answerTree(r, rp, rest[1:])
	}
	return apiAnswer{}
}

type sibling struct {
	RFilename string   `json:"rfilename"`
	BlobID    string   `json:"blobId,omitempty"`
	Size      *int64   `json:"size,omitempty"`
	LFS       *lfsBlob `json:"lfs,omitempty"`
}

type lfsBlob struct {
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	PointerSize int    `json:"pointerSize"`
}

type modelInfo struct {
	ID           string    `json:"_id"`
	RepoID       string    `json:"id"`
	ModelID      string    `json:"modelId"`
	Author       string    `json:"author"`
	SHA          string    `json:"sha"`
	LastModified string    `json:"lastModified"`
	CreatedAt    string    `json:"createdAt"`
	Private      bool      `json:"private"`
	Gated        any       `json:"gated"`
	Disabled     bool      `json:"disabled"`
	Tags         []string  `json:"tags"`
	Siblings     []sibling `json:"siblings"`
}

// answerInfo is the model info at a revision. Called with h.mu held.
func (h *Hub) answerInfo(r *http.Request, rp *repo, revSegs []string) apiAnswer {
	c, _, rest, ok := rp.splitRevision(revSegs)
	if !ok || len(rest) > 0 {
		return apiAnswer{err: revisionNotFound(strings.Join(revSegs, "/"))}
	}
	blobs := isTrue(r.URL.Query().Get("blobs"))
	info := modelInfo{
		ID:           idHex(rp.id())[:24],
		RepoID:       rp.id(),
		ModelID:      rp.id(),
		Author:       rp.org,
		SHA:          c.sha,
		LastModified: c.time.Format("2006-01-02T15:04:05.000Z"),
		CreatedAt:    rp.created.Format("2006-01-02T15:04:05.000Z"),
		Private:      rp.cfg.private,
		Gated:        false,
		Tags:         []string{},
		Siblings:     []sibling{},
	}
	if rp.cfg.gated {
		info.Gated = "manual"
	}
	for _, p := range c.paths {
		f := c.files[p]
		s := sibling{RFilename: p}
		if blobs {
			size := f.size()
			s.BlobID, s.Size = f.gitOID, &size
			if f.lfs {
				s.LFS = &lfsBlob{SHA256: f.sha256, Size: size, PointerSize: len(f.pointer)}
			}
		}
		info.Siblings = append(info.Siblings, s)
	}
	return apiAnswer{body: info}
}

// treeEntry is one item of the tree API.
type treeEntry struct {
	Type string   `json:"type"`
	OID  string   `json:"oid"`
	Size int64    `json:"size"`
	Path string   `json:"path"`
	LFS  *lfsInfo `json:"lfs,omitempty"`
}

type lfsInfo struct {
	OID         string `json:"oid"`
	Size        int64  `json:"size"`
	PointerSize int    `json:"pointerSize"`
}

// answerTree is one page of a tree listing. Called with h.mu held.
func (h *Hub) answerTree(r *http.Request, rp *repo, segs []string) apiAnswer {
	c, _, rest, ok := rp.splitRevision(segs)
	if !ok {
		return apiAnswer{err: revisionNotFound(segs[0])}
	}
	base := strings.Trim(strings.Join(rest, "/"), "/")
	if _, isDir := c.dirs[base]; !isDir {
		return apiAnswer{header: http.Header{"X-Repo-Commit": {c.sha}}, err: entryNotFound()}
	}
	q := r.URL.Query()
	entries := c.list(base, isTrue(q.Get("recursive")))

	offset := 0
	if cur := q.Get("cursor"); cur != "" {
		n, err := decodeCursor(cur)
		if err != nil || n < 0 || n > len(entries) {
			return apiAnswer{err: &hubError{http.StatusBadRequest, "", "Invalid cursor"}}
		}
		offset = n
	}
	a := apiAnswer{header: http.Header{}}
	end := min(offset+h.cfg.pageSize, len(entries))
	if end < len(entries) {
		q.Set("cursor", encodeCursor(end))
		next := url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()}
		a.header.Set("Link", "<"+next.String()+`>; rel="next"`)
	}
	a.body = entries[offset:end]
	return a
}

// list returns the entries under dir: its children, or with recursive
// every file and directory below it, ordered by path.
func (c *commit) list(dir string, recursive bool) []treeEntry {
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	var out []treeEntry
	within := func(p string) bool {
		if !strings.HasPrefix(p, prefix) || p == dir {
			return false
		}
		return recursive || !strings.Contains(p[len(prefix):], "/")
	}
	for d, id := range c.dirs {
		if d != "" && within(d) {
			out = append(out, treeEntry{Type: "directory", OID: id, Path: d})
		}
	}
	for _, p := range c.paths {
		if within(p) {
			f := c.files[p]
			e := treeEntry{Type: "file", OID: f.gitOID, Size: f.size(), Path: p}
			if f.lfs {
				e.LFS = &lfsInfo{OID: f.sha256, Size: f.size(), PointerSize: len(f.pointer)}
			}
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	if out == nil {
		out = []treeEntry{}
	}
	return out
}

func encodeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset)))
}

func decodeCursor(s string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, err
	}
	n, ok := strings.CutPrefix(string(b), "offset:")
	if !ok {
		return 0, fmt.Errorf("bad cursor")
	}
	return strconv.Atoi(n)
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// writeFailure answers an injected failure.
func writeFailure(w http.ResponseWriter, f failure, contentType, body string) {
	if f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(f.retryAfter.Seconds()))))
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(f.status)
	w.Write([]byte(body))
}

func isTrue(v string) bool { return strings.EqualFold(v, "true") || v == "1" }

func escapeSegment(s string) string { return url.PathEscape(s) }

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
