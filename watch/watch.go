package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/robfig/cron/v3"
)

// Reasons reported in Signal.Reason. When several causes are coalesced into
// one Signal, the reason listed first here wins.
const (
	ReasonOverflow  = "overflow"  // the kernel's event queue overflowed
	ReasonRestart   = "restart"   // the watcher failed and was restarted
	ReasonDirectory = "directory" // the models directory appeared, disappeared or was replaced
	ReasonStart     = "start"     // Run started
	ReasonReverify  = "reverify"  // the full re-hash schedule fired
	ReasonResync    = "resync"    // the resync schedule fired
	ReasonFsnotify  = "fsnotify"  // a file in the models directory changed
)

const (
	defaultSettle            = 25 * time.Millisecond
	defaultMaxDelay          = time.Second
	defaultRestartBackoffMax = 30 * time.Second
	initialBackoff           = 100 * time.Millisecond
)

// Signal asks the receiver to read the models directory again.
type Signal struct {
	// Reverify is set when the full re-hash schedule fired: every model's
	// bytes should be hashed again, not only checked against their
	// fingerprint.
	Reverify bool
	// Rescan is set when events may have been lost (start, queue overflow,
	// watcher restart, models directory appeared, vanished or was replaced).
	// The receiver must not rely on anything it cached from earlier events.
	Rescan bool
	// Reason is the strongest cause among those coalesced into this Signal,
	// one of the Reason constants. It is meant for logs and metric labels.
	Reason string
}

// merge returns s with o folded in: the flags are ORed, and the stronger
// reason is kept.
func (s Signal) merge(o Signal) Signal {
	s.Reverify = s.Reverify || o.Reverify
	s.Rescan = s.Rescan || o.Rescan
	if reasonRank(o.Reason) > reasonRank(s.Reason) {
		s.Reason = o.Reason
	}
	return s
}

func reasonRank(r string) int {
	switch r {
	case ReasonOverflow:
		return 7
	case ReasonRestart:
		return 6
	case ReasonDirectory:
		return 5
	case ReasonStart:
		return 4
	case ReasonReverify:
		return 3
	case ReasonResync:
		return 2
	case ReasonFsnotify:
		return 1
	}
	return 0
}

// Hooks are called when the watcher loses events, typically to count them
// in metrics. Nil hooks are skipped. Hooks run on Run's goroutine and must
// return quickly.
type Hooks struct {
	// OnOverflow is called each time the kernel's event queue overflows.
	OnOverflow func()
	// OnRestart is called each time the watcher fails with err (or could not
	// be re-created) and a restart is scheduled.
	OnRestart func(err error)
}

// Config configures a Watcher. Zero durations take their defaults.
type Config struct {
	// Dir is the models directory; required and absolute. It need not exist
	// yet. It may be a symlink to a directory; replacing the symlink is seen
	// as the directory being replaced.
	Dir string
	// Resync is a cron schedule for periodic resync, in the standard
	// five-field syntax or a descriptor such as "@every 5m" or "@hourly".
	// Empty means no periodic resync.
	Resync string
	// Reverify is a cron schedule, in the same syntax, for full re-hashes.
	// Empty means none.
	Reverify string
	// Settle is how long events must be quiet before a signal is sent.
	// Default 25ms: long enough to coalesce a ConfigMap swap or an
	// editor's save (microseconds to a few milliseconds between events),
	// short enough that a new spec is acted on at once. A file caught half
	// written fails to parse and keeps its last good version until the
	// next event.
	Settle time.Duration
	// MaxDelay caps how long a continuing burst of events can hold a signal
	// back, counted from the burst's first event. It must not be shorter
	// than Settle. Default 1s, so that a change is acted on within a second
	// even while other files keep changing.
	MaxDelay time.Duration
	// RestartBackoffMax caps the exponential backoff between attempts to
	// restart a failed watcher, and between polls for a missing parent of
	// Dir. Default 30s.
	RestartBackoffMax time.Duration
	// Relevant reports whether an event on the entry called name (a base
	// name within Dir, never a path) can matter, for example
	// desired.IsSpecFile(name) && !desired.Ignored(name). Nil means every
	// event counts. Events on Dir itself are always relevant.
	//
	// Names starting with ".." are always relevant and never passed to
	// Relevant. In a Kubernetes ConfigMap or Secret volume every key is a
	// symlink through the hidden "..data" symlink, and the kubelet publishes
	// an update by renaming "..data_tmp" over "..data": the visible names do
	// not change, so that rename is the only event an update produces, and a
	// filter hiding dot files would drop it.
	//
	// Relevant is called on Run's goroutine for every event in Dir; it must
	// be fast and must not block.
	Relevant func(name string) bool
	// Logger receives Debug records for events and signals, Info when the
	// directory appears or disappears, and Warn for restarts and overflows.
	// Nil discards logs.
	Logger *slog.Logger
	// Hooks are optional callbacks for metrics.
	Hooks Hooks
}

