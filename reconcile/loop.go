package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/model-provisioner/model-provisioner/catalog"
	"github.com/model-provisioner/model-provisioner/desired"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/modelinfo"
	"github.com/model-provisioner/model-provisioner/watch"
)

// LoopCatalog is what the reconcile loop needs from the catalog beyond what
// the Provisioner uses.
type LoopCatalog interface {
	List() ([]catalog.Entry, error)
	// Salvage moves an index that does not parse aside (see
	// catalog.Salvage) and returns where it went, "" when it was fine.
	Salvage() (string, error)
}

var _ LoopCatalog = (*catalog.Store)(nil)

// LoopConfig configures a Loop.
type LoopConfig struct {
	// ModelsDir is the directory of spec files. Required.
	ModelsDir string
	// Provisioner does the per-model work. Required.
	Provisioner *Provisioner
	// Catalog lists what is registered, to find models to retire. Required.
	Catalog LoopCatalog
	// Concurrency bounds how many models are worked on at once (default 2).
	Concurrency int
	// BackoffBase and BackoffMax shape the retry delay of a failing model:
	// BackoffBase doubled per consecutive failure, capped at BackoffMax,
	// with jitter (defaults 2s and 5m).
	BackoffBase, BackoffMax time.Duration
	// RetiredRetention is how long retired entries stay in the catalog
	// (default 7 days).
	RetiredRetention time.Duration
	// Heartbeat, when positive, calls OnHeartbeat at that interval from the
	// loop goroutine itself, so the heartbeat stops if the loop is stuck.
	Heartbeat   time.Duration
	OnHeartbeat func()
	// OnReady is called once, when the first pass over every declared
	// model has finished.
	OnReady func()
	// Metrics records reconcile metrics. Optional.
	Metrics *Metrics
	// Logger receives one line per state change. Optional.
	Logger *slog.Logger
	// Clock and Jitter are replaceable in tests. Jitter returns a number in
	// [0, 1).
	Clock  Clock
	Jitter func() float64
}

// Loop keeps the models declared in a directory present. One goroutine, the
// one running Run, owns all reconcile state; workers only run ensures and
// report back. Status and Ready are safe to call from any goroutine.
type Loop struct {
	cfg LoopConfig
	log *slog.Logger

	// Owned by the Run goroutine.
	kick  chan watch.Signal // Trigger's mailbox; one pending signal at most
	specs desired.Reader    // parses only the spec files that changed

	lastGood   map[string]desired.Model // by spec file: last version that parsed
	models     map[string]*modelState   // by name
	queue      []*modelState
	firstPass  map[string]bool // names still to finish for readiness
	passFailed bool
	inFlight   int
	lastPrune  time.Time
	loggedErrs map[string]string // spec file -> error last logged
	// pendingUses are names made active whose catalog record is batched
	// (ProvisionerConfig.BatchUses), by model id.
	pendingUses  map[string][]catalog.Use
	pendingCount int
	// retrying holds the models with a retry scheduled (nextRetry set).
	retrying map[*modelState]struct{}

	mu         sync.Mutex // guards the fields below; never held across I/O
	status     map[string]ModelStatus
	progress   map[string]*progress // downloads in flight, by name
	specErrs   []FileError
	ready      bool
	lastResync time.Time
}

type modelState struct {
	name     string
	spec     Spec
	specKey  string
	file     string
	inFlight bool
	queued   bool
	// rerun asks for another ensure after the one in flight (the spec
	// changed, or a resync arrived, meanwhile).
	rerun    bool
	reverify bool
	removed  bool
	// activeID is the id last made Active under this name; replacing is an
	// earlier id still Active, to retire once the new one is.
	activeID  string
	replacing string
	attempts  int
	nextRetry time.Time
	status    ModelStatus
}

type job struct {
	st       *modelState
	spec     Spec
	reverify bool
}

type jobResult struct {
	st  *modelState
	res ResolvedModel
	err error
}

