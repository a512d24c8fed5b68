package https

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/fetch/download"
)

// Config configures a Fetcher.
type Config struct {
	// Client settings; see ClientConfig. AllowHTTP also permits http://
	// references.
	Client ClientConfig
	// Download tunes parts, retries, stall detection and free-space
	// headroom.
	Download download.Options
	// Offline forbids network access: only models already present are
	// served.
	Offline bool
	// UserAgent is sent with every request.
	UserAgent string
}

// Fetcher downloads https:// (and allowed http://) models into the content
// store. It is safe for concurrent use.
type Fetcher struct {
	store  *content.Store
	client *http.Client
	cfg    Config
}

var _ fetch.Fetcher = (*Fetcher)(nil)

// New returns a Fetcher writing into store.
func New(store *content.Store, cfg Config) (*Fetcher, error) {
	if store == nil {
		return nil, errors.New("new https fetcher: no content store")
	}
	return &Fetcher{store: store, client: NewClient(cfg.Client), cfg: cfg}, nil
}

// ErrHTTPNotAllowed: an http:// reference while plain HTTP is not allowed.
var ErrHTTPNotAllowed = errors.New("plain http:// is not allowed")

// Fetch makes the file at req.Ref.URL present as models/<name>/<file name>.
func (f *Fetcher) Fetch(ctx context.Context, req fetch.Request) (fetch.Result, error) {
	u := req.Ref.URL
	if u == nil || (req.Ref.Scheme != fetch.SchemeHTTPS && req.Ref.Scheme != fetch.SchemeHTTP) {
		return fetch.Result{}, fmt.Errorf("https fetcher given a %s reference", req.Ref.Scheme)
	}
	if req.Ref.Scheme == fetch.SchemeHTTP && !f.cfg.Client.AllowHTTP {
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("%w: %s; use https, or set allow_http: true in the agent configuration for a trusted network", ErrHTTPNotAllowed, req.Ref.ID()))
	}
	rel, err := fileName(u)
	if err != nil {
		return fetch.Result{}, fetch.Permanent(err)
	}
	opts := f.cfg.Download
	opts.Progress = req.Progress
	return download.EnsureFile(ctx, f.store, download.File{
		Name:     req.Name,
		Rel:      rel,
		Key:      content.IngestKey(req.Ref.ID()),
		Source:   &Source{Client: f.client, URL: u, UserAgent: f.cfg.UserAgent},
		Expected: req.Expected,
		Known:    req.Known,
		Reverify: req.Reverify,
		Offline:  f.cfg.Offline,
	}, opts)
}

// fileName is the last path element of the URL, the name engines see.
func fileName(u *url.URL) (string, error) {
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		return "", fmt.Errorf("%w: URL has no file name", content.ErrUnsafePath)
	}
	return content.CheckRel(name)
}