// Watcher turns filesystem events on a models directory and cron schedules
// into coalesced Signals. Create it with New, start it with Run and receive
// from C. C may be read from any goroutine; Run must not be called again
// while it is running.
type Watcher struct {
	cfg      Config
	dir      string
	resync   cron.Schedule // nil when disabled
	reverify cron.Schedule // nil when disabled
	log      *slog.Logger
	out      chan Signal
	running  atomic.Bool

	// inject feeds errors into Run as if they came from the kernel watcher.
	// Only tests set it; a nil channel is never ready in a select.
	inject chan error
}

// New validates cfg and returns a Watcher that is not yet running. Errors
// name the offending field, e.g. "new watcher: resync: ...". New touches
// neither the filesystem nor the kernel: a missing Dir is not an error.
func New(cfg Config) (*Watcher, error) {
	if cfg.Dir == "" {
		return nil, errors.New("new watcher: dir: required")
	}
	if !filepath.IsAbs(cfg.Dir) {
		return nil, fmt.Errorf("new watcher: dir: %q is not an absolute path", cfg.Dir)
	}
	resync, err := parseSchedule(cfg.Resync)
	if err != nil {
		return nil, fmt.Errorf("new watcher: resync: %w", err)
	}
	reverify, err := parseSchedule(cfg.Reverify)
	if err != nil {
		return nil, fmt.Errorf("new watcher: reverify: %w", err)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"settle", cfg.Settle}, {"max delay", cfg.MaxDelay}, {"restart backoff max", cfg.RestartBackoffMax}} {
		if d.v < 0 {
			return nil, fmt.Errorf("new watcher: %s: %v is negative", d.field, d.v)
		}
	}
	if cfg.Settle == 0 {
		cfg.Settle = defaultSettle
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = defaultMaxDelay
	}
	if cfg.MaxDelay < cfg.Settle {
		return nil, fmt.Errorf("new watcher: max delay: %v is shorter than settle (%v)", cfg.MaxDelay, cfg.Settle)
	}
	if cfg.RestartBackoffMax == 0 {
		cfg.RestartBackoffMax = defaultRestartBackoffMax
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := filepath.Clean(cfg.Dir)
	return &Watcher{
		cfg:      cfg,
		dir:      dir,
		resync:   resync,
		reverify: reverify,
		log:      log.With("dir", dir),
		out:      make(chan Signal, 1),
	}, nil
}

// ValidateSchedule reports whether spec is a cron schedule that Config.Resync
// and Config.Reverify accept: five fields (minute, hour, day of month, month,
// day of week) or a descriptor such as "@every 5m" or "@weekly", optionally
// prefixed with "TZ=Area/City ". The empty string is valid and means
// "never". A schedule that can never fire, such as "0 0 30 2 *", is an error.
// ValidateSchedule is safe for concurrent use.
func ValidateSchedule(spec string) error {
	_, err := parseSchedule(spec)
	return err
}

