package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/model-provisioner/model-provisioner/catalog"
	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/gguf"
	"github.com/model-provisioner/model-provisioner/handoff"
	"github.com/model-provisioner/model-provisioner/modelinfo"
	"github.com/model-provisioner/model-provisioner/verify"
)

// Catalog is what reconcile needs from the on-disk catalog.
type Catalog interface {
	// Get returns the entry for id or an error wrapping catalog.ErrNotFound.
	Get(id string) (catalog.Entry, error)
	// Update runs fn on the current index under the catalog's lock and
	// persists it when fn reports a change.
	Update(fn func(idx *catalog.Index) (bool, error)) error
}

var _ Catalog = (*catalog.Store)(nil)

// ProvisionerConfig configures a Provisioner.
type ProvisionerConfig struct {
	// Catalog records what is present. Required.
	Catalog Catalog
	// Fetchers maps reference schemes to fetchers. Required.
	Fetchers *fetch.Registry
	// HandoffDir is where <name>.json handoff files go when a spec does not
	// name its own handoff path. Empty means: no handoff unless the spec
	// names one.
	HandoffDir string
	// Logger receives one line per state change. Defaults to discarding.
	Logger *slog.Logger
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
	// Observer receives fetch and verification measurements. Optional.
	Observer Observer
	// Content is the store downloaded models live in; Prune removes what
	// retired models no longer need from it. Optional.
	Content Content
	// BatchUses leaves a new name for bytes already active under another
	// name out of the catalog: Ensure writes its handoff and returns, and
	// the caller records the name with RecordUses, many in one write. The
	// reconcile loop does this; a one-shot caller does not.
	BatchUses bool
}

// Content is what the Provisioner needs from the content store.
type Content interface {
	// RemoveModel deletes the tree models/<name>.
	RemoveModel(name string) error
	// GC deletes blobs no model tree links to and not in keep.
	GC(keep map[string]bool) (int, error)
}

// Provisioner makes single models present, verified, registered and handed
// off. It is safe for concurrent use; concurrent calls for the same model
// share one execution.
type Provisioner struct {
	cat        Catalog
	fetchers   *fetch.Registry
	handoffDir string
	log        *slog.Logger
	now        func() time.Time
	obs        Observer
	content    Content
	batchUses  bool
	flight     singleflight.Group
}