// NewLoop returns a Loop, or an error when a required field is missing.
func NewLoop(cfg LoopConfig) (*Loop, error) {
	switch {
	case cfg.ModelsDir == "":
		return nil, errors.New("new reconcile loop: no models directory")
	case cfg.Provisioner == nil:
		return nil, errors.New("new reconcile loop: no provisioner")
	case cfg.Catalog == nil:
		return nil, errors.New("new reconcile loop: no catalog")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 2 * time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 5 * time.Minute
	}
	if cfg.RetiredRetention <= 0 {
		cfg.RetiredRetention = 7 * 24 * time.Hour
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Jitter == nil {
		cfg.Jitter = rand.Float64
	}
	l := &Loop{
		cfg:         cfg,
		log:         cfg.Logger,
		lastGood:    map[string]desired.Model{},
		models:      map[string]*modelState{},
		loggedErrs:  map[string]string{},
		pendingUses: map[string][]catalog.Use{},
		retrying:    map[*modelState]struct{}{},
		status:      map[string]ModelStatus{},
		progress:    map[string]*progress{},
		kick:        make(chan watch.Signal, 1),
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics != nil {
		cfg.Metrics.setPhaseSource(l.phaseCounts)
		cfg.Metrics.setDownloadSource(l.Downloads)
	}
	return l, nil
}

// Ready reports whether the first pass over every declared model has
// finished, whatever its outcome.
func (l *Loop) Ready() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ready
}

// LastResync returns when a pass last finished with every model in place.
func (l *Loop) LastResync() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastResync
}

// Status returns a snapshot of every model's status, sorted by name.
func (l *Loop) Status() Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := Report{Ready: l.ready, LastResync: l.lastResync, ModelsDir: l.cfg.ModelsDir, Models: make([]ModelStatus, 0, len(l.status)), SpecErrors: slices.Clone(l.specErrs)}
	for _, s := range l.status {
		if p := l.progress[s.Name]; p != nil {
			s.BytesDone, s.BytesTotal, s.RateBytesPerSec = p.done, p.total, p.rate
		}
		r.Models = append(r.Models, s)
	}
	slices.SortFunc(r.Models, func(a, b ModelStatus) int { return cmp.Compare(a.Name, b.Name) })
	if r.SpecErrors == nil {
		r.SpecErrors = []FileError{}
	}
	return r
}

func (l *Loop) phaseCounts() map[Phase]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[Phase]int, len(Phases))
	for _, s := range l.status {
		out[s.Phase]++
	}
	return out
}

// Trigger asks for a pass, as a signal from the watcher would. It never
// blocks: when a triggered pass is already pending, the two are merged.
func (l *Loop) Trigger(sig watch.Signal) {
	for {
		select {
		case l.kick <- sig:
			return
		default:
		}
		select {
		case old := <-l.kick:
			sig.Reverify = sig.Reverify || old.Reverify
			sig.Rescan = sig.Rescan || old.Rescan
		default:
		}
	}
}

// Run reconciles until ctx is done. Each value received from signals starts
// a pass; a closed signals channel only stops new passes. Run returns nil
// when ctx is cancelled, after every worker it started has returned: in-flight
// ensures see the cancelled context and stop, leaving nothing half-written
// at a final path.
func (l *Loop) Run(ctx context.Context, signals <-chan watch.Signal) error {
	jobs := make(chan job)
	results := make(chan jobResult, l.cfg.Concurrency)
	workCtx, cancelWork := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range l.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.worker(workCtx, jobs, results)
		}()
	}
	defer l.flushUses()
	defer func() {
		cancelWork()
		close(jobs)
		// Workers may be blocked handing back a result; keep receiving
		// until they have all returned.
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		for {
			select {
			case <-results:
			case <-done:
				return
			}
		}
	}()

	var heartbeat <-chan time.Time
	var ticker *time.Ticker
	if l.cfg.Heartbeat > 0 && l.cfg.OnHeartbeat != nil {
		ticker = time.NewTicker(l.cfg.Heartbeat)
		defer ticker.Stop()
		heartbeat = ticker.C
	}
	for {
		var send chan job
		var next job
		if len(l.queue) > 0 {
			send = jobs
			next = l.nextJob()
		}
		var retry <-chan time.Time
		if d, ok := l.nextRetryIn(); ok {
			retry = l.cfg.Clock.After(d)
		}
		select {
		case <-ctx.Done():
			return nil
		case sig, ok := <-signals:
			if !ok {
				signals = nil
				continue
			}
			l.pass(sig)
		case sig := <-l.kick:
			l.pass(sig)
		case send <- next:
			l.queue = l.queue[1:]
			next.st.queued = false
			next.st.inFlight = true
			l.inFlight++
			// A re-check of an active model leaves it active: it stays
			// usable while its fingerprint (or, on reverify, its hash) is
			// checked.
			if next.st.activeID != next.spec.Ref.ID() || next.st.status.Phase != PhaseActive {
				phase := PhaseFetching
				if next.spec.Ref.Scheme == fetch.SchemeFile {
					phase = PhaseVerifying
				}
				l.setPhase(next.st, phase, "", next.st.status.LastError)
			}
		case r := <-results:
			l.inFlight--
			l.finish(r)
		case <-retry:
			l.enqueueDue()
		case <-heartbeat:
			l.cfg.OnHeartbeat()
		}
	}
}