func parseSchedule(spec string) (cron.Schedule, error) {
	if spec == "" {
		return nil, nil
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid cron schedule %q: %w", spec, err)
	}
	if sched.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("cron schedule %q never fires", spec)
	}
	return sched, nil
}

// C returns the channel Signals are delivered on. It holds at most one
// Signal: when the receiver is slow, later signals are merged into the one
// waiting (flags ORed, strongest reason kept), so nothing is lost and Run
// never blocks on it. The channel is never closed; receivers should also
// watch their context. C is safe to call from any goroutine.
func (w *Watcher) C() <-chan Signal { return w.out }

// Run watches until ctx is done, then returns nil. Its first Signal is
// {Rescan: true, Reason: ReasonStart}, sent once the watches are in place,
// so a receiver that reads the directory on it misses no change. Failures
// of the watcher are retried, never returned. Before Run returns, every
// goroutine it started, including the kernel watcher's reader, has exited.
// Run returns an error only if it is already running.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("watch: Run is already running")
	}
	defer w.running.Store(false)

	r := newRunner(w)
	defer r.shutdown()

	r.rearm()
	r.started = true
	w.send(Signal{Rescan: true, Reason: ReasonStart})
	r.scheduleNext(r.resync, w.resync)
	r.scheduleNext(r.reverify, w.reverify)

	for {
		// A nil channel is never ready: while a restart is pending there is
		// no kernel watcher to read from.
		var events <-chan fsnotify.Event
		var errs <-chan error
		if r.fsw != nil {
			events, errs = r.fsw.Events, r.fsw.Errors
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				r.fail(errors.New("inotify event channel closed"))
				continue
			}
			r.handleEvent(ev)
		case err, ok := <-errs:
			if !ok {
				r.fail(errors.New("inotify error channel closed"))
				continue
			}
			r.handleError(err)
		case err := <-w.inject:
			r.handleError(err)
		case <-r.settle.C:
			r.flush()
		case <-r.maxDelay.C:
			r.flush()
		case <-r.retry.C:
			r.retryNow()
		case <-r.resync.C:
			// A resync is also the moment to repair watches that went stale
			// without an event saying so.
			r.recheck()
			r.tick(Signal{Reason: ReasonResync}, r.resync, w.resync)
		case <-r.reverify.C:
			r.tick(Signal{Reverify: true, Reason: ReasonReverify}, r.reverify, w.reverify)
		}
	}
}

// send delivers sig without blocking, merging it into a Signal the receiver
// has not taken yet. Run's goroutine is the only sender, so once the waiting
// Signal has been taken back there is room for the merged one.
func (w *Watcher) send(sig Signal) {
	w.log.Debug("resync signal", "reason", sig.Reason, "rescan", sig.Rescan, "reverify", sig.Reverify)
	for {
		select {
		case w.out <- sig:
			return
		default:
		}
		select {
		case old := <-w.out:
			sig = old.merge(sig)
		default:
			// The receiver took the waiting Signal in the meantime.
		}
	}
}

// dirState is what the runner last saw at Dir.
type dirState int

const (
	dirUnknown dirState = iota
	dirAbsent
	dirNotDir
	dirPresent
)

// runner is the state of one Run. Only Run's goroutine touches it.
type runner struct {
	w      *Watcher
	log    *slog.Logger
	dir    string
	parent string // == dir only when dir is the root

	fsw           *fsnotify.Watcher // nil while a restart is pending
	parentWatched bool
	dirWatched    bool
	dirInfo       os.FileInfo // what the Dir watch was added on
	dirState      dirState
	parentMissing bool
	started       bool // the start Signal has been sent

	pending    Signal
	hasPending bool

	settle, maxDelay *time.Timer
	retry            *time.Timer // restart or poll, see restarting
	resync, reverify *time.Timer
	restarting       bool // retry re-creates a failed watcher; otherwise it polls for the parent
	healthySince     time.Time
	restartBackoff   backoff
	pollBackoff      backoff
}

