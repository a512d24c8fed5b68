package s3

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/errgroup"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/fetch/download"
	"github.com/model-provisioner/model-provisioner/verify"
)

// MaxPrefixObjects bounds the objects one prefix may hold: a model is tens
// of files, and a prefix pointing at a whole bucket by mistake should fail
// fast rather than list millions of keys.
const MaxPrefixObjects = 10000

// Fetcher fetches s3:// references. It is safe for concurrent use.
type Fetcher struct {
	store  *content.Store
	client *minio.Client
	cfg    Config
	creds  string
}

var _ fetch.Fetcher = (*Fetcher)(nil)

// New returns a Fetcher writing into store. The credentials are chosen once,
// from the first of: cfg.AccessKey and cfg.SecretKey; AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN); the files
// s3-access-key-id, s3-secret-access-key and s3-session-token (or
// aws_access_key_id, ...) in cfg.CredentialsDir or $CREDENTIALS_DIRECTORY;
// the profile cfg.Profile, $AWS_PROFILE or "default" in the shared
// credentials file ($AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials)
// and config file; else requests are sent unsigned, which public buckets
// accept. A half-given pair of keys, an unreadable credential file, a
// named profile that cannot be loaded, a malformed endpoint and an
// unusable AWS_CA_BUNDLE are errors.
func New(store *content.Store, cfg Config) (*Fetcher, error) {
	if store == nil {
		return nil, errors.New("new s3 fetcher: no content store")
	}
	host, secure, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("new s3 fetcher: %w", err)
	}
	if cfg.Region == "" && !isAWS(host) {
		cfg.Region = DefaultRegion
	}
	lookup := minio.BucketLookupDNS
	if usePathStyle(cfg, host) {
		lookup = minio.BucketLookupPath
	}
	tr, err := newTransport(cfg)
	if err != nil {
		return nil, fmt.Errorf("new s3 fetcher: %w", err)
	}
	creds, source, err := resolveCredentials(cfg)
	if err != nil {
		return nil, fmt.Errorf("new s3 fetcher: credentials: %w", err)
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Transport:    tr,
		Region:       cfg.Region,
		BucketLookup: lookup,
		// Retries are the download engine's: it knows which failures are
		// worth another attempt and resumes instead of starting over.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("new s3 fetcher: %w", err)
	}
	if cfg.UserAgent != "" {
		name, version, ok := strings.Cut(cfg.UserAgent, "/")
		if !ok {
			version = "unknown"
		}
		client.SetAppInfo(name, version)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	return &Fetcher{store: store, client: client, cfg: cfg, creds: source}, nil
}

// CredentialSource says where the credentials in use came from (the
// configuration, the environment, a credentials file, a profile, or none),
// for start-up logs. It never contains a credential.
func (f *Fetcher) CredentialSource() string { return f.creds }

// Fetch makes the s3:// model present: one object as
// models/<name>/<base name of the key>, or every object below a prefix
// (a key ending in "/") under models/<name>/. Errors wrap fetch.ErrNotFound
// for a missing bucket, key or version, ErrAccessDenied for refused
// credentials, content.ErrUnsafePath for a key that would land outside the
// model directory, and fetch.ErrDigestMismatch when the bytes, the
// object's own sha256 and expected_digest disagree.
func (f *Fetcher) Fetch(ctx context.Context, req fetch.Request) (fetch.Result, error) {
	if req.Ref.Scheme != fetch.SchemeS3 {
		return fetch.Result{}, fmt.Errorf("s3 fetcher given a %s reference", req.Ref.Scheme)
	}
	if strings.HasSuffix(req.Ref.Key, "/") {
		return f.fetchPrefix(ctx, req)
	}
	return f.fetchObject(ctx, req)
}

func (f *Fetcher) source(bucket, key, versionID string) *Source {
	return &Source{client: f.client, bucket: bucket, key: key, versionID: versionID, creds: f.creds}
}

// ingestKey names the partial download of one object version: the same
// object resumes into the same ingest whichever model asks for it.
func ingestKey(bucket, key, versionID string) string {
	return content.IngestKey("s3://" + bucket + "/" + key + "@" + versionID)
}