func (l *Loop) nextJob() job {
	st := l.queue[0]
	j := job{st: st, spec: st.spec, reverify: st.reverify}
	j.spec.Reverify = st.reverify
	name := st.name
	j.spec.Progress = func(done, total int64) { l.recordProgress(name, done, total) }
	return j
}

// progress is a download's latest bytes and an exponentially smoothed rate.
type progress struct {
	done, total int64
	rate        float64
	at          time.Time
}

// recordProgress is called from workers while a download runs.
func (l *Loop) recordProgress(name string, done, total int64) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.progress[name]
	if p == nil {
		l.progress[name] = &progress{done: done, total: total, at: now}
		return
	}
	if dt := now.Sub(p.at).Seconds(); dt >= 0.2 {
		inst := float64(done-p.done) / dt
		if p.rate == 0 {
			p.rate = inst
		} else {
			p.rate = 0.7*p.rate + 0.3*inst
		}
		p.done, p.at = done, now
	}
	p.total = total
}

// Downloads returns the progress of the downloads in flight, by model name.
func (l *Loop) Downloads() map[string][3]float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][3]float64, len(l.progress))
	for name, p := range l.progress {
		out[name] = [3]float64{float64(p.done), float64(p.total), p.rate}
	}
	return out
}

func (l *Loop) worker(ctx context.Context, jobs <-chan job, results chan<- jobResult) {
	for j := range jobs {
		res, err := l.cfg.Provisioner.Ensure(ctx, j.spec)
		results <- jobResult{st: j.st, res: res, err: err}
	}
}

// pass reads the models directory and plans the work: ensure what is
// declared, retire what no longer is. It runs on the loop goroutine.
func (l *Loop) pass(sig watch.Signal) {
	now := l.cfg.Clock.Now()
	if m := l.cfg.Metrics; m != nil {
		m.passes.Inc()
		start := time.Now()
		defer func() { m.passDuration.Observe(time.Since(start).Seconds()) }()
	}
	res, err := l.specs.ReadDir(l.cfg.ModelsDir)
	if err != nil {
		// A missing or unreadable directory is not "no models": an unmounted
		// ConfigMap or a typo in the path must not retire every model.
		l.logSpecErr(l.cfg.ModelsDir, fmt.Sprintf("cannot read models directory: %v; keeping current models", err))
		l.countError("models_dir")
		l.markReadyIfIdle()
		return
	}
	l.forgetSpecErr(l.cfg.ModelsDir)
	l.salvageCatalog()

	want, specErrs := l.desiredModels(res)

	l.mu.Lock()
	l.specErrs = specErrs
	l.mu.Unlock()

	startFirst := l.firstPass == nil && !l.Ready()
	if startFirst {
		l.firstPass = map[string]bool{}
	}
	for name, w := range want {
		st := l.models[name]
		if st == nil || st.removed {
			st = &modelState{name: name, status: ModelStatus{Name: name, Phase: PhasePending, LastTransition: now}}
			l.models[name] = st
		}
		changed := st.specKey != w.key
		st.file = w.spec.SpecFile
		l.setSpecError(st, w.specErr)
		if changed {
			if st.activeID != "" && st.activeID != w.spec.Ref.ID() {
				st.replacing = st.activeID
			}
			st.spec, st.specKey = w.spec, w.key
			st.attempts = 0
			l.setRetry(st, time.Time{})
			st.status.ID, st.status.SpecFile = w.spec.Ref.ID(), w.spec.SpecFile
		}
		if startFirst {
			l.firstPass[name] = true
		}
		switch {
		case st.inFlight:
			if changed || sig.Reverify || sig.Rescan {
				st.rerun = true
				st.reverify = st.reverify || sig.Reverify
			}
		case !changed && !sig.Reverify && now.Before(st.nextRetry):
			// Backing off; the retry timer will enqueue it.
		default:
			st.reverify = st.reverify || sig.Reverify
			l.enqueue(st)
		}
	}
	for name, st := range l.models {
		if _, ok := want[name]; ok || st.removed {
			continue
		}
		st.removed = true
		if !st.inFlight {
			l.retire(st, "spec file removed")
		}
	}
	l.retireOrphans(want)
	if now.Sub(l.lastPrune) > time.Hour {
		l.lastPrune = now
		if n, err := l.cfg.Provisioner.Prune(l.cfg.RetiredRetention); err != nil {
			l.log.Warn("could not prune retired models from the catalog", "err", err)
		} else if n > 0 {
			l.log.Info("pruned retired models from the catalog", "count", n, "retention", l.cfg.RetiredRetention)
		}
	}
	l.passFailed = false
	l.markReadyIfIdle()
}