func newRunner(w *Watcher) *runner {
	first := min(initialBackoff, w.cfg.RestartBackoffMax)
	return &runner{
		w:              w,
		log:            w.log,
		dir:            w.dir,
		parent:         filepath.Dir(w.dir),
		settle:         stoppedTimer(),
		maxDelay:       stoppedTimer(),
		retry:          stoppedTimer(),
		resync:         stoppedTimer(),
		reverify:       stoppedTimer(),
		restartBackoff: backoff{initial: first, max: w.cfg.RestartBackoffMax},
		pollBackoff:    backoff{initial: first, max: w.cfg.RestartBackoffMax},
	}
}

// stoppedTimer returns a timer that does not fire until Reset. Since Go 1.23
// a stopped or reset timer never delivers a stale tick, which the select
// loop in Run relies on.
func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func (r *runner) shutdown() {
	r.closeWatcher()
	for _, t := range []*time.Timer{r.settle, r.maxDelay, r.retry, r.resync, r.reverify} {
		t.Stop()
	}
}

// note adds sig to the pending Signal and restarts the settle timer. The
// max-delay timer starts with the first event of a burst only, so a burst
// that never pauses still produces a Signal every MaxDelay.
func (r *runner) note(sig Signal) {
	if !r.hasPending {
		r.hasPending = true
		r.maxDelay.Reset(r.w.cfg.MaxDelay)
	}
	r.pending = r.pending.merge(sig)
	r.settle.Reset(r.w.cfg.Settle)
}

func (r *runner) flush() {
	if !r.hasPending {
		return
	}
	r.settle.Stop()
	r.maxDelay.Stop()
	sig := r.pending
	r.pending, r.hasPending = Signal{}, false
	r.w.send(sig)
}

// tick sends a scheduled Signal at once, together with anything pending: the
// receiver re-reads everything anyway.
func (r *runner) tick(sig Signal, t *time.Timer, sched cron.Schedule) {
	r.note(sig)
	r.flush()
	r.scheduleNext(t, sched)
}

func (r *runner) scheduleNext(t *time.Timer, sched cron.Schedule) {
	if sched == nil {
		return
	}
	now := time.Now()
	next := sched.Next(now)
	if next.IsZero() {
		// No activation within the parser's five-year horizon.
		return
	}
	t.Reset(next.Sub(now))
}

func (r *runner) handleEvent(ev fsnotify.Event) {
	// Clean turns "//models" (a watch on "/") into "/models".
	name := filepath.Clean(ev.Name)
	switch {
	case name == r.dir:
		r.log.Debug("models directory event", "op", ev.Op.String())
		r.handleDirEvent(ev.Op)
	case name == r.parent:
		r.log.Debug("parent directory event", "op", ev.Op.String(), "parent", r.parent)
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			// Whatever was watched went with the parent.
			r.unwatchAll()
			r.rearm()
			r.note(Signal{Rescan: true, Reason: ReasonDirectory})
		}
	case filepath.Dir(name) == r.dir:
		base := filepath.Base(name)
		relevant := r.relevant(base)
		r.log.Debug("file event", "op", ev.Op.String(), "name", base, "relevant", relevant)
		if relevant {
			r.note(Signal{Reason: ReasonFsnotify})
		}
	default:
		// A sibling of Dir in the parent directory: not ours.
	}
}

func (r *runner) relevant(name string) bool {
	if strings.HasPrefix(name, "..") || r.w.cfg.Relevant == nil {
		return true
	}
	return r.w.cfg.Relevant(name)
}

func (r *runner) handleDirEvent(op fsnotify.Op) {
	if op.Has(fsnotify.Create) || op.Has(fsnotify.Remove) || op.Has(fsnotify.Rename) {
		// The watch belongs to the inode, not the name: after a removal or
		// a rename (including "mv new models.d" over the old one) it is on
		// the wrong directory or gone. Drop it and look again at once, since
		// a replacement may already be in place.
		r.unwatchDir()
		if err := r.watchDir(); err != nil {
			r.fail(err)
			return
		}
		r.note(Signal{Rescan: true, Reason: ReasonDirectory})
		return
	}
	// A permission change on the directory can hide or expose every file.
	r.note(Signal{Reason: ReasonFsnotify})
}