// NewProvisioner returns a Provisioner, or an error if a required dependency
// is missing.
func NewProvisioner(cfg ProvisionerConfig) (*Provisioner, error) {
	if cfg.Catalog == nil {
		return nil, errors.New("new provisioner: no catalog")
	}
	if cfg.Fetchers == nil {
		return nil, errors.New("new provisioner: no fetchers")
	}
	p := &Provisioner{cat: cfg.Catalog, fetchers: cfg.Fetchers, handoffDir: cfg.HandoffDir, log: cfg.Logger, now: cfg.Now, obs: cfg.Observer, content: cfg.Content, batchUses: cfg.BatchUses}
	if p.obs == nil {
		p.obs = nopObserver{}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// Spec is everything EnsurePresent needs to know about one model.
type Spec struct {
	// Name names the model's handoff file; defaults to Ref.DefaultName().
	Name string
	// Ref is the parsed model reference.
	Ref fetch.Ref
	// Expected is the digest the bytes must have; zero when none was given.
	Expected verify.Digest
	// Strict asks for verification; without Expected it only warns.
	Strict bool
	// HandoffPath overrides <HandoffDir>/<Name>.json.
	HandoffPath string
	// Reverify hashes the bytes even if their fingerprint is unchanged.
	Reverify bool
	// SpecFile is the models.d file declaring the model; empty for one-shot.
	SpecFile string
	// Include selects the files of a multi-file model.
	Include []string
	// VersionID pins an object version (s3).
	VersionID string
	// Engine selects the handoff form; "" chooses it from the format.
	Engine modelinfo.Engine
	// Progress, when set, receives download progress (bytes done, total).
	Progress func(done, total int64) `json:"-"`
}

// ResolvedModel is the result of a successful ensure: what an engine
// launcher needs to start an engine on the model.
type ResolvedModel struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	LocalPath    string         `json:"path"`
	SizeBytes    int64          `json:"size_bytes"`
	Digest       string         `json:"digest,omitempty"`
	Verification verify.Outcome `json:"verification"`
	CtxMax       *int64         `json:"ctx_max"`
	HandoffPath  string         `json:"handoff_path,omitempty"`
	// Hashed reports whether this call read and hashed the bytes; false when
	// the recorded fingerprint showed them unchanged.
	Hashed bool `json:"hashed"`
	// Engine is the handoff form written; Metadata describes the model as
	// its headers do (the same description the catalog and handoff hold).
	Engine   string          `json:"engine,omitempty"`
	Metadata *modelinfo.Info `json:"metadata,omitempty"`

	// pendingUse is this name's use of the model when the Provisioner
	// batches uses and left it for RecordUses.
	pendingUse *catalog.Use
}

// EnsurePresent makes the model named by ref present and verified against
// digest (zero for none), registers it in the catalog as Active and writes
// its handoff file.
func (p *Provisioner) EnsurePresent(ctx context.Context, ref fetch.Ref, digest verify.Digest) (ResolvedModel, error) {
	return p.Ensure(ctx, Spec{Ref: ref, Expected: digest})
}

// EnsurePresentString parses s as a model reference, resolving a relative
// path against the working directory, and calls EnsurePresent.
func (p *Provisioner) EnsurePresentString(ctx context.Context, s string, digest verify.Digest) (ResolvedModel, error) {
	wd, err := os.Getwd()
	if err != nil {
		return ResolvedModel{}, fmt.Errorf("ensure %q: %w", s, err)
	}
	ref, err := fetch.ParseRef(s, wd)
	if err != nil {
		return ResolvedModel{}, err
	}
	return p.EnsurePresent(ctx, ref, digest)
}

// Ensure is EnsurePresent with every option of a spec file.
//
// Concurrent calls for the same model and options do the I/O once and share
// the result. On success the catalog entry is Active and the handoff file
// holds the model's path and metadata. When the bytes are missing or fail
// verification, a model that was Active is retired (its handoff removed, so
// no engine is handed bad bytes), the failure is recorded, and the error
// wraps fetch.ErrNotFound or fetch.ErrDigestMismatch. Whether retrying can
// help is reported by fetch.IsPermanent.
func (p *Provisioner) Ensure(ctx context.Context, spec Spec) (ResolvedModel, error) {
	if spec.Name == "" {
		spec.Name = SanitizeName(spec.Ref.DefaultName())
	}
	if spec.HandoffPath == "" && p.handoffDir != "" {
		spec.HandoffPath = filepath.Join(p.handoffDir, spec.Name+".json")
	}
	key := strings.Join([]string{spec.Ref.ID(), spec.Name, spec.Expected.String(), spec.HandoffPath, spec.SpecFile, fmt.Sprint(spec.Strict, spec.Reverify, spec.Include, spec.VersionID), string(spec.Engine)}, "\x00")
	v, err, _ := p.flight.Do(key, func() (any, error) { return p.ensure(ctx, spec) })
	if err != nil {
		return ResolvedModel{}, err
	}
	return v.(ResolvedModel), nil
}

func (p *Provisioner) ensure(ctx context.Context, spec Spec) (ResolvedModel, error) {
	id := spec.Ref.ID()
	log := p.log.With("model", spec.Name, "id", id)

	prev, err := p.cat.Get(id)
	hadPrev := err == nil
	if err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return ResolvedModel{}, fmt.Errorf("ensure %s: %w", id, err)
	}
	f, err := p.fetchers.Lookup(spec.Ref.Scheme)
	if err != nil {
		return ResolvedModel{}, fmt.Errorf("ensure %s: %w", id, err)
	}
	req := fetch.Request{Ref: spec.Ref, Name: spec.Name, Expected: spec.Expected, Reverify: spec.Reverify, Progress: spec.Progress, Include: spec.Include, VersionID: spec.VersionID}
	if hadPrev && prev.Verification.Result != verify.Fail && (!prev.Digest.IsZero() || len(prev.Files) > 0) {
		req.Known = &fetch.Known{LocalPath: prev.LocalPath, Digest: prev.Digest, Fingerprint: prev.Fingerprint}
		for _, f := range prev.Files {
			req.Known.Files = append(req.Known.Files, fetch.File(f))
		}
		if !slices.Equal(spec.Include, prev.Include) {
			// Other include patterns select other files: list the source
			// again (files already stored are linked, not downloaded).
			req.Known = nil
		}
		if req.Known != nil && spec.VersionID != "" && spec.VersionID != prev.Validators.VersionID {
			// A newly pinned object version is another set of bytes,
			// whatever the id says.
			req.Known = nil
		}
	}
	start := p.now()
	res, err := f.Fetch(ctx, req)
	var hashed int64
	if res.Hashed {
		hashed = res.SizeBytes
	}
	p.obs.Fetched(string(spec.Ref.Scheme), p.now().Sub(start), hashed, err)
	if errors.Is(err, fetch.ErrDigestMismatch) {
		p.obs.Verified(verify.Fail)
	}
	if err != nil {
		err = fmt.Errorf("ensure %s (%s): %w", spec.Name, id, err)
		if rerr := p.recordFailure(spec, prev, hadPrev, res, err); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return ResolvedModel{}, err
	}

	// An unchanged model keeps the description read when its bytes were
	// verified: the fast path reads none of them. Anything else is inspected
	// again (headers only, kilobytes of a multi-GB model).
	var info modelinfo.Info
	if stillDescribed(prev, hadPrev, res) {
		info = *prev.Metadata.Info
	} else {
		info, err = modelinfo.Inspect(ctx, res.LocalPath)
	}
	if err != nil {
		if incompleteModel(err) {
			err = fetch.Permanent(err)
		}
		err = fmt.Errorf("ensure %s (%s): %w", spec.Name, id, err)
		if rerr := p.recordFailure(spec, prev, hadPrev, res, err); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return ResolvedModel{}, err
	}

	now := p.now().UnixMilli()
	var outcome verify.Outcome
	switch {
	case !spec.Expected.IsZero():
		outcome = verify.Outcome{Result: verify.Pass, Reason: "sha256 matches expected_digest"}
	case res.IsDir:
		outcome = verify.Outcome{Result: verify.Warn, Reason: "directory model: no digest to verify"}
	default:
		outcome = verify.Outcome{Result: verify.Warn, Reason: "no expected_digest given: sha256 recorded, not verified"}
	}
	if res.Hashed || !hadPrev || prev.Verification.Result != outcome.Result {
		p.obs.Verified(outcome.Result)
	}

	// The entry is shared by every name that declares this model; this
	// spec's name is one use of it. A verification failure retired the
	// others too, so they declare themselves again.
	use := catalog.Use{Name: spec.Name, SpecFile: spec.SpecFile, HandoffPath: spec.HandoffPath, Engine: string(spec.Engine)}
	prevActive := hadPrev && prev.Lifecycle == catalog.Active
	var old catalog.Use
	hadUse := false
	if prevActive {
		old, hadUse = prev.Use(spec.Name)
	}
	if hadUse && use.SpecFile == "" {
		// A one-shot ensure of a model that a spec file declares does not
		// take it away from the agent.
		use.SpecFile = old.SpecFile
	}

	next := catalog.Entry{
		ID:           id,
		Source:       string(spec.Ref.Scheme),
		LocalPath:    res.LocalPath,
		IsDir:        res.IsDir,
		SizeBytes:    res.SizeBytes,
		Digest:       res.Digest,
		Verification: outcome,
		Lifecycle:    catalog.Active,
		Fingerprint:  res.Fingerprint,
		Owned:        res.Owned,
		Files:        catalogFiles(res.Files),
		Include:      spec.Include,
		CreatedMs:    now,
	}
	switch {
	case res.Hashed:
		next.LastVerifiedMs = now
	case hadPrev:
		next.LastVerifiedMs = prev.LastVerifiedMs
	}
	next.Validators = catalog.Validators(res.Validators)
	if hadPrev {
		next.CreatedMs = prev.CreatedMs
		if res.Validators == (fetch.Validators{}) {
			next.Validators = prev.Validators
		}
	}
	next.Metadata = catalog.Metadata{Format: info.Format, Architecture: info.Architecture, CtxMax: info.CtxMax, Info: &info}

	// Unchanged bytes under a name already recorded need no write; a new
	// name for unchanged bytes is left to the caller to record in a batch
	// (RecordUses) when it asked to, since every write rewrites the index.
	sameBytes := prevActive && sameBody(prev, next)
	var dropped []catalog.Use
	var pending *catalog.Use
	changed := true
	if !(sameBytes && hadUse && old == use) {
		// A name recorded with its handoff path was checked when it was
		// recorded; a new one must not take another model's handoff.
		if err := p.handoffTaken(id, use); err != nil {
			return ResolvedModel{}, fetch.Permanent(fmt.Errorf("ensure %s (%s): %w", spec.Name, id, err))
		}
	}
	switch {
	case sameBytes && hadUse && old == use:
		next, changed = prev, false
	case sameBytes && !hadUse && p.batchUses && use.SpecFile != "" && !specFileUsed(prev, use.SpecFile):
		next, pending = prev, &use
	default:
		var uses []catalog.Use
		if prevActive {
			uses = prev.Uses()
		}
		uses, dropped = withUse(uses, use)
		next = next.WithUses(uses)
		next.UpdatedMs = now
		if err := p.cat.Update(func(idx *catalog.Index) (bool, error) {
			cur, ok := idx.Entries[id]
			if ok && cur.Lifecycle == catalog.Active {
				// Another name's ensure may have written meanwhile: keep
				// its use.
				merged, _ := withUse(cur.Uses(), use)
				next = next.WithUses(merged)
			}
			idx.Entries[id] = next
			return true, nil
		}); err != nil {
			return ResolvedModel{}, fmt.Errorf("ensure %s: %w", id, err)
		}
	}

	handoffChanged := false
	if spec.HandoffPath != "" {
		handoffChanged, err = handoff.Write(spec.HandoffPath, handoffFile(next, use))
		if err != nil {
			return ResolvedModel{}, fmt.Errorf("ensure %s (%s): %w; the model is present but engines were not told: fix the handoff directory", spec.Name, id, err)
		}
	}
	for _, d := range dropped {
		if d.HandoffPath == "" || d.HandoffPath == spec.HandoffPath {
			continue
		}
		if _, err := removeOwnHandoff(d.HandoffPath, id); err != nil {
			log.Warn("could not remove the old handoff file", "path", d.HandoffPath, "err", err)
		}
	}
	if changed || handoffChanged {
		// Warnings about the spec itself go out when the model changes
		// state, not on every resync.
		if spec.Strict && spec.Expected.IsZero() {
			switch {
			case spec.Ref.Scheme == fetch.SchemeOCI && spec.Ref.Digest == "":
				log.Warn("strict_verification is set but the reference is a mutable tag with no expected_digest: the tag was resolved to "+res.Validators.OCIDigest+"; pin the model by digest (oci://REGISTRY/REPO@sha256:...)", "outcome", outcome.Result)
			default:
				log.Warn("strict_verification is set but no expected_digest is given; the model is used unverified: add expected_digest to the spec", "outcome", outcome.Result)
			}
		}
		log.Info("model active", "path", next.LocalPath, "size_bytes", next.SizeBytes, "digest", next.Digest.String(), "verification", outcome.Result, "hashed", res.Hashed)
		p.provenance(next, use, handoff.EventActive, "")
	} else {
		log.Debug("model unchanged", "path", next.LocalPath)
	}
	r := resolved(next, use, res.Hashed)
	r.pendingUse = pending
	return r, nil
}