// salvageCatalog checks that the catalog index still parses and, when it
// does not (truncated or garbled on disk), moves it aside so that this pass
// verifies and registers every model again instead of failing them all.
func (l *Loop) salvageCatalog() {
	_, err := l.cfg.Catalog.List()
	if !errors.Is(err, catalog.ErrCorruptIndex) {
		return
	}
	l.countError("catalog_corrupt")
	aside, serr := l.cfg.Catalog.Salvage()
	if serr != nil {
		l.log.Error("catalog index is corrupt and could not be moved aside; models cannot be registered until it is fixed", "err", err, "salvage_err", serr)
		return
	}
	if aside == "" {
		return
	}
	// With no record, every model's next ensure hashes it again; its
	// handoff is rewritten once it is verified.
	l.log.Error("catalog index was corrupt; moved it aside and started an empty catalog: every model is verified again", "moved_to", aside, "err", err)
}

type wanted struct {
	spec    Spec
	key     string
	specErr string
}

// desiredModels combines the freshly parsed specs with the last good version
// of every file that no longer parses: a typo never retires a model.
func (l *Loop) desiredModels(res *desired.Result) (map[string]wanted, []FileError) {
	byFile := map[string]desired.Model{}
	for _, m := range res.Models {
		byFile[m.File] = m
	}
	fileErr := map[string]string{}
	for _, err := range res.Errors {
		var se *desired.SpecError
		file := ""
		if errors.As(err, &se) {
			file = se.File
		}
		fileErr[file] = err.Error()
	}
	// A model whose reference does not parse is a bad spec like any other.
	specs := map[string]Spec{}
	for file, m := range byFile {
		spec, err := specFromModel(m)
		if err != nil {
			delete(byFile, file)
			fileErr[file] = (&desired.SpecError{File: file, Field: "model_ref", Err: err}).Error()
			continue
		}
		specs[file] = spec
		l.lastGood[file] = m
	}
	want := map[string]wanted{}
	var errs []FileError
	for file, msg := range fileErr {
		if _, dup := byFile[file]; dup {
			continue
		}
		l.logSpecErr(file, msg)
		lg, ok := l.lastGood[file]
		if !ok {
			errs = append(errs, FileError{File: file, Error: msg})
			continue
		}
		spec, _ := specFromModel(lg)
		specs[file] = spec
		want[lg.Name] = wanted{spec: spec, key: lg.Hash + spec.Ref.ID(), specErr: msg + " (last good version of the file stays in force)"}
	}
	for file := range l.lastGood {
		_, ok := byFile[file]
		_, bad := fileErr[file]
		if !ok && !bad {
			delete(l.lastGood, file) // the file is gone
		}
	}
	for file := range l.loggedErrs {
		if _, bad := fileErr[file]; !bad && file != l.cfg.ModelsDir {
			l.forgetSpecErr(file)
		}
	}
	for file, m := range byFile {
		if other, ok := want[m.Name]; ok {
			// The name is held by another file's last good version.
			msg := fmt.Sprintf("%s: name %q is already declared by %s; rename one of them", file, m.Name, other.spec.SpecFile)
			errs = append(errs, FileError{File: file, Error: msg})
			l.logSpecErr(file, msg)
			continue
		}
		want[m.Name] = wanted{spec: specs[file], key: m.Hash + specs[file].Ref.ID()}
	}
	slices.SortFunc(errs, func(a, b FileError) int { return cmp.Compare(a.File, b.File) })
	return want, errs
}