func (r *runner) handleError(err error) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		attrs := []any{"hint", "if this repeats, raise the sysctl fs.inotify.max_queued_events"}
		if n, ok := queueLimit(); ok {
			attrs = append(attrs, "max_queued_events", n)
		}
		r.log.Warn("inotify event queue overflowed; rescanning the models directory", attrs...)
		if h := r.w.cfg.Hooks.OnOverflow; h != nil {
			h()
		}
		// Lost events may include the removal of a watched directory.
		r.recheck()
		r.note(Signal{Rescan: true, Reason: ReasonOverflow})
		return
	}
	r.fail(fmt.Errorf("inotify: %w", err))
}

// rearm makes sure the watches are in place, restarting on failure.
func (r *runner) rearm() {
	if err := r.arm(); err != nil {
		r.fail(err)
		return
	}
	if r.healthySince.IsZero() {
		r.healthySince = time.Now()
	}
}

// arm creates the kernel watcher if needed and adds the watches that are
// missing: the parent first, then Dir, so that Dir cannot appear unnoticed
// in between. A missing parent is polled for. The error is for failures
// that need a new watcher.
func (r *runner) arm() error {
	if r.fsw == nil {
		fsw, err := fsnotify.NewWatcher()
		if err != nil {
			return fmt.Errorf("create inotify watcher: %w", err)
		}
		r.fsw = fsw
	}
	if r.parent != r.dir && !r.parentWatched {
		if err := r.watchParent(); err != nil {
			return err
		}
	}
	if !r.dirWatched {
		if err := r.watchDir(); err != nil {
			return err
		}
	}
	if r.parentMissing {
		d := r.pollBackoff.next()
		r.log.Debug("polling for the parent of the models directory", "parent", r.parent, "next", d)
		r.retry.Reset(d)
	}
	return nil
}

func (r *runner) watchParent() error {
	err := r.fsw.Add(r.parent)
	switch {
	case err == nil:
		r.parentWatched = true
		if r.parentMissing {
			r.log.Info("parent of the models directory appeared", "parent", r.parent)
			r.parentMissing = false
			r.pollBackoff.reset()
		}
		return nil
	case isAbsent(err):
		if !r.parentMissing {
			r.log.Info("parent of the models directory does not exist; polling for it", "parent", r.parent)
			r.parentMissing = true
		}
		return nil
	default:
		return fmt.Errorf("watch %s: %w", r.parent, err)
	}
}

// watchDir adds the watch on Dir if Dir is a directory, and records what it
// found there.
func (r *runner) watchDir() error {
	fi, err := os.Stat(r.dir)
	switch {
	case isAbsent(err):
		r.setDirState(dirAbsent)
		return nil
	case err != nil:
		return fmt.Errorf("stat models directory: %w", err)
	case !fi.IsDir():
		r.setDirState(dirNotDir)
		return nil
	}
	if err := r.fsw.Add(r.dir); err != nil {
		if isAbsent(err) {
			// Removed since the Stat; the parent watch reports its return.
			r.setDirState(dirAbsent)
			return nil
		}
		return fmt.Errorf("watch %s: %w", r.dir, err)
	}
	r.dirWatched = true
	r.dirInfo = fi
	r.setDirState(dirPresent)
	return nil
}

func (r *runner) setDirState(s dirState) {
	prev := r.dirState
	if s == prev {
		return
	}
	r.dirState = s
	switch s {
	case dirPresent:
		if prev != dirUnknown {
			r.log.Info("models directory appeared")
		}
	case dirAbsent:
		if prev == dirUnknown {
			r.log.Info("models directory does not exist yet; waiting for it")
		} else {
			r.log.Info("models directory disappeared")
		}
	case dirNotDir:
		r.log.Warn("models directory path is not a directory; waiting for a directory to replace it")
	}
	if r.started && (s == dirPresent || prev == dirPresent) {
		r.note(Signal{Rescan: true, Reason: ReasonDirectory})
	}
}