func (f *Fetcher) fetchObject(ctx context.Context, req fetch.Request) (fetch.Result, error) {
	ref := req.Ref
	rel, err := content.CheckRel(path.Base(ref.Key))
	if err != nil {
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("%s: %w", ref.ID(), err))
	}
	opts := f.cfg.Download
	opts.Progress = req.Progress
	src := f.source(ref.Bucket, ref.Key, req.VersionID)
	return download.EnsureFile(ctx, f.store, download.File{
		Name:     req.Name,
		Rel:      rel,
		Key:      ingestKey(ref.Bucket, ref.Key, req.VersionID),
		Resolve:  src.resolve,
		Expected: req.Expected,
		Known:    req.Known,
		Reverify: req.Reverify,
		Offline:  f.cfg.Offline,
	}, opts)
}

// object is one object below a prefix and its path in the model.
type object struct {
	key, rel string
	size     int64
}

func (f *Fetcher) fetchPrefix(ctx context.Context, req fetch.Request) (fetch.Result, error) {
	ref := req.Ref
	if !req.Expected.IsZero() {
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("%s: %w: a prefix is several objects; remove expected_digest (each object is still checked against its own sha256 when it has one)", ref.ID(), fetch.ErrDigestOnDirectory))
	}
	if req.VersionID != "" {
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("%s: version_id pins one object and cannot apply to a prefix; point model_ref at the key, or remove version_id", ref.ID()))
	}
	if res, ok := f.presentPrefix(req); ok {
		return res, nil
	}
	if f.cfg.Offline {
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("%s: %w: no network access in offline mode; fetch it while online or disable offline mode", ref.ID(), download.ErrOffline))
	}
	var listed []minio.ObjectInfo
	err := download.Retry(ctx, f.cfg.Download, ref.ID(), func() (err error) {
		listed, err = f.list(ctx, ref)
		return err
	})
	if err != nil {
		return fetch.Result{}, err
	}
	var objs []object
	for _, o := range listed {
		if strings.HasSuffix(o.Key, "/") {
			continue // a "directory" marker, not a file
		}
		rel := strings.TrimPrefix(o.Key, ref.Key)
		if !match(req.Include, rel) {
			continue
		}
		clean, err := content.CheckRel(rel)
		if err != nil {
			return fetch.Result{}, fetch.Permanent(fmt.Errorf("%s: key %q: %w", ref.ID(), o.Key, err))
		}
		objs = append(objs, object{key: o.Key, rel: clean, size: o.Size})
	}
	if len(objs) == 0 {
		what := "no object"
		if len(req.Include) > 0 {
			what = fmt.Sprintf("no object matching include %q", req.Include)
		}
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("%s: %s below the prefix: %w", ref.ID(), what, fetch.ErrNotFound))
	}

	known := map[string]fetch.File{}
	if req.Known != nil {
		for _, kf := range req.Known.Files {
			known[kf.Path] = kf
		}
	}
	prog := newAggregate(req.Progress, objs)
	out := make([]fetch.File, len(objs))
	var hashed atomic.Bool
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.cfg.Concurrency)
	for i, o := range objs {
		g.Go(func() error {
			var k *fetch.Known
			if kf, ok := known[o.rel]; ok {
				k = &fetch.Known{Digest: kf.Digest, Fingerprint: kf.Fingerprint}
			}
			opts := f.cfg.Download
			opts.Progress = prog.part(i)
			res, err := download.EnsureFile(gctx, f.store, download.File{
				Name:     req.Name,
				Rel:      o.rel,
				Key:      ingestKey(ref.Bucket, o.key, ""),
				Resolve:  f.source(ref.Bucket, o.key, "").resolve,
				Known:    k,
				Reverify: req.Reverify,
				Offline:  f.cfg.Offline,
			}, opts)
			if err != nil {
				return fmt.Errorf("%s: %w", o.rel, err)
			}
			if res.Hashed {
				hashed.Store(true)
			}
			prog.finish(i, res.SizeBytes)
			out[i] = fetch.File{Path: o.rel, SizeBytes: res.SizeBytes, Digest: res.Digest, Fingerprint: res.Fingerprint}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fetch.Result{}, err
	}
	return f.prefixResult(req, out, hashed.Load())
}

// list returns the objects below the prefix of ref, following the listing's
// pages until it ends, ctx is done or MaxPrefixObjects is passed.
func (f *Fetcher) list(ctx context.Context, ref fetch.Ref) ([]minio.ObjectInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	noOwner := false
	var out []minio.ObjectInfo
	for o := range f.client.ListObjectsIter(ctx, ref.Bucket, minio.ListObjectsOptions{Prefix: ref.Key, Recursive: true, FetchOwner: &noOwner}) {
		if o.Err != nil {
			return nil, classify(ctx, o.Err, ref.ID(), ref.Bucket, "", f.creds)
		}
		if len(out) == MaxPrefixObjects {
			return nil, fetch.Permanent(fmt.Errorf("%s: more than %d objects below the prefix; point model_ref at the model's own prefix", ref.ID(), MaxPrefixObjects))
		}
		out = append(out, o)
	}
	return out, ctx.Err()
}

// prefixResult prunes files that are no longer part of the model and
// describes the tree.
func (f *Fetcher) prefixResult(req fetch.Request, files []fetch.File, hashed bool) (fetch.Result, error) {
	return download.TreeResult(f.store, req.Name, files, hashed)
}

// presentPrefix is the fast path of a prefix: every file recorded at the
// last verification still has its fingerprint and is selected by the
// include patterns. Nothing is read and the server is not asked; objects
// added below the prefix since are picked up by the next re-verification.
func (f *Fetcher) presentPrefix(req fetch.Request) (fetch.Result, bool) {
	k := req.Known
	if k == nil || len(k.Files) == 0 || req.Reverify {
		return fetch.Result{}, false
	}
	for _, kf := range k.Files {
		rel, err := content.CheckRel(kf.Path)
		if err != nil || !match(req.Include, rel) {
			return fetch.Result{}, false
		}
		fi, err := os.Lstat(filepath.Join(f.store.ModelDir(req.Name), filepath.FromSlash(rel)))
		if err != nil || !fi.Mode().IsRegular() || verify.FingerprintOf(fi) != kf.Fingerprint || !f.store.Has(kf.Digest, fi.Size()) {
			return fetch.Result{}, false
		}
	}
	res, err := f.prefixResult(req, k.Files, false)
	return res, err == nil
}

// match reports whether rel, a path below the prefix, is selected by
// patterns (path.Match syntax, matched against the whole relative path).
// No patterns select everything; a pattern starting with "**/" matches in
// any directory, at any depth.
func match(patterns []string, rel string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, rel); ok {
			return true
		}
		rest, found := strings.CutPrefix(p, "**/")
		if !found {
			continue
		}
		for sub := rel; ; {
			if ok, _ := path.Match(rest, sub); ok {
				return true
			}
			_, after, more := strings.Cut(sub, "/")
			if !more {
				break
			}
			sub = after
		}
	}
	return false
}

// aggregate sums the progress of a prefix's objects.
type aggregate struct {
	mu    sync.Mutex
	fn    func(done, total int64)
	done  []int64
	total int64
}

func newAggregate(fn func(done, total int64), objs []object) *aggregate {
	a := &aggregate{fn: fn, done: make([]int64, len(objs))}
	for _, o := range objs {
		a.total += o.size
	}
	return a
}

// part returns the progress callback of object i's download.
func (a *aggregate) part(i int) func(done, total int64) {
	if a.fn == nil {
		return nil
	}
	return func(done, _ int64) { a.set(i, done) }
}

// finish counts object i as complete, including one that was already
// present and so reported no progress.
func (a *aggregate) finish(i int, size int64) {
	if a.fn != nil {
		a.set(i, size)
	}
}

func (a *aggregate) set(i int, done int64) {
	a.mu.Lock()
	a.done[i] = done
	var sum int64
	for _, d := range a.done {
		sum += d
	}
	a.mu.Unlock()
	a.fn(sum, a.total)
}