func specFromModel(m desired.Model) (Spec, error) {
	ref, err := fetch.ParseRef(m.Ref, m.BaseDir)
	if err != nil {
		return Spec{}, err
	}
	engine, err := modelinfo.ParseEngine(m.Engine)
	if err != nil {
		return Spec{}, err
	}
	return Spec{
		Name: m.Name, Ref: ref, Expected: m.ExpectedDigest, Strict: m.Strict,
		HandoffPath: m.HandoffPath, SpecFile: m.File, Include: m.Include, VersionID: m.VersionID,
		Engine: engine,
	}, nil
}

// retireOrphans withdraws the names under which catalog entries were
// declared by a spec file that no spec file declares now: models whose file
// went away while the agent was not running, or whose model_ref changed. A
// name moved to another model is withdrawn only once its successor is
// active, so engines are never left without a handoff in between. An entry
// is retired when its last name goes.
func (l *Loop) retireOrphans(want map[string]wanted) {
	l.flushUses()
	entries, err := l.cfg.Catalog.List()
	if err != nil {
		l.log.Warn("could not list the catalog to find retired models", "err", err)
		l.countError("catalog")
		return
	}
	for _, e := range entries {
		if e.Lifecycle != catalog.Active {
			continue
		}
		for _, u := range e.Uses() {
			if u.SpecFile == "" {
				continue
			}
			reason := "no spec file declares it"
			if w, ok := want[u.Name]; ok {
				if w.spec.Ref.ID() == e.ID {
					continue
				}
				if st := l.models[u.Name]; st == nil || st.activeID != w.spec.Ref.ID() {
					continue
				}
				reason = "replaced by " + w.spec.Ref.ID()
			}
			if err := l.cfg.Provisioner.RetireName(e.ID, u.Name, "", reason); err != nil {
				l.log.Warn("could not retire model", "model", u.Name, "id", e.ID, "err", err)
				l.countError("retire")
			}
		}
	}
}

func (l *Loop) retire(st *modelState, reason string) {
	l.flushUses()
	if st.status.ID != "" {
		if err := l.cfg.Provisioner.RetireName(st.status.ID, st.name, st.status.HandoffPath, reason); err != nil {
			l.log.Warn("could not retire model", "model", st.name, "id", st.status.ID, "err", err)
			l.countError("retire")
		}
	}
	delete(l.firstPass, st.name)
	if st.queued {
		st.queued = false
		l.queue = slices.DeleteFunc(l.queue, func(q *modelState) bool { return q == st })
	}
	st.status.NextRetry = nil
	l.setPhase(st, PhaseRetired, reason, "")
}

func (l *Loop) enqueue(st *modelState) {
	if st.queued || st.inFlight {
		return
	}
	st.queued = true
	l.queue = append(l.queue, st)
}

