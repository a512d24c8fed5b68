package oci

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2"
	orascontent "oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/fetch/download"
	"github.com/model-provisioner/model-provisioner/fetch/https"
	"github.com/model-provisioner/model-provisioner/redact"
	"github.com/model-provisioner/model-provisioner/verify"
)

// MaxManifestBytes bounds the manifest read from a registry. Model
// manifests list a few layers and are a few kilobytes; the bound keeps a
// hostile registry from making the agent buffer gigabytes.
const MaxManifestBytes = 4 << 20

// Layer annotations that name a layer's file, besides
// org.opencontainers.image.title.
const (
	// AnnotationModelPackFilepath is the ModelPack (CNCF model-spec) layer
	// annotation holding the file's path in the model.
	AnnotationModelPackFilepath = "org.cncf.model.filepath"
	// annotationCNAIFilepath is its name in earlier model-spec drafts.
	annotationCNAIFilepath = "org.cnai.model.filepath"
	// annotationORASUnpack marks a layer that `oras push` made from a
	// directory: a tar archive to unpack, not a file.
	annotationORASUnpack = "io.deis.oras.content.unpack"
)

// Media types of manifests other than an OCI image manifest.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// Sentinel errors; check with errors.Is. All are returned marked permanent.
var (
	// ErrUnsupportedArtifact: the reference names something this fetcher
	// cannot lay out as model files (an image index, an archive layer, a
	// layer without a file name, a non-sha256 digest).
	ErrUnsupportedArtifact = errors.New("unsupported OCI artifact")
	// ErrNoCredentials: the registry asked for credentials and no Docker
	// config file has any for it.
	ErrNoCredentials = errors.New("the registry requires credentials and none are configured for it")
	// ErrUnauthorized: the registry refused the credentials given (or the
	// anonymous request): 401 or 403.
	ErrUnauthorized = errors.New("the registry refused access")
)

// Config configures a Fetcher.
type Config struct {
	// DockerConfig is a Docker config file (auths, credHelpers,
	// credsStore) with registry credentials. Empty means the Docker CLI's
	// own file (see DefaultDockerConfig). Either way the systemd credential
	// $CREDENTIALS_DIRECTORY/docker-config.json is searched too; see
	// configFiles for the order.
	DockerConfig string
	// Insecure lists registries spoken to over plain HTTP besides loopback
	// ones: "host" (any port), "host:port" or a CIDR. Others are HTTPS
	// only.
	Insecure []string
	// Download tunes parts, retries, stall detection and headroom. Its
	// RetryBase and Retries also govern manifest requests.
	Download download.Options
	// Offline forbids network access: only models already present are
	// served.
	Offline bool
	// Concurrency bounds the layers of one artifact fetched at once
	// (default 4).
	Concurrency int
	// UserAgent is sent with every request.
	UserAgent string
	// RootCAs replaces the system roots when set (private registries,
	// tests). SSL_CERT_FILE and SSL_CERT_DIR already extend the system
	// roots.
	RootCAs *x509.CertPool
}

// Fetcher fetches oci:// references. It is safe for concurrent use.
type Fetcher struct {
	store    *content.Store
	client   *auth.Client
	keychain keychain
	insecure insecureList
	cfg      Config
}

var _ fetch.Fetcher = (*Fetcher)(nil)