// unwatchDir forgets the watch on Dir. Errors are ignored on purpose: the
// kernel drops a watch by itself when its directory is deleted, and a watch
// left on a renamed-away directory would at worst cause spare signals.
func (r *runner) unwatchDir() {
	if r.fsw != nil && r.dirWatched {
		_ = r.fsw.Remove(r.dir)
	}
	r.dirWatched = false
	r.dirInfo = nil
}

func (r *runner) unwatchAll() {
	r.unwatchDir()
	if r.fsw != nil && r.parentWatched {
		_ = r.fsw.Remove(r.parent)
	}
	r.parentWatched = false
}

// recheck repairs watches that went stale without an event saying so:
// events lost in a queue overflow, or a watch the kernel dropped silently
// (for example when a filesystem is unmounted under it).
func (r *runner) recheck() {
	if r.fsw == nil || r.parentMissing {
		// A restart or a poll is pending and will rebuild everything.
		return
	}
	watched := r.fsw.WatchList()
	stale := r.parent != r.dir && !slices.Contains(watched, r.parent)
	fi, err := os.Stat(r.dir)
	switch {
	case r.dirWatched:
		stale = stale || err != nil || !os.SameFile(fi, r.dirInfo) || !slices.Contains(watched, r.dir)
	case err == nil && fi.IsDir():
		stale = true
	}
	if !stale {
		return
	}
	r.log.Info("models directory watch was stale; adding it again")
	r.unwatchAll()
	r.rearm()
	r.note(Signal{Rescan: true, Reason: ReasonDirectory})
}

// fail closes the kernel watcher and schedules a new one. The backoff grows
// while restarts keep failing or the watcher keeps failing soon after a
// restart, so a persistent fault costs one warning per RestartBackoffMax
// rather than a busy loop; a watcher that has been healthy for that long
// starts again from the shortest delay.
func (r *runner) fail(err error) {
	r.closeWatcher()
	if !r.restarting && time.Since(r.healthySince) >= r.w.cfg.RestartBackoffMax {
		r.restartBackoff.reset()
	}
	d := r.restartBackoff.next()
	r.log.Warn("file watcher failed; restarting it", "err", err, "retry_in", d)
	if h := r.w.cfg.Hooks.OnRestart; h != nil {
		h(err)
	}
	r.restarting = true
	r.retry.Reset(d)
}

func (r *runner) retryNow() {
	if !r.restarting {
		// Polling for the parent.
		r.rearm()
		return
	}
	if err := r.arm(); err != nil {
		r.fail(err)
		return
	}
	r.restarting = false
	r.healthySince = time.Now()
	r.log.Info("file watcher restarted")
	r.note(Signal{Rescan: true, Reason: ReasonRestart})
}

func (r *runner) closeWatcher() {
	if r.fsw != nil {
		// Close waits for fsnotify's reader goroutine to exit.
		if err := r.fsw.Close(); err != nil {
			r.log.Debug("close inotify watcher", "err", err)
		}
		r.fsw = nil
	}
	r.parentWatched = false
	r.dirWatched = false
	r.dirInfo = nil
}

// isAbsent reports whether err means that the path, or one of its parents,
// does not exist as a directory.
func isAbsent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// backoff is a capped exponential backoff with jitter.
type backoff struct {
	initial, max, cur time.Duration
}

// next returns the next delay, between half and all of the current step.
// The jitter keeps a fleet of agents hit by the same fault (an inotify limit
// rolled out everywhere, say) from retrying in lockstep.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.initial
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + rand.N(b.cur-half+1)
}

func (b *backoff) reset() { b.cur = 0 }