// finish records the outcome of one ensure. It runs on the loop goroutine.
func (l *Loop) finish(r jobResult) {
	st := r.st
	st.inFlight = false
	l.mu.Lock()
	delete(l.progress, st.name)
	l.mu.Unlock()
	st.reverify = st.reverify && r.err != nil
	now := l.cfg.Clock.Now()
	if u := r.res.pendingUse; r.err == nil && u != nil {
		// Recorded before anything else: a name removed while its ensure
		// ran is retired below, and only a recorded name's handoff is
		// found and removed.
		l.pendingUses[r.res.ID] = append(l.pendingUses[r.res.ID], *u)
		l.pendingCount++
	}
	if st.removed {
		if r.err == nil {
			// The ensure wrote a handoff: the retirement must find it.
			st.status.ID, st.status.HandoffPath = r.res.ID, r.res.HandoffPath
		}
		if l.models[st.name] == st {
			l.retire(st, "spec file removed")
		}
		l.markReadyIfIdle()
		return
	}
	if r.err == nil {
		st.attempts = 0
		l.setRetry(st, time.Time{})
		st.status.NextRetry = nil
		st.status.Path, st.status.Verification = r.res.LocalPath, string(r.res.Verification.Result)
		st.status.HandoffPath = r.res.HandoffPath
		st.status.Engine, st.status.Metadata = r.res.Engine, r.res.Metadata
		st.status.BytesDone, st.status.BytesTotal = r.res.SizeBytes, r.res.SizeBytes
		if st.status.Phase == PhaseFailed {
			l.log.Info("model recovered", "model", st.name, "id", r.res.ID, "after_attempts", st.status.Attempts)
		}
		st.status.Attempts = 0
		st.activeID = r.res.ID
		l.setPhase(st, PhaseActive, r.res.Verification.Reason, st.status.LastError)
		if st.replacing != "" && st.replacing != r.res.ID {
			l.flushUses() // other names of the replaced model count
			if err := l.cfg.Provisioner.RetireName(st.replacing, st.name, "", "replaced by "+r.res.ID); err != nil {
				l.log.Warn("could not retire replaced model", "model", st.name, "id", st.replacing, "err", err)
				l.countError("retire")
			}
		}
		st.replacing = ""
	} else if !errors.Is(r.err, context.Canceled) {
		st.attempts++
		delay := l.backoff(st.attempts)
		l.setRetry(st, now.Add(delay))
		nr := st.nextRetry
		st.status.NextRetry = &nr
		st.status.Attempts = st.attempts
		msg := r.err.Error()
		if st.status.LastError != msg || st.status.Phase != PhaseFailed {
			l.log.Warn("model failed", "model", st.name, "id", st.spec.Ref.ID(), "attempt", st.attempts, "retry_in", delay.Round(time.Second), "permanent", fetch.IsPermanent(r.err), "err", msg)
		}
		l.countError(errorReason(r.err))
		l.passFailed = true
		l.setPhase(st, PhaseFailed, failReason(r.err), msg)
	}
	if st.rerun {
		st.rerun = false
		st.attempts = 0
		l.setRetry(st, time.Time{})
		l.enqueue(st)
	}
	if l.firstPass != nil {
		delete(l.firstPass, st.name)
	}
	if l.pendingCount >= maxPendingUses || (l.inFlight == 0 && len(l.queue) == 0) {
		l.flushUses()
	}
	l.markReadyIfIdle()
}

// maxPendingUses bounds how many names wait for their catalog record.
const maxPendingUses = 512

// flushUses records the pending names in the catalog, in one write. On
// failure they stay pending for the next flush.
func (l *Loop) flushUses() {
	if l.pendingCount == 0 {
		return
	}
	skipped, err := l.cfg.Provisioner.RecordUses(l.pendingUses)
	if err != nil {
		l.log.Warn("could not record model names in the catalog; will retry", "names", l.pendingCount, "err", err)
		l.countError("catalog")
		return
	}
	clear(l.pendingUses)
	l.pendingCount = 0
	// A model retired between an ensure and this write (its other names
	// went) is made active again by ensuring these names once more.
	for _, us := range skipped {
		for _, u := range us {
			if st := l.models[u.Name]; st != nil && !st.removed {
				if st.inFlight {
					st.rerun = true
				} else {
					l.enqueue(st)
				}
			}
		}
	}
}

// markReadyIfIdle marks the agent ready once the first pass's models are all
// done, and records a successful resync whenever nothing is left to do and
// nothing failed.
func (l *Loop) markReadyIfIdle() {
	if l.firstPass != nil && len(l.firstPass) == 0 {
		l.firstPass = nil
		l.mu.Lock()
		l.ready = true
		l.mu.Unlock()
		l.log.Info("first reconcile pass done", "models", len(l.models))
		if l.cfg.OnReady != nil {
			l.cfg.OnReady()
		}
	}
	if l.firstPass == nil && !l.Ready() {
		// The directory could not be read at start: nothing to wait for.
		l.mu.Lock()
		l.ready = true
		l.mu.Unlock()
		if l.cfg.OnReady != nil {
			l.cfg.OnReady()
		}
	}
	if l.inFlight == 0 && len(l.queue) == 0 && !l.passFailed && !l.anyFailed() {
		now := l.cfg.Clock.Now()
		l.mu.Lock()
		l.lastResync = now
		l.mu.Unlock()
		if m := l.cfg.Metrics; m != nil {
			m.lastResync.Set(float64(now.UnixNano()) / 1e9)
		}
	}
}