// New returns a Fetcher writing into store. It reads no credentials yet:
// they are looked up when a registry asks for them.
func New(store *content.Store, cfg Config) (*Fetcher, error) {
	if store == nil {
		return nil, errors.New("new oci fetcher: no content store")
	}
	insecure, err := parseInsecure(cfg.Insecure)
	if err != nil {
		return nil, fmt.Errorf("new oci fetcher: %w", err)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	f := &Fetcher{store: store, keychain: keychain{files: configFiles(cfg.DockerConfig)}, insecure: insecure, cfg: cfg}
	// Which registries may use plain HTTP is decided per repository before
	// any request, so redirects between plain-HTTP URLs are allowed here;
	// a redirect from HTTPS down to HTTP is still refused.
	httpClient := https.NewClient(https.ClientConfig{RootCAs: cfg.RootCAs, AllowHTTP: true})
	f.client = &auth.Client{
		Client:     httpClient,
		Credential: f.keychain.credential,
		Cache:      auth.NewCache(),
	}
	if cfg.UserAgent != "" {
		f.client.Header = http.Header{"User-Agent": {cfg.UserAgent}}
	}
	return f, nil
}

// PlainHTTP reports whether the registry (host or host:port) is spoken to
// over plain HTTP.
func (f *Fetcher) PlainHTTP(registry string) bool {
	return f.insecure.plainHTTP(strings.ToLower(registry))
}

// layer is one file of an artifact.
type layer struct {
	path   string
	desc   ocispec.Descriptor
	digest verify.Digest
}

// artifact is a resolved manifest.
type artifact struct {
	digest verify.Digest
	layers []layer
}

// Fetch makes the artifact present under models/<name>/ and records its
// manifest digest in Validators.OCIDigest.
//
// A model whose files all still have the fingerprints recorded at their
// last verification (req.Known) is returned without any network access,
// whether the reference is a digest or a tag: a tag is re-resolved only
// when something is missing. With req.Reverify the files are hashed again.
//
// req.Expected may be the sha256 of the one file of a single-layer
// artifact, or the manifest digest (which pins every layer); anything else
// is a mismatch (a file) or ErrDigestOnDirectory (several files). Errors
// wrap fetch.ErrNotFound, fetch.ErrDigestMismatch, content.ErrUnsafePath,
// ErrUnsupportedArtifact, ErrNoCredentials and ErrUnauthorized where those
// apply.
func (f *Fetcher) Fetch(ctx context.Context, req fetch.Request) (fetch.Result, error) {
	ref := req.Ref
	if ref.Scheme != fetch.SchemeOCI || ref.Registry == "" || ref.Repository == "" || (ref.Tag == "") == (ref.Digest == "") {
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("oci fetcher given a %s reference %s", ref.Scheme, ref.ID()))
	}
	if err := content.CheckName(req.Name); err != nil {
		return fetch.Result{}, fetch.Permanent(err)
	}
	if res, ok := f.present(ctx, req); ok {
		return res, nil
	}
	if f.cfg.Offline {
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("%s: %w: no network access in offline mode; fetch it while online or disable offline mode", ref.ID(), download.ErrOffline))
	}
	res, err := f.fetch(ctx, req)
	if err != nil {
		return fetch.Result{}, f.explain(ref, err)
	}
	return res, nil
}

func (f *Fetcher) fetch(ctx context.Context, req fetch.Request) (fetch.Result, error) {
	ref := req.Ref
	repo, err := remote.NewRepository(ref.Registry + "/" + ref.Repository)
	if err != nil {
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("%s: %w", ref.ID(), err))
	}
	repo.PlainHTTP = f.PlainHTTP(ref.Registry)
	repo.Client = f.client
	art, err := f.resolve(ctx, repo, ref)
	if err != nil {
		return fetch.Result{}, err
	}
	var layers []layer
	for _, l := range art.layers {
		if selected(req.Include, l.path) {
			layers = append(layers, l)
		}
	}
	if len(layers) == 0 {
		return fetch.Result{}, fetch.Permanent(fmt.Errorf("%s: no file of artifact %s matches include %q: %w", ref.ID(), art.digest, req.Include, fetch.ErrNotFound))
	}
	single := len(art.layers) == 1 && len(req.Include) == 0
	if !req.Expected.IsZero() && !req.Expected.Equal(art.digest) {
		switch {
		case !single:
			return fetch.Result{}, fetch.Permanent(fmt.Errorf("%s: %w: the artifact has %d files; give its manifest digest as expected_digest, or pin the reference by digest (oci://REGISTRY/REPO@sha256:...)", ref.ID(), fetch.ErrDigestOnDirectory, len(art.layers)))
		case !req.Expected.Equal(layers[0].digest):
			// The manifest names the layer's digest: a mismatch is known
			// before a byte is downloaded.
			return fetch.Result{}, fetch.Permanent(&verify.MismatchError{Path: ref.ID() + " (" + layers[0].path + ")", Expected: req.Expected, Actual: layers[0].digest})
		}
	}
	if single {
		return f.fetchFile(ctx, req, repo, art)
	}
	return f.fetchFiles(ctx, req, repo, art, layers)
}

