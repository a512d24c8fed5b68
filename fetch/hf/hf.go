package hf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/fetch/download"
	"github.com/model-provisioner/model-provisioner/fetch/https"
	"github.com/model-provisioner/model-provisioner/redact"
	"github.com/model-provisioner/model-provisioner/verify"
)

// DefaultEndpoint is the Hub; HF_ENDPOINT selects a mirror.
const DefaultEndpoint = "https://huggingface.co"

// Config configures a Fetcher.
type Config struct {
	// Endpoint is the Hub's base URL (default $HF_ENDPOINT, else
	// DefaultEndpoint).
	Endpoint string
	// Token authenticates to the Hub; see Token. It is sent to the Hub only,
	// never to the storage host the Hub redirects to, and never logged.
	Token string
	// Client and Download configure the transfer, as for https.
	Client   https.ClientConfig
	Download download.Options
	// Offline forbids network access (also set by HF_HUB_OFFLINE=1).
	Offline bool
	// Concurrency bounds the files of one repository fetched at once
	// (default 4).
	Concurrency int
	// UserAgent is sent with every request.
	UserAgent string
}

// Fetcher fetches hf: references. It is safe for concurrent use.
type Fetcher struct {
	store    *content.Store
	client   *http.Client
	endpoint *url.URL
	cfg      Config
}

var _ fetch.Fetcher = (*Fetcher)(nil)