func (l *Loop) anyFailed() bool {
	for _, st := range l.models {
		if !st.removed && st.status.Phase == PhaseFailed {
			return true
		}
	}
	return false
}

// enqueueDue queues the failed models whose backoff has run out.
func (l *Loop) enqueueDue() {
	now := l.cfg.Clock.Now()
	for st := range l.retrying {
		if st.removed {
			l.setRetry(st, time.Time{})
			continue
		}
		if !st.inFlight && !st.queued && !now.Before(st.nextRetry) {
			l.setRetry(st, time.Time{})
			l.enqueue(st)
		}
	}
}

// setRetry sets when st is retried next; zero for never.
func (l *Loop) setRetry(st *modelState, at time.Time) {
	st.nextRetry = at
	if at.IsZero() {
		delete(l.retrying, st)
	} else {
		l.retrying[st] = struct{}{}
	}
}

// nextRetryIn returns how long until the earliest pending retry.
func (l *Loop) nextRetryIn() (time.Duration, bool) {
	var earliest time.Time
	for st := range l.retrying {
		if st.removed || st.inFlight || st.queued {
			continue
		}
		if earliest.IsZero() || st.nextRetry.Before(earliest) {
			earliest = st.nextRetry
		}
	}
	if earliest.IsZero() {
		return 0, false
	}
	return max(earliest.Sub(l.cfg.Clock.Now()), 0), true
}

// backoff returns the delay before attempt n+1: exponential from
// BackoffBase, capped at BackoffMax, with "equal jitter" (between half and
// all of it) so that a fleet of agents failing on one source at once does
// not retry in lockstep.
func (l *Loop) backoff(attempts int) time.Duration {
	d := l.cfg.BackoffBase
	for i := 1; i < attempts && d < l.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, l.cfg.BackoffMax)
	return d/2 + time.Duration(l.cfg.Jitter()*float64(d/2))
}

func (l *Loop) setPhase(st *modelState, phase Phase, reason, lastErr string) {
	if st.status.Phase != phase {
		st.status.LastTransition = l.cfg.Clock.Now()
	}
	st.status.Phase, st.status.Reason, st.status.LastError = phase, reason, lastErr
	l.mu.Lock()
	l.status[st.name] = st.status
	l.mu.Unlock()
}

func (l *Loop) setSpecError(st *modelState, msg string) {
	if st.status.SpecError == msg {
		return
	}
	st.status.SpecError = msg
	l.mu.Lock()
	l.status[st.name] = st.status
	l.mu.Unlock()
}

// logSpecErr logs a spec file's error once, not on every pass.
func (l *Loop) logSpecErr(file, msg string) {
	if l.loggedErrs[file] == msg {
		return
	}
	l.loggedErrs[file] = msg
	l.log.Warn("spec file rejected", "file", file, "err", msg)
	l.countError("spec_invalid")
}

func (l *Loop) forgetSpecErr(file string) {
	if _, ok := l.loggedErrs[file]; ok {
		delete(l.loggedErrs, file)
		l.log.Info("spec file accepted again", "file", file)
	}
}

func (l *Loop) countError(reason string) {
	if m := l.cfg.Metrics; m != nil {
		m.errors.WithLabelValues(reason).Inc()
	}
}

// errorReason classifies an ensure failure for the errors metric.
func errorReason(err error) string {
	switch {
	case errors.Is(err, fetch.ErrDigestMismatch):
		return "digest_mismatch"
	case errors.Is(err, fetch.ErrNotFound):
		return "not_found"
	case errors.Is(err, fetch.ErrUnsupportedScheme):
		return "unsupported"
	case errors.Is(err, fetch.ErrDigestOnDirectory):
		return "spec_invalid"
	case errors.Is(err, catalog.ErrCorruptIndex), errors.Is(err, catalog.ErrUnsupportedVersion):
		return "catalog"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "other"
}

func failReason(err error) string {
	switch errorReason(err) {
	case "digest_mismatch":
		return "digest mismatch"
	case "not_found":
		return "not found"
	case "unsupported":
		return "scheme not supported"
	case "spec_invalid":
		return "invalid spec"
	case "catalog":
		return "catalog unreadable"
	}
	return "error"
}