// resolve fetches the manifest by tag or digest, checks its bytes against
// its digest, and lists its layers as files.
func (f *Fetcher) resolve(ctx context.Context, repo *remote.Repository, ref fetch.Ref) (artifact, error) {
	reference := ref.Tag
	if ref.Digest != "" {
		reference = ref.Digest
	}
	var desc ocispec.Descriptor
	var raw []byte
	err := download.Retry(ctx, f.cfg.Download, ref.ID(), func() error {
		var err error
		desc, raw, err = oras.FetchBytes(ctx, repo, reference, oras.FetchBytesOptions{MaxBytes: MaxManifestBytes})
		return classify(ref, "manifest", err)
	})
	if err != nil {
		return artifact{}, err
	}
	md, err := ociDigest(desc)
	if err != nil {
		return artifact{}, fetch.Permanent(fmt.Errorf("%s: manifest: %w", ref.ID(), err))
	}
	if ref.Digest != "" && md.String() != ref.Digest {
		return artifact{}, fetch.Permanent(&verify.MismatchError{Path: ref.ID() + " (manifest)", Expected: verify.Digest{Algo: verify.SHA256, Value: strings.TrimPrefix(ref.Digest, "sha256:")}, Actual: md})
	}
	switch desc.MediaType {
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
	case ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
		return artifact{}, fetch.Permanent(fmt.Errorf("%s: %w: %s is an index of several manifests (%s); reference one of them by digest", ref.ID(), ErrUnsupportedArtifact, md, desc.MediaType))
	default:
		return artifact{}, fetch.Permanent(fmt.Errorf("%s: %w: manifest %s has media type %q, not an OCI image manifest", ref.ID(), ErrUnsupportedArtifact, md, desc.MediaType))
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return artifact{}, fetch.Permanent(fmt.Errorf("%s: %w: manifest %s is not valid JSON: %v", ref.ID(), ErrUnsupportedArtifact, md, err))
	}
	if len(m.Layers) == 0 {
		return artifact{}, fetch.Permanent(fmt.Errorf("%s: %w: manifest %s has no layers", ref.ID(), ErrUnsupportedArtifact, md))
	}
	art := artifact{digest: md}
	seen := map[string]bool{}
	for i, d := range m.Layers {
		l, err := fileLayer(d)
		if err != nil {
			return artifact{}, fetch.Permanent(fmt.Errorf("%s: layer %d of %s: %w", ref.ID(), i, md, err))
		}
		if seen[l.path] {
			return artifact{}, fetch.Permanent(fmt.Errorf("%s: %w: two layers of %s are named %q", ref.ID(), ErrUnsupportedArtifact, md, l.path))
		}
		seen[l.path] = true
		art.layers = append(art.layers, l)
	}
	return art, nil
}

// fileLayer reads a layer's file name and digest, refusing layers that are
// not plain files and names that would leave the model directory.
func fileLayer(d ocispec.Descriptor) (layer, error) {
	dg, err := ociDigest(d)
	if err != nil {
		return layer{}, err
	}
	if archiveLayer(d) {
		return layer{}, fmt.Errorf("%w: %s is an archive (media type %s); unpacking archive layers is not supported: push each file as its own layer", ErrUnsupportedArtifact, dg, d.MediaType)
	}
	name := d.Annotations[ocispec.AnnotationTitle]
	if name == "" {
		name = d.Annotations[AnnotationModelPackFilepath]
	}
	if name == "" {
		name = d.Annotations[annotationCNAIFilepath]
	}
	if name == "" {
		return layer{}, fmt.Errorf("%w: %s (media type %s) has no file name: neither %s nor %s is set, so this does not look like a model artifact", ErrUnsupportedArtifact, dg, d.MediaType, ocispec.AnnotationTitle, AnnotationModelPackFilepath)
	}
	rel, err := content.CheckRel(name)
	if err != nil {
		return layer{}, err
	}
	if d.Size < 0 {
		return layer{}, fmt.Errorf("%w: %s has a negative size", ErrUnsupportedArtifact, dg)
	}
	return layer{path: rel, desc: d, digest: dg}, nil
}