// New returns a Fetcher writing into store.
func New(store *content.Store, cfg Config) (*Fetcher, error) {
	if store == nil {
		return nil, errors.New("new hf fetcher: no content store")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = os.Getenv("HF_ENDPOINT")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint
	}
	ep, err := url.Parse(strings.TrimRight(cfg.Endpoint, "/"))
	if err != nil || ep.Host == "" || (ep.Scheme != "https" && ep.Scheme != "http") {
		return nil, fmt.Errorf("new hf fetcher: endpoint %q is not an http(s) URL", redact.URLString(cfg.Endpoint))
	}
	if ep.Scheme == "http" {
		cfg.Client.AllowHTTP = true
	}
	if v := os.Getenv("HF_HUB_OFFLINE"); v == "1" || strings.EqualFold(v, "true") {
		cfg.Offline = true
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	return &Fetcher{store: store, client: https.NewClient(cfg.Client), endpoint: ep, cfg: cfg}, nil
}

// Fetch makes the hf: model present under models/<name>/, keeping the
// repository's paths.
func (f *Fetcher) Fetch(ctx context.Context, req fetch.Request) (fetch.Result, error) {
	if req.Ref.Scheme != fetch.SchemeHF {
		return fetch.Result{}, fmt.Errorf("hf fetcher given a %s reference", req.Ref.Scheme)
	}
	if req.Ref.File != "" {
		return f.fetchFile(ctx, req)
	}
	return f.fetchRepo(ctx, req)
}

func (f *Fetcher) repoID(r fetch.Ref) string { return r.Org + "/" + r.Repo }

// resolveURL is {endpoint}/{repo}/resolve/{revision}/{path}, with the
// revision escaped as one segment (branch names may hold "/") and the path
// escaped per segment.
func (f *Fetcher) resolveURL(r fetch.Ref, revision, file string) (*url.URL, error) {
	segs := strings.Split(file, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	raw := f.endpoint.String() + "/" + f.repoID(r) + "/resolve/" + url.PathEscape(revision) + "/" + strings.Join(segs, "/")
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fetch.Permanent(fmt.Errorf("resolve URL for %s/%s: %w", f.repoID(r), file, err))
	}
	return u, nil
}

func (f *Fetcher) header() http.Header {
	h := http.Header{}
	if f.cfg.Token != "" {
		h.Set("Authorization", "Bearer "+f.cfg.Token)
	}
	if f.cfg.UserAgent != "" {
		h.Set("User-Agent", f.cfg.UserAgent)
	}
	return h
}

func (f *Fetcher) fetchFile(ctx context.Context, req fetch.Request) (fetch.Result, error) {
	ref := req.Ref
	rel, err := content.CheckRel(ref.File)
	if err != nil {
		return fetch.Result{}, fetch.Permanent(err)
	}
	opts := f.cfg.Download
	opts.Progress = req.Progress
	res, err := download.EnsureFile(ctx, f.store, download.File{
		Name:     req.Name,
		Rel:      rel,
		Key:      content.IngestKey(ref.ID()),
		Expected: req.Expected,
		Known:    req.Known,
		Reverify: req.Reverify,
		Offline:  f.cfg.Offline,
		Resolve: func(ctx context.Context) (download.Resolved, error) {
			return f.resolveFile(ctx, ref, ref.Revision, ref.File)
		},
	}, opts)
	return res, err
}

// meta is what a HEAD of a resolve URL tells.
type meta struct {
	commit   string
	sha256   string
	size     int64
	etag     string
	location *url.URL
}

// resolveFile asks the Hub about one file and returns where to download it
// from and what its digest must be.
func (f *Fetcher) resolveFile(ctx context.Context, ref fetch.Ref, revision, file string) (download.Resolved, error) {
	m, err := f.head(ctx, ref, revision, file)
	if err != nil {
		return download.Resolved{}, err
	}
	src := &https.Source{Client: f.client, URL: m.location, UserAgent: f.cfg.UserAgent}
	if m.location.Host == f.endpoint.Host {
		// Served by the Hub itself (a small file kept in git): the token
		// goes along, and the commit pins the content.
		src.Header = f.header()
	}
	r := download.Resolved{Source: src, Validators: fetch.Validators{Revision: m.commit, ETag: m.etag}}
	if m.sha256 != "" {
		r.Expected = verify.Digest{Algo: verify.SHA256, Value: m.sha256}
	}
	return r, nil
}

// head resolves a file without following the redirect to the storage host,
// following only redirects within the Hub (a renamed repository).
func (f *Fetcher) head(ctx context.Context, ref fetch.Ref, revision, file string) (meta, error) {
	u, err := f.resolveURL(ref, revision, file)
	if err != nil {
		return meta{}, err
	}
	client := *f.client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for hops := 0; ; hops++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, u.String(), nil)
		if err != nil {
			return meta{}, err
		}
		req.Header = f.header()
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := client.Do(req)
		if err != nil {
			return meta{}, https.Redacted("resolve "+file, err)
		}
		resp.Body.Close()
		m := meta{
			commit: resp.Header.Get("X-Repo-Commit"),
			etag:   resp.Header.Get("ETag"),
			size:   -1,
		}
		if le := strings.Trim(strings.TrimPrefix(resp.Header.Get("X-Linked-Etag"), "W/"), `"`); isSHA256(le) {
			m.sha256 = strings.ToLower(le)
		}
		if s, err := strconv.ParseInt(resp.Header.Get("X-Linked-Size"), 10, 64); err == nil {
			m.size = s
		} else if resp.ContentLength >= 0 {
			m.size = resp.ContentLength
		}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Location()
			if err != nil {
				return meta{}, fmt.Errorf("resolve %s: redirect without a valid Location", file)
			}
			if loc.Host == f.endpoint.Host && m.commit == "" && hops < 5 {
				u = loc // within the Hub: a renamed repository
				continue
			}
			if loc.Scheme != "https" && f.endpoint.Scheme == "https" {
				return meta{}, fetch.Permanent(fmt.Errorf("resolve %s: %w", file, https.ErrInsecureRedirect))
			}
			m.location = loc
		case resp.StatusCode == http.StatusOK:
			// A file stored in git itself; download it from the Hub at the
			// pinned commit so a moving branch cannot switch it mid-way.
			rev := revision
			if m.commit != "" {
				rev = m.commit
			}
			if m.location, err = f.resolveURL(ref, rev, file); err != nil {
				return meta{}, err
			}
		default:
			return meta{}, hubError(ref, file, resp)
		}
		return m, nil
	}
}