// Retire marks the model id Retired in the catalog under every name that
// declares it, removes their handoff files (each only if it still
// describes this model) and writes a provenance record. It never deletes
// model bytes. Retiring an absent or already retired model does nothing.
func (p *Provisioner) Retire(id, reason string) error {
	return p.retire(id, "", reason)
}

// RetireName withdraws one name's use of the model id: its handoff file is
// removed, and the entry is retired only when no other name declares the
// model any more. handoffPath, when set, is the handoff the caller knows
// the name had: it is removed too if it still describes the model and no
// remaining name uses it, which covers a name whose use never reached the
// catalog (its ensure finished as the name went, or the model was retired
// under its other names meanwhile).
func (p *Provisioner) RetireName(id, name, handoffPath, reason string) error {
	err := p.retire(id, name, reason)
	if handoffPath == "" {
		return err
	}
	if e, gerr := p.cat.Get(id); gerr == nil && e.Lifecycle == catalog.Active {
		for _, u := range e.Uses() {
			if u.HandoffPath == handoffPath {
				return err
			}
		}
	}
	removed, rerr := removeOwnHandoff(handoffPath, id)
	if removed {
		p.log.Info("handoff removed", "model", name, "id", id, "path", handoffPath, "reason", reason)
	}
	return errors.Join(err, rerr)
}