// archiveLayer reports whether a layer is an archive of files rather than
// one file. `oras push` gives single files the generic image layer type
// (…image.layer.v1.tar) although they are not tar archives, so that type
// alone decides nothing; the model formats' own types do.
func archiveLayer(d ocispec.Descriptor) bool {
	if d.Annotations[annotationORASUnpack] == "true" {
		return true
	}
	mt := d.MediaType
	for _, prefix := range []string{"application/vnd.cncf.model.", "application/vnd.cnai.model.", "application/vnd.kitops."} {
		if strings.HasPrefix(mt, prefix) {
			return strings.Contains(mt, ".tar")
		}
	}
	return false
}

// ociDigest converts a descriptor's digest, accepting sha256 only: the
// content store and the verification chain know no other algorithm.
func ociDigest(d ocispec.Descriptor) (verify.Digest, error) {
	algo, value, _ := strings.Cut(string(d.Digest), ":")
	dg, err := verify.NewDigest(algo, value)
	if err != nil {
		return verify.Digest{}, fmt.Errorf("%w: digest %q: %v", ErrUnsupportedArtifact, d.Digest, err)
	}
	return dg, nil
}

// selected reports whether the file path (slash-separated) is chosen by
// the include patterns: no patterns choose everything; a pattern matches
// the whole path, and a pattern without "/" also the base name in any
// directory.
func selected(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
		if !strings.Contains(p, "/") {
			if ok, _ := path.Match(p, path.Base(name)); ok {
				return true
			}
		}
	}
	return false
}

func (f *Fetcher) source(repo *remote.Repository, ref fetch.Ref, l layer) *blobSource {
	scheme := "https"
	if repo.PlainHTTP {
		scheme = "http"
	}
	return &blobSource{
		client: f.client,
		url:    scheme + "://" + repo.Reference.Host() + "/v2/" + repo.Reference.Repository + "/blobs/" + l.desc.Digest.String(),
		ref:    repo.Reference,
		desc:   l.desc,
		name:   "oci://" + ref.Registry + "/" + ref.Repository + "@" + l.desc.Digest.String(),
		ua:     f.cfg.UserAgent,
	}
}

// ingestKey names a layer's partial download by its digest alone: the bytes
// are the same from any repository, so a download interrupted under one
// model resumes under another.
func ingestKey(d verify.Digest) string { return content.IngestKey("oci-blob\x00" + d.String()) }

// fetchFile makes the one layer of an artifact the model file
// models/<name>/<title>.
func (f *Fetcher) fetchFile(ctx context.Context, req fetch.Request, repo *remote.Repository, art artifact) (fetch.Result, error) {
	l := art.layers[0]
	opts := f.cfg.Download
	opts.Progress = req.Progress
	res, err := download.EnsureFile(ctx, f.store, download.File{
		Name:     req.Name,
		Rel:      l.path,
		Key:      ingestKey(l.digest),
		Source:   f.source(repo, req.Ref, l),
		Expected: l.digest,
		Known:    req.Known,
		Reverify: req.Reverify,
	}, opts)
	if err != nil {
		return fetch.Result{}, layerError(req.Ref, l, err)
	}
	// A file the previous version of the artifact had under another name
	// must not linger next to this one.
	if err := f.store.Prune(req.Name, map[string]bool{l.path: true}); err != nil {
		return fetch.Result{}, err
	}
	res.Validators = fetch.Validators{OCIDigest: art.digest.String()}
	return res, nil
}