// hubError turns a Hub error status into an error that says what to do.
func hubError(ref fetch.Ref, file string, resp *http.Response) error {
	code := resp.Header.Get("X-Error-Code")
	msg := resp.Header.Get("X-Error-Message")
	what := fmt.Sprintf("hf:%s/%s", ref.Org, ref.Repo)
	se := https.StatusError(what, resp)
	switch {
	case code == "RepoNotFound" || (resp.StatusCode == 401 && code == ""):
		return fetch.Permanent(fmt.Errorf("%s: repository not found, or private and no valid token was given (set HF_TOKEN or the hf_token credential): %w", what, fetch.ErrNotFound))
	case code == "GatedRepo":
		return fetch.Permanent(fmt.Errorf("%s: gated repository: accept its terms on the Hub with the account whose token the agent uses (%s)", what, se.Status))
	case code == "EntryNotFound":
		return fetch.Permanent(fmt.Errorf("%s: file %q not found at revision %s: %w", what, file, ref.Revision, fetch.ErrNotFound))
	case code == "RevisionNotFound":
		return fetch.Permanent(fmt.Errorf("%s: revision %q not found: %w", what, ref.Revision, fetch.ErrNotFound))
	case resp.StatusCode == 404:
		return fetch.Permanent(fmt.Errorf("%s: %q not found: %w", what, file, fetch.ErrNotFound))
	}
	if msg != "" {
		return fmt.Errorf("%w (%s)", se, msg)
	}
	if se.Transient() {
		return se
	}
	return fetch.Permanent(se)
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// treeEntry is one item of the Hub's tree API.
type treeEntry struct {
	Type string `json:"type"`
	Path string `json:"path"`
	Size int64  `json:"size"`
	Oid  string `json:"oid"`
	LFS  *struct {
		Oid  string `json:"oid"`
		Size int64  `json:"size"`
	} `json:"lfs"`
}

// fetchRepo fetches the files of a repository selected by req.Include.
func (f *Fetcher) fetchRepo(ctx context.Context, req fetch.Request) (fetch.Result, error) {
	ref := req.Ref
	if res, ok := f.presentRepo(ctx, req); ok {
		return res, nil
	}
	if f.cfg.Offline {
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("hf %s: %w: no network access in offline mode", ref.ID(), download.ErrOffline))
	}
	var commit string
	err := download.Retry(ctx, f.cfg.Download, ref.ID(), func() (err error) {
		commit, err = f.revision(ctx, ref)
		return err
	})
	if err != nil {
		return fetch.Result{}, err
	}
	var entries []treeEntry
	err = download.Retry(ctx, f.cfg.Download, ref.ID(), func() (err error) {
		entries, err = f.tree(ctx, ref, commit)
		return err
	})
	if err != nil {
		return fetch.Result{}, err
	}
	var files []treeEntry
	for _, e := range entries {
		if e.Type == "file" && Match(req.Include, e.Path) {
			if _, err := content.CheckRel(e.Path); err != nil {
				return fetch.Result{}, fetch.Permanent(fmt.Errorf("hf %s: %w", ref.ID(), err))
			}
			files = append(files, e)
		}
	}
	if len(files) == 0 {
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("hf %s: no file at %s matches include %q: %w", ref.ID(), commit, req.Include, fetch.ErrNotFound))
	}
	known := map[string]fetch.File{}
	if req.Known != nil {
		for _, kf := range req.Known.Files {
			known[kf.Path] = kf
		}
	}
	sizes := make([]int64, len(files))
	for i, e := range files {
		sizes[i] = e.Size
		if e.LFS != nil {
			sizes[i] = e.LFS.Size
		}
	}
	prog := download.NewTreeProgress(req.Progress, sizes)
	out := make([]fetch.File, len(files))
	var hashed atomicBool
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.cfg.Concurrency)
	for i, e := range files {
		g.Go(func() error {
			var expected verify.Digest
			if e.LFS != nil && isSHA256(e.LFS.Oid) {
				expected = verify.Digest{Algo: verify.SHA256, Value: strings.ToLower(e.LFS.Oid)}
			}
			var k *fetch.Known
			if kf, ok := known[e.Path]; ok {
				k = &fetch.Known{Digest: kf.Digest, Fingerprint: kf.Fingerprint}
			}
			opts := f.cfg.Download
			opts.Progress = prog.File(i)
			res, err := download.EnsureFile(gctx, f.store, download.File{
				Name: req.Name, Rel: e.Path, Key: content.IngestKey(ref.ID() + "\x00" + commit + "\x00" + e.Path),
				Expected: expected, Known: k, Reverify: req.Reverify,
				Resolve: func(ctx context.Context) (download.Resolved, error) {
					return f.resolveFile(ctx, ref, commit, e.Path)
				},
			}, opts)
			if err != nil {
				return fmt.Errorf("%s: %w", e.Path, err)
			}
			if res.Hashed {
				hashed.set()
			}
			out[i] = fetch.File{Path: e.Path, SizeBytes: res.SizeBytes, Digest: res.Digest, Fingerprint: res.Fingerprint}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fetch.Result{}, err
	}
	return f.repoResult(req, out, commit, hashed.get())
}

func (f *Fetcher) repoResult(req fetch.Request, files []fetch.File, commit string, hashed bool) (fetch.Result, error) {
	res, err := download.TreeResult(f.store, req.Name, files, hashed)
	res.Validators.Revision = commit
	return res, err
}

// presentRepo is the fast path of a repository: every file recorded at the
// last verification still has its fingerprint. Nothing is read and the Hub
// is not asked.
func (f *Fetcher) presentRepo(ctx context.Context, req fetch.Request) (fetch.Result, bool) {
	k := req.Known
	if k == nil || len(k.Files) == 0 || req.Reverify {
		return fetch.Result{}, false
	}
	for _, kf := range k.Files {
		if !Match(req.Include, kf.Path) {
			return fetch.Result{}, false
		}
		fi, err := os.Stat(path.Join(f.store.ModelDir(req.Name), kf.Path))
		if err != nil || verify.FingerprintOf(fi) != kf.Fingerprint || !f.store.Has(kf.Digest, fi.Size()) {
			return fetch.Result{}, false
		}
	}
	res, err := f.repoResult(req, k.Files, "", false)
	return res, err == nil
}

// revision resolves a branch, tag or commit to the commit sha.
func (f *Fetcher) revision(ctx context.Context, ref fetch.Ref) (string, error) {
	u := *f.endpoint
	u.Path += "/api/models/" + f.repoID(ref) + "/revision/" + url.PathEscape(ref.Revision)
	var out struct {
		SHA string `json:"sha"`
	}
	if _, err := f.getJSON(ctx, &u, ref, "", &out); err != nil {
		return "", err
	}
	if out.SHA == "" {
		return "", fmt.Errorf("the Hub reported no commit for revision %q", ref.Revision)
	}
	return out.SHA, nil
}

// tree lists the repository at commit, following pagination.
func (f *Fetcher) tree(ctx context.Context, ref fetch.Ref, commit string) ([]treeEntry, error) {
	u := *f.endpoint
	u.Path += "/api/models/" + f.repoID(ref) + "/tree/" + url.PathEscape(commit)
	u.RawQuery = "recursive=true"
	next := &u
	var all []treeEntry
	for pages := 0; next != nil; pages++ {
		if pages > 10000 {
			return nil, errors.New("tree listing does not end")
		}
		var page []treeEntry
		link, err := f.getJSON(ctx, next, ref, "", &page)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		next = nextLink(next, link)
	}
	return all, nil
}

func (f *Fetcher) getJSON(ctx context.Context, u *url.URL, ref fetch.Ref, file string, out any) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header = f.header()
	resp, err := f.client.Do(req)
	if err != nil {
		return "", https.Redacted("", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", hubError(ref, file, resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return "", fmt.Errorf("the Hub sent an unreadable answer for %s: %w", redact.URL(u), err)
	}
	return resp.Header.Get("Link"), nil
}

// nextLink returns the rel="next" target of a Link header, resolved
// against base, or nil.
func nextLink(base *url.URL, header string) *url.URL {
	for _, part := range strings.Split(header, ",") {
		fields := strings.Split(part, ";")
		if len(fields) < 2 {
			continue
		}
		target := strings.Trim(strings.TrimSpace(fields[0]), "<>")
		for _, p := range fields[1:] {
			if strings.ReplaceAll(strings.TrimSpace(p), " ", "") == `rel="next"` {
				u, err := base.Parse(target)
				if err == nil {
					return u
				}
			}
		}
	}
	return nil
}

// Match reports whether name (slash-separated) is selected by patterns: no
// patterns select everything; a pattern without "/" also matches the base
// name; a leading "**/" matches in any directory.
func Match(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
		if rest, found := strings.CutPrefix(p, "**/"); found {
			if ok, _ := path.Match(rest, path.Base(name)); ok && !strings.Contains(rest, "/") {
				return true
			}
			if ok, _ := path.Match(rest, name); ok {
				return true
			}
		}
		if !strings.Contains(p, "/") {
			if ok, _ := path.Match(p, path.Base(name)); ok && !strings.Contains(name, "/") {
				return true
			}
		}
	}
	return false
}

type atomicBool struct {
	mu sync.Mutex
	v  bool
}

func (b *atomicBool) set() { b.mu.Lock(); b.v = true; b.mu.Unlock() }
func (b *atomicBool) get() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.v
}