func (p *Provisioner) retire(id, name, reason string) error {
	e, err := p.cat.Get(id)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("retire %s: %w", id, err)
	}
	if e.Lifecycle == catalog.Retired {
		return nil
	}
	if _, ok := e.Use(name); name != "" && !ok {
		return nil
	}
	now := p.now().UnixMilli()
	var gone []catalog.Use
	var after catalog.Entry
	if err := p.cat.Update(func(idx *catalog.Index) (bool, error) {
		gone = gone[:0]
		cur, ok := idx.Entries[id]
		if !ok || cur.Lifecycle == catalog.Retired {
			return false, nil
		}
		var keep []catalog.Use
		for _, u := range cur.Uses() {
			if name == "" || u.Name == name {
				gone = append(gone, u)
			} else {
				keep = append(keep, u)
			}
		}
		switch {
		case len(gone) == 0:
			return false, nil
		case len(keep) > 0:
			cur = cur.WithUses(keep)
		default:
			cur = cur.WithUses(gone[len(gone)-1:])
			cur.Lifecycle, cur.RetiredMs = catalog.Retired, now
		}
		cur.UpdatedMs = now
		idx.Entries[id] = cur
		after = cur
		return true, nil
	}); err != nil {
		return fmt.Errorf("retire %s: %w", id, err)
	}
	var errs []error
	for _, u := range gone {
		if u.HandoffPath != "" {
			if _, err := removeOwnHandoff(u.HandoffPath, id); err != nil {
				errs = append(errs, fmt.Errorf("retire %s: %w", id, err))
			}
		}
		if after.Lifecycle == catalog.Retired {
			p.log.Info("model retired", "model", u.Name, "id", id, "reason", reason)
		} else {
			p.log.Info("name withdrawn; the model stays active under its other names", "model", u.Name, "id", id, "reason", reason, "names", len(after.Uses()))
		}
		p.provenance(after, u, handoff.EventRetired, reason)
	}
	return errors.Join(errs...)
}