// fetchFiles fetches the chosen layers of an artifact in parallel into the
// directory models/<name>/.
func (f *Fetcher) fetchFiles(ctx context.Context, req fetch.Request, repo *remote.Repository, art artifact, layers []layer) (fetch.Result, error) {
	known := map[string]fetch.File{}
	if req.Known != nil {
		for _, kf := range req.Known.Files {
			known[kf.Path] = kf
		}
	}
	sizes := make([]int64, len(layers))
	for i, l := range layers {
		sizes[i] = l.desc.Size
	}
	prog := download.NewTreeProgress(req.Progress, sizes)
	out := make([]fetch.File, len(layers))
	hashed := make([]bool, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.cfg.Concurrency)
	for i, l := range layers {
		g.Go(func() error {
			var k *fetch.Known
			if kf, ok := known[l.path]; ok && kf.Digest.Equal(l.digest) {
				k = &fetch.Known{Digest: kf.Digest, Fingerprint: kf.Fingerprint}
			}
			opts := f.cfg.Download
			opts.Progress = prog.File(i)
			res, err := download.EnsureFile(gctx, f.store, download.File{
				Name: req.Name, Rel: l.path, Key: ingestKey(l.digest),
				Source: f.source(repo, req.Ref, l), Expected: l.digest,
				Known: k, Reverify: req.Reverify,
			}, opts)
			if err != nil {
				return layerError(req.Ref, l, err)
			}
			out[i] = fetch.File{Path: l.path, SizeBytes: res.SizeBytes, Digest: res.Digest, Fingerprint: res.Fingerprint}
			hashed[i] = res.Hashed
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fetch.Result{}, err
	}
	res, err := f.dirResult(req.Name, out)
	if err != nil {
		return fetch.Result{}, err
	}
	for _, h := range hashed {
		res.Hashed = res.Hashed || h
	}
	res.Validators = fetch.Validators{OCIDigest: art.digest.String()}
	return res, nil
}

// layerError names the model and file a layer failed for, and says who is
// at fault when its bytes did not match the manifest.
func layerError(ref fetch.Ref, l layer, err error) error {
	var mm *verify.MismatchError
	if errors.As(err, &mm) && mm.Expected.Equal(l.digest) {
		return fmt.Errorf("%s: %s: the registry sent bytes that do not match the layer digest its manifest gives; its copy is damaged or was tampered with, and nothing was kept: %w", ref.ID(), l.path, err)
	}
	return fmt.Errorf("%s: %s: %w", ref.ID(), l.path, err)
}

// dirResult prunes models/<name> to exactly files and describes it.
func (f *Fetcher) dirResult(name string, files []fetch.File) (fetch.Result, error) {
	return download.TreeResult(f.store, name, files, false)
}

// present is the fast path: every file recorded at the last verification
// is still there with its fingerprint, and its blob is stored. The registry
// is not asked. It declines (false) whenever anything differs, leaving the
// decision to the full fetch.
func (f *Fetcher) present(ctx context.Context, req fetch.Request) (fetch.Result, bool) {
	k := req.Known
	if k == nil {
		return fetch.Result{}, false
	}
	var v fetch.Validators
	pinned := req.Ref.Digest
	if pinned != "" {
		v.OCIDigest = pinned
	}
	exp := req.Expected
	if len(k.Files) > 0 {
		dir := f.store.ModelDir(req.Name)
		// Only a digest reference pins what the manifest digest names; a
		// tag must be resolved to check one.
		if k.LocalPath != dir || !exp.IsZero() && exp.String() != pinned {
			return fetch.Result{}, false
		}
		files := make([]fetch.File, len(k.Files))
		hashed := false
		for i, kf := range k.Files {
			if !selected(req.Include, kf.Path) {
				return fetch.Result{}, false
			}
			r, ok := f.presentFile(ctx, filepath.Join(dir, filepath.FromSlash(kf.Path)), kf.Digest, kf.Fingerprint, req.Reverify)
			if !ok {
				return fetch.Result{}, false
			}
			files[i] = fetch.File{Path: kf.Path, SizeBytes: r.SizeBytes, Digest: kf.Digest, Fingerprint: r.Fingerprint}
			hashed = hashed || r.Hashed
		}
		res, err := f.dirResult(req.Name, files)
		if err != nil {
			return fetch.Result{}, false
		}
		res.Hashed, res.Validators = hashed, v
		return res, true
	}
	if k.Digest.IsZero() || len(req.Include) > 0 || !exp.IsZero() && !exp.Equal(k.Digest) && exp.String() != pinned {
		return fetch.Result{}, false
	}
	rel, err := filepath.Rel(f.store.ModelDir(req.Name), k.LocalPath)
	if err != nil {
		return fetch.Result{}, false
	}
	if _, err := content.CheckRel(filepath.ToSlash(rel)); err != nil {
		return fetch.Result{}, false
	}
	res, ok := f.presentFile(ctx, k.LocalPath, k.Digest, k.Fingerprint, req.Reverify)
	if !ok {
		return fetch.Result{}, false
	}
	res.Owned, res.Validators = true, v
	return res, true
}

// presentFile checks one linked file against its recorded digest: without
// reading it when its fingerprint is unchanged, by hashing it when reverify
// is set.
func (f *Fetcher) presentFile(ctx context.Context, p string, d verify.Digest, fp verify.Fingerprint, reverify bool) (fetch.Result, bool) {
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || !f.store.Has(d, fi.Size()) {
		return fetch.Result{}, false
	}
	if !reverify && verify.FingerprintOf(fi) != fp {
		return fetch.Result{}, false
	}
	res, err := fetch.VerifyLocalFile(ctx, p, fi, d, &fetch.Known{LocalPath: p, Digest: d, Fingerprint: fp}, reverify)
	if err != nil {
		return fetch.Result{}, false
	}
	return res, true
}

// classify turns an oras-go failure into one the retry loop and the
// operator understand: missing and refused are permanent, busy and broken
// servers transient.
func classify(ref fetch.Ref, what string, err error) error {
	if err == nil {
		return nil
	}
	var er *errcode.ErrorResponse
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, errdef.ErrNotFound):
		return fetch.Permanent(fmt.Errorf("%s: %s not found in the registry; check the repository and tag: %w", ref.ID(), what, fetch.ErrNotFound))
	case errors.As(err, &er):
		se := &download.StatusError{Code: er.StatusCode, Status: registryStatus(er), Source: ref.ID()}
		switch {
		case er.StatusCode == http.StatusNotFound:
			return fetch.Permanent(fmt.Errorf("%s: %s not found in the registry (%s); check the repository and tag: %w", ref.ID(), what, se.Status, fetch.ErrNotFound))
		case er.StatusCode == http.StatusUnauthorized || er.StatusCode == http.StatusForbidden:
			return fetch.Permanent(fmt.Errorf("%s: %s: %w (%s)", ref.ID(), what, ErrUnauthorized, se.Status))
		case se.Transient():
			return se
		}
		return fetch.Permanent(se)
	case errors.Is(err, errdef.ErrSizeExceedsLimit):
		return fetch.Permanent(fmt.Errorf("%s: %w: %s is larger than %d bytes", ref.ID(), ErrUnsupportedArtifact, what, MaxManifestBytes))
	case errors.Is(err, orascontent.ErrMismatchedDigest), errors.Is(err, orascontent.ErrTrailingData):
		return fetch.Permanent(fmt.Errorf("%s: the registry sent a %s that does not match its digest: %w (%v)", ref.ID(), what, fetch.ErrDigestMismatch, err))
	case errors.Is(err, errdef.ErrInvalidReference), errors.Is(err, errdef.ErrInvalidDigest):
		return fetch.Permanent(fmt.Errorf("%s: %w", ref.ID(), err))
	}
	return classifyTransport(ref.ID(), fmt.Errorf("%s: %s: %w", ref.ID(), what, &transportError{msg: redact.String(err.Error()), err: err}))
}

// registryStatus is an error response's status with the registry's own
// error codes and messages, e.g. "401 Unauthorized: UNAUTHORIZED
// authentication required".
func registryStatus(er *errcode.ErrorResponse) string {
	s := fmt.Sprintf("%d %s", er.StatusCode, http.StatusText(er.StatusCode))
	var parts []string
	for _, e := range er.Errors {
		parts = append(parts, strings.TrimSpace(e.Code+" "+e.Message))
	}
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, "; ")
	}
	return s
}

// explain adds what to do next to credential failures.
func (f *Fetcher) explain(ref fetch.Ref, err error) error {
	var se *download.StatusError
	switch {
	case errors.Is(err, ErrNoCredentials):
		return fmt.Errorf("%w; add an auths entry for %s (docker login %s writes one) to one of: %s", err, ref.Registry, ref.Registry, f.keychain.describe())
	case errors.Is(err, ErrUnauthorized):
		return fmt.Errorf("%w; check the credentials for %s in: %s", err, ref.Registry, f.keychain.describe())
	case errors.As(err, &se) && (se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden):
		return fetch.Permanent(fmt.Errorf("%w: %w; check the credentials for %s in: %s", ErrUnauthorized, err, ref.Registry, f.keychain.describe()))
	}
	return err
}