// Prune deletes from the catalog the entries of models retired longer ago
// than retention and, for models whose bytes the agent downloaded, their
// model trees and the blobs nothing else references. A file: model's bytes
// are never touched. It returns how many entries it removed.
func (p *Provisioner) Prune(retention time.Duration) (int, error) {
	cutoff := p.now().Add(-retention).UnixMilli()
	var pruned []catalog.Entry
	keep := map[string]bool{}
	liveNames := map[string]bool{}
	err := p.cat.Update(func(idx *catalog.Index) (bool, error) {
		pruned = pruned[:0]
		for id, e := range idx.Entries {
			if e.Lifecycle == catalog.Retired && e.SpecFile != "" && e.RetiredMs > 0 && e.RetiredMs < cutoff {
				delete(idx.Entries, id)
				pruned = append(pruned, e)
			}
		}
		for _, e := range idx.Entries {
			for _, u := range e.Uses() {
				liveNames[u.Name] = true
			}
			if !e.Digest.IsZero() {
				keep[e.Digest.String()] = true
			}
			for _, f := range e.Files {
				keep[f.Digest.String()] = true
			}
		}
		return len(pruned) > 0, nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune retired models: %w", err)
	}
	if p.content == nil || len(pruned) == 0 {
		return len(pruned), nil
	}
	var errs []error
	for _, e := range pruned {
		if e.Owned && !liveNames[e.Name] {
			if err := p.content.RemoveModel(e.Name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if n, err := p.content.GC(keep); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		p.log.Info("removed unreferenced downloaded content", "blobs", n)
	}
	return len(pruned), errors.Join(errs...)
}

// recordFailure retires a model whose bytes are gone or bad, so that nothing
// hands it to an engine, and records why. Transient failures (I/O errors,
// timeouts) leave the catalog alone: the last verified state still stands.
func (p *Provisioner) recordFailure(spec Spec, prev catalog.Entry, hadPrev bool, res fetch.Result, cause error) error {
	mismatch := errors.Is(cause, fetch.ErrDigestMismatch)
	gone := errors.Is(cause, fetch.ErrNotFound) || errors.Is(cause, fetch.ErrDigestOnDirectory) || errors.Is(cause, content.ErrBlobCorrupt) || incompleteModel(cause)
	if !mismatch && !(gone && hadPrev) {
		return nil
	}
	now := p.now().UnixMilli()
	e := prev
	if !hadPrev {
		e = catalog.Entry{ID: spec.Ref.ID(), Name: spec.Name, Source: string(spec.Ref.Scheme), CreatedMs: now}
	}
	if mismatch {
		e.LocalPath, e.SizeBytes, e.Digest, e.Fingerprint = res.LocalPath, res.SizeBytes, res.Digest, res.Fingerprint
		e.LastVerifiedMs = now
	}
	e.Verification = verify.Outcome{Result: verify.Fail, Reason: cause.Error()}
	wasActive := hadPrev && prev.Lifecycle == catalog.Active
	e.Lifecycle = catalog.Retired
	if wasActive || !hadPrev {
		e.RetiredMs = now
	}
	e.UpdatedMs = now
	// Bad bytes are bad under every name: all their handoffs go.
	handoffs := []string{spec.HandoffPath}
	if hadPrev {
		for _, u := range prev.Uses() {
			handoffs = append(handoffs, u.HandoffPath)
		}
	}
	e = e.WithUses([]catalog.Use{{Name: spec.Name, SpecFile: spec.SpecFile, HandoffPath: spec.HandoffPath, Engine: string(spec.Engine)}})
	if e.SpecFile == "" && hadPrev {
		e.SpecFile = prev.SpecFile
	}
	if err := p.cat.Update(func(idx *catalog.Index) (bool, error) {
		idx.Entries[e.ID] = e
		return true, nil
	}); err != nil {
		return fmt.Errorf("record failure of %s: %w", e.ID, err)
	}
	var errs []error
	for _, hp := range slices.Compact(slices.Sorted(slices.Values(handoffs))) {
		if hp == "" {
			continue
		}
		removed, err := removeOwnHandoff(hp, e.ID)
		if err != nil {
			errs = append(errs, err)
		}
		if removed {
			p.log.Info("handoff removed: model failed verification or is gone", "model", e.Name, "id", e.ID, "path", hp)
		}
	}
	// The failure itself is the caller's to report (the loop logs it with
	// its retry schedule; ensure prints it); here only the record is kept.
	if wasActive || mismatch {
		p.provenance(e, e.Uses()[0], handoff.EventFailed, cause.Error())
	}
	return errors.Join(errs...)
}

// handoffTaken returns an error when u's handoff path holds the handoff of
// another model that is Active under another name with that path: two
// specs sharing a handoff path would overwrite each other on every pass.
func (p *Provisioner) handoffTaken(id string, u catalog.Use) error {
	if u.HandoffPath == "" {
		return nil
	}
	if d, ok := p.cat.(interface{ Dir() string }); ok && filepath.Dir(filepath.Clean(u.HandoffPath)) == d.Dir() {
		// Handoff writers sweep their directory for killed writers' temp
		// files, which would include the catalog's.
		return fmt.Errorf("handoff path %s is in the state directory: give it a directory of its own", u.HandoffPath)
	}
	if err := handoff.CheckPath(u.HandoffPath); err != nil {
		return err
	}
	f, err := handoff.Read(u.HandoffPath)
	if err != nil || f.Model.ID == id || f.Model.ID == "" {
		return nil
	}
	other, err := p.cat.Get(f.Model.ID)
	if err != nil || other.Lifecycle != catalog.Active {
		return nil
	}
	for _, o := range other.Uses() {
		if o.HandoffPath == u.HandoffPath && o.Name != u.Name {
			from := o.SpecFile
			if from == "" {
				from = "a one-shot ensure"
			}
			return fmt.Errorf("handoff path %s is already the handoff of model %q (%s, declared by %s): give each model its own handoff path", u.HandoffPath, o.Name, f.Model.ID, from)
		}
	}
	return nil
}

// removeOwnHandoff removes the handoff file at path only if it describes the
// model id, so that a path shared by mistake never loses another model's
// handoff.
func removeOwnHandoff(path, id string) (bool, error) {
	f, err := handoff.Read(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		// Not a handoff document: not ours to delete.
		return false, nil
	}
	if f.Model.ID != id {
		return false, nil
	}
	return handoff.Remove(path)
}

func (p *Provisioner) provenance(e catalog.Entry, u catalog.Use, event, reason string) {
	if u.HandoffPath == "" {
		return
	}
	rec := handoff.Record{
		Time:         p.now().UTC(),
		Event:        event,
		ModelID:      e.ID,
		Name:         u.Name,
		Path:         e.LocalPath,
		SizeBytes:    e.SizeBytes,
		Digest:       e.Digest.String(),
		Verification: string(e.Verification.Result),
		Reason:       reason,
	}
	if err := handoff.AppendProvenance(filepath.Dir(u.HandoffPath), rec); err != nil {
		p.log.Warn("could not write provenance", "model", u.Name, "id", e.ID, "err", err)
	}
}

func catalogFiles(fs []fetch.File) []catalog.File {
	if len(fs) == 0 {
		return nil
	}
	out := make([]catalog.File, len(fs))
	for i, f := range fs {
		out[i] = catalog.File(f)
	}
	return out
}

// sameBody reports whether two entries describe the same bytes in the same
// state: they differ in nothing but their names and UpdatedMs.
func sameBody(a, b catalog.Entry) bool {
	strip := func(e catalog.Entry) catalog.Entry {
		e = e.WithUses([]catalog.Use{{}})
		e.UpdatedMs = 0
		return e
	}
	return strip(a).Equal(strip(b))
}

// specFileUsed reports whether a use of e comes from the spec file.
func specFileUsed(e catalog.Entry, file string) bool {
	if e.SpecFile == file {
		return true
	}
	for _, u := range e.Aliases {
		if u.SpecFile == file {
			return true
		}
	}
	return false
}

// RecordUses records names under which models were made active by ensures
// that left them pending (ProvisionerConfig.BatchUses), in one catalog
// write. It returns the uses of models that are no longer Active (retired
// meanwhile when their other names went): those names must be ensured
// again.
func (p *Provisioner) RecordUses(uses map[string][]catalog.Use) (skipped map[string][]catalog.Use, err error) {
	if len(uses) == 0 {
		return nil, nil
	}
	now := p.now().UnixMilli()
	err = p.cat.Update(func(idx *catalog.Index) (bool, error) {
		skipped = map[string][]catalog.Use{}
		changed := false
		for id, us := range uses {
			cur, ok := idx.Entries[id]
			if !ok || cur.Lifecycle != catalog.Active {
				skipped[id] = us
				continue
			}
			all := cur.Uses()
			for _, u := range us {
				all, _ = withUse(all, u)
			}
			cur = cur.WithUses(all)
			cur.UpdatedMs = now
			idx.Entries[id] = cur
			changed = true
		}
		return changed, nil
	})
	if err != nil {
		return nil, fmt.Errorf("record model names: %w", err)
	}
	return skipped, nil
}

// withUse returns uses with u in place of the use of the same name, or
// added at the end, and the uses it displaced: a spec file declares one
// model, so a renamed model's old name goes.
func withUse(uses []catalog.Use, u catalog.Use) (out, dropped []catalog.Use) {
	placed := false
	for _, o := range uses {
		switch {
		case o.Name == u.Name:
			if !placed {
				out, placed = append(out, u), true
			}
			if o.HandoffPath != u.HandoffPath {
				dropped = append(dropped, o)
			}
		case u.SpecFile != "" && o.SpecFile == u.SpecFile:
			dropped = append(dropped, o)
		default:
			out = append(out, o)
		}
	}
	if !placed {
		out = append(out, u)
	}
	return out, dropped
}

// handoffFile is the handoff of e under the name u.
func handoffFile(e catalog.Entry, u catalog.Use) handoff.File {
	info := modelinfo.Info{Format: e.Metadata.Format, Architecture: e.Metadata.Architecture, CtxMax: e.Metadata.CtxMax, FileTypeID: -1}
	if e.Metadata.Info != nil {
		info = *e.Metadata.Info
	}
	return handoff.Build(modelinfo.Engine(u.Engine), handoff.Registration{
		ID: e.ID, Name: u.Name, Path: e.LocalPath, SizeBytes: e.SizeBytes,
		Digest: e.Digest.String(), Verification: string(e.Verification.Result),
	}, info)
}

// stillDescribed reports whether prev's recorded model description still
// holds for res without reading any model bytes: the fetch took the
// fingerprint fast path for the same files, and every shard the description
// lists is still there with its size (a stat each).
func stillDescribed(prev catalog.Entry, hadPrev bool, res fetch.Result) bool {
	if !hadPrev || res.Hashed || prev.Metadata.Info == nil || prev.LocalPath != res.LocalPath {
		return false
	}
	if res.IsDir {
		if len(res.Files) == 0 || len(res.Files) != len(prev.Files) {
			return false
		}
		for i, f := range res.Files {
			if catalog.File(f) != prev.Files[i] {
				return false
			}
		}
	} else if prev.Fingerprint == (verify.Fingerprint{}) || prev.Fingerprint != res.Fingerprint {
		return false
	}
	for _, sh := range prev.Metadata.Info.Shards {
		fi, err := os.Stat(sh.Path)
		if err != nil || fi.Size() != sh.SizeBytes {
			return false
		}
	}
	return true
}

// incompleteModel reports whether err says the model's files are
// incomplete or damaged, which no retry fixes: only the operator can.
func incompleteModel(err error) bool {
	var fe *gguf.FormatError
	return errors.Is(err, modelinfo.ErrMissingShard) || errors.Is(err, modelinfo.ErrNotFirstShard) ||
		errors.Is(err, modelinfo.ErrShardMismatch) || errors.Is(err, modelinfo.ErrTruncated) || errors.As(err, &fe)
}

func resolved(e catalog.Entry, u catalog.Use, hashed bool) ResolvedModel {
	r := ResolvedModel{
		ID: e.ID, Name: u.Name, LocalPath: e.LocalPath, SizeBytes: e.SizeBytes,
		Digest: e.Digest.String(), Verification: e.Verification, HandoffPath: u.HandoffPath, Hashed: hashed,
		Metadata: e.Metadata.Info,
	}
	if e.Metadata.Info != nil {
		r.Engine = string(u.Engine)
		if r.Engine == "" {
			r.Engine = string(modelinfo.DefaultEngine(*e.Metadata.Info))
		}
	}
	if e.Metadata.CtxMax > 0 {
		v := e.Metadata.CtxMax
		r.CtxMax = &v
	}
	return r
}

// SanitizeName turns s into a valid model name: letters, digits, '.', '_'
// and '-', not starting with '.' or '-', at most 128 characters. Other
// characters become '_'.
func SanitizeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			b[i] = '_'
		}
	}
	out := strings.TrimLeft(string(b), ".-")
	if len(out) > 128 {
		out = out[:128]
	}
	if out == "" {
		out = "model"
	}
	return out
}
