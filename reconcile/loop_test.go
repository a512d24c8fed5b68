package reconcile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/model-provisioner/model-provisioner/catalog"
	"github.com/model-provisioner/model-provisioner/fetch"
	filefetch "github.com/model-provisioner/model-provisioner/fetch/file"
	"github.com/model-provisioner/model-provisioner/handoff"
	"github.com/model-provisioner/model-provisioner/watch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a Clock whose time moves only when the test says so.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// flakyFetcher fails the first failures calls for each model, then serves
// the file fetcher's answer. block, when set, holds the given model's
// fetches until it is closed.
type flakyFetcher struct {
	mu       sync.Mutex
	failures map[string]int
	calls    map[string]int
	block    map[string]chan struct{}
	inner    fetch.Fetcher
}

func (f *flakyFetcher) Fetch(ctx context.Context, req fetch.Request) (fetch.Result, error) {
	f.mu.Lock()
	f.calls[req.Name]++
	n := f.calls[req.Name]
	fail := n <= f.failures[req.Name]
	block := f.block[req.Name]
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return fetch.Result{}, ctx.Err()
		}
	}
	if fail {
		return fetch.Result{}, fmt.Errorf("attempt %d: %w", n, errors.New("connection reset by peer"))
	}
	return f.inner.Fetch(ctx, req)
}

func (f *flakyFetcher) callCount(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

type loopEnv struct {
	dir, modelsDir, handoffDir string
	cat                        *catalog.Store
	loop                       *Loop
	fetcher                    *flakyFetcher
	clock                      *fakeClock
	signals                    chan watch.Signal
	cancel                     context.CancelFunc
	done                       chan error
}

func startLoop(t *testing.T, clock Clock, concurrency int, setup func(*flakyFetcher)) *loopEnv {
	t.Helper()
	dir := t.TempDir()
	e := &loopEnv{dir: dir, modelsDir: filepath.Join(dir, "models.d"), handoffDir: filepath.Join(dir, "handoff")}
	require.NoError(t, os.MkdirAll(e.modelsDir, 0o755))
	var err error
	e.cat, err = catalog.Open(filepath.Join(dir, "state"))
	require.NoError(t, err)
	e.fetcher = &flakyFetcher{failures: map[string]int{}, calls: map[string]int{}, block: map[string]chan struct{}{}, inner: filefetch.New()}
	if setup != nil {
		setup(e.fetcher)
	}
	reg := fetch.NewRegistry()
	reg.Register(fetch.SchemeFile, e.fetcher)
	now := time.Now
	if fc, ok := clock.(*fakeClock); ok {
		e.clock = fc
		now = fc.Now
	}
	prov, err := NewProvisioner(ProvisionerConfig{Catalog: e.cat, Fetchers: reg, HandoffDir: e.handoffDir, Now: now, BatchUses: true})
	require.NoError(t, err)
	e.loop, err = NewLoop(LoopConfig{
		ModelsDir: e.modelsDir, Provisioner: prov, Catalog: e.cat, Concurrency: concurrency,
		BackoffBase: 10 * time.Second, BackoffMax: 80 * time.Second,
		Clock: clock, Jitter: func() float64 { return 0.999999 },
	})
	require.NoError(t, err)
	e.signals = make(chan watch.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.done = make(chan error, 1)
	go func() { e.done <- e.loop.Run(ctx, e.signals) }()
	t.Cleanup(e.stop)
	return e
}

func (e *loopEnv) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	<-e.done
	e.cancel = nil
}

func (e *loopEnv) resync() { e.loop.Trigger(watch.Signal{Rescan: true, Reason: "test"}) }

// resyncAndWait triggers a pass and waits until it has finished with
// nothing left to do.
func (e *loopEnv) resyncAndWait(t *testing.T) {
	t.Helper()
	t0 := time.Now()
	e.resync()
	require.Eventually(t, func() bool { return e.loop.Status().LastResync.After(t0) }, 5*time.Second, 5*time.Millisecond, "the pass never finished")
}

func (e *loopEnv) model(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(e.dir, name+".bin")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func (e *loopEnv) spec(t *testing.T, file, body string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(e.modelsDir, file), []byte(body), 0o644))
}

func (e *loopEnv) status(name string) (ModelStatus, bool) {
	for _, m := range e.loop.Status().Models {
		if m.Name == name {
			return m, true
		}
	}
	return ModelStatus{}, false
}

func (e *loopEnv) waitPhase(t *testing.T, name string, phase Phase) ModelStatus {
	t.Helper()
	var last ModelStatus
	require.Eventually(t, func() bool {
		s, ok := e.status(name)
		last = s
		return ok && s.Phase == phase
	}, 5*time.Second, 5*time.Millisecond, "model %s never reached %s; last status %+v", name, phase, last)
	return last
}

func TestLoop_BackoffWithInjectedClock(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	e := startLoop(t, clock, 1, func(f *flakyFetcher) { f.failures["flaky"] = 4 })
	p := e.model(t, "flaky", "abc")
	e.spec(t, "flaky.yaml", "model_ref: "+p+"\n")
	e.resync()

	// Jitter is pinned near 1, so each delay is the full exponential step:
	// 10s, 20s, 40s, then capped at 80s.
	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second} {
		s := e.waitPhase(t, "flaky", PhaseFailed)
		require.Eventually(t, func() bool { s, _ = e.status("flaky"); return s.Attempts == i+1 }, 5*time.Second, time.Millisecond)
		require.NotNil(t, s.NextRetry)
		got := s.NextRetry.Sub(clock.Now())
		assert.InDelta(t, want.Seconds(), got.Seconds(), 0.01, "attempt %d", i+1)
		assert.Contains(t, s.LastError, "connection reset")

		// Not retried before its time.
		clock.Advance(got - time.Second)
		time.Sleep(20 * time.Millisecond)
		assert.Equal(t, i+1, e.fetcher.callCount("flaky"))
		clock.Advance(time.Second)
		require.Eventually(t, func() bool { return e.fetcher.callCount("flaky") == i+2 }, 5*time.Second, time.Millisecond)
	}
	s := e.waitPhase(t, "flaky", PhaseActive)
	assert.Equal(t, 0, s.Attempts)
	assert.Nil(t, s.NextRetry)
	assert.FileExists(t, filepath.Join(e.handoffDir, "flaky.json"))
}

func TestLoop_FailingModelNeverBlocksOthers(t *testing.T) {
	release := make(chan struct{})
	e := startLoop(t, nil, 2, func(f *flakyFetcher) { f.block["slow"] = release })
	defer close(release)
	for _, n := range []string{"slow", "a", "b", "c"} {
		e.spec(t, n+".yaml", "model_ref: "+e.model(t, n, n)+"\n")
	}
	e.spec(t, "missing.yaml", "model_ref: "+filepath.Join(e.dir, "nope.gguf")+"\n")
	e.resync()
	for _, n := range []string{"a", "b", "c"} {
		e.waitPhase(t, n, PhaseActive)
	}
	s := e.waitPhase(t, "missing", PhaseFailed)
	assert.Equal(t, "not found", s.Reason)
	slow, _ := e.status("slow")
	assert.Contains(t, []Phase{PhaseVerifying, PhasePending}, slow.Phase)
	assert.False(t, e.loop.Ready(), "ready only once every model of the first pass is done")
}

func TestLoop_TypoKeepsModelActive(t *testing.T) {
	e := startLoop(t, nil, 2, nil)
	p := e.model(t, "m", "abc")
	e.spec(t, "m.yaml", "model_ref: "+p+"\n")
	e.resync()
	e.waitPhase(t, "m", PhaseActive)
	require.Eventually(t, e.loop.Ready, 5*time.Second, 5*time.Millisecond)

	e.spec(t, "m.yaml", "model_ref: "+p+"\nstrict_verificaton: true\n")
	e.resync()
	require.Eventually(t, func() bool { s, _ := e.status("m"); return s.SpecError != "" }, 5*time.Second, 5*time.Millisecond)
	s, _ := e.status("m")
	assert.Equal(t, PhaseActive, s.Phase, "a typo never retires a model")
	assert.Contains(t, s.SpecError, "strict_verificaton")
	assert.Contains(t, s.SpecError, "last good version")
	assert.FileExists(t, filepath.Join(e.handoffDir, "m.json"))
	entry, err := e.cat.Get("file:" + p)
	require.NoError(t, err)
	assert.Equal(t, catalog.Active, entry.Lifecycle)

	// A new file that never parsed is reported on its own.
	e.spec(t, "broken.yaml", "model_ref: [\n")
	e.resync()
	require.Eventually(t, func() bool { return len(e.loop.Status().SpecErrors) == 1 }, 5*time.Second, 5*time.Millisecond)
	assert.Contains(t, e.loop.Status().SpecErrors[0].File, "broken.yaml")

	// Fixed: the error clears.
	e.spec(t, "m.yaml", "model_ref: "+p+"\n")
	e.resync()
	require.Eventually(t, func() bool { s, _ := e.status("m"); return s.SpecError == "" }, 5*time.Second, 5*time.Millisecond)
}

func TestLoop_DuplicateNames(t *testing.T) {
	e := startLoop(t, nil, 2, nil)
	e.spec(t, "one.yaml", "name: same\nmodel_ref: "+e.model(t, "x", "x")+"\n")
	e.spec(t, "two.yaml", "name: same\nmodel_ref: "+e.model(t, "y", "y")+"\n")
	e.resync()
	require.Eventually(t, func() bool { return len(e.loop.Status().SpecErrors) == 2 }, 5*time.Second, 5*time.Millisecond)
	_, ok := e.status("same")
	assert.False(t, ok, "neither file wins")
	for _, fe := range e.loop.Status().SpecErrors {
		assert.Contains(t, fe.Error, "same")
	}
}

func TestLoop_DeleteRetires(t *testing.T) {
	e := startLoop(t, nil, 2, nil)
	p := e.model(t, "m", "abc")
	e.spec(t, "m.yaml", "model_ref: "+p+"\n")
	e.resync()
	e.waitPhase(t, "m", PhaseActive)
	hp := filepath.Join(e.handoffDir, "m.json")
	require.FileExists(t, hp)

	require.NoError(t, os.Remove(filepath.Join(e.modelsDir, "m.yaml")))
	e.resync()
	e.waitPhase(t, "m", PhaseRetired)
	assert.NoFileExists(t, hp)
	assert.FileExists(t, p, "a file: model's bytes are never deleted")
	entry, err := e.cat.Get("file:" + p)
	require.NoError(t, err)
	assert.Equal(t, catalog.Retired, entry.Lifecycle)
}

func TestLoop_RetiresOrphansAfterRestart(t *testing.T) {
	e := startLoop(t, nil, 1, nil)
	p := e.model(t, "m", "abc")
	e.spec(t, "m.yaml", "model_ref: "+p+"\n")
	e.resync()
	e.waitPhase(t, "m", PhaseActive)
	e.stop()

	// The spec goes away while the agent is down.
	require.NoError(t, os.Remove(filepath.Join(e.modelsDir, "m.yaml")))
	prov, err := NewProvisioner(ProvisionerConfig{Catalog: e.cat, Fetchers: fetch.NewRegistry(), HandoffDir: e.handoffDir})
	require.NoError(t, err)
	loop, err := NewLoop(LoopConfig{ModelsDir: e.modelsDir, Provisioner: prov, Catalog: e.cat})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan watch.Signal, 1)
	sig <- watch.Signal{Rescan: true}
	done := make(chan error)
	go func() { done <- loop.Run(ctx, sig) }()
	require.Eventually(t, func() bool {
		entry, err := e.cat.Get("file:" + p)
		_, serr := os.Stat(filepath.Join(e.handoffDir, "m.json"))
		return err == nil && entry.Lifecycle == catalog.Retired && os.IsNotExist(serr)
	}, 5*time.Second, 5*time.Millisecond, "retired in the catalog and handoff removed")
	cancel()
	require.NoError(t, <-done)
}

func TestLoop_ChangedRefReplacesWithoutGap(t *testing.T) {
	e := startLoop(t, nil, 1, nil)
	p1, p2 := e.model(t, "v1", "one"), e.model(t, "v2", "two")
	e.spec(t, "m.yaml", "model_ref: "+p1+"\n")
	e.resync()
	e.waitPhase(t, "m", PhaseActive)
	e.spec(t, "m.yaml", "model_ref: "+p2+"\n")
	e.resync()
	require.Eventually(t, func() bool {
		old, err := e.cat.Get("file:" + p1)
		return err == nil && old.Lifecycle == catalog.Retired
	}, 5*time.Second, 5*time.Millisecond)
	data, err := os.ReadFile(filepath.Join(e.handoffDir, "m.json"))
	require.NoError(t, err)
	assert.Contains(t, string(data), p2, "the handoff describes the new model")
}

func TestLoop_MissingModelsDirKeepsModels(t *testing.T) {
	e := startLoop(t, nil, 1, nil)
	p := e.model(t, "m", "abc")
	e.spec(t, "m.yaml", "model_ref: "+p+"\n")
	e.resync()
	e.waitPhase(t, "m", PhaseActive)
	require.NoError(t, os.RemoveAll(e.modelsDir))
	e.resync()
	time.Sleep(50 * time.Millisecond)
	s, _ := e.status("m")
	assert.Equal(t, PhaseActive, s.Phase, "an unreadable models directory retires nothing")
}

func TestLoop_ReadyWithNoModels(t *testing.T) {
	e := startLoop(t, nil, 1, nil)
	e.resync()
	require.Eventually(t, e.loop.Ready, 5*time.Second, 5*time.Millisecond)
}

// progressFetcher reports progress and then waits to be released.
type progressFetcher struct {
	release chan struct{}
	path    string
}

func (p *progressFetcher) Fetch(ctx context.Context, req fetch.Request) (fetch.Result, error) {
	req.Progress(50, 100)
	time.Sleep(250 * time.Millisecond)
	req.Progress(60, 100)
	select {
	case <-p.release:
	case <-ctx.Done():
		return fetch.Result{}, ctx.Err()
	}
	return filefetch.New().Fetch(ctx, fetch.Request{Ref: fetch.Ref{Scheme: fetch.SchemeFile, Path: p.path}, Name: req.Name})
}

func TestLoop_DownloadProgressInStatusAndMetrics(t *testing.T) {
	dir := t.TempDir()
	models := filepath.Join(dir, "models.d")
	require.NoError(t, os.MkdirAll(models, 0o755))
	model := filepath.Join(dir, "m.bin")
	require.NoError(t, os.WriteFile(model, []byte("abc"), 0o644))
	cat, err := catalog.Open(filepath.Join(dir, "state"))
	require.NoError(t, err)
	pf := &progressFetcher{release: make(chan struct{}), path: model}
	reg := fetch.NewRegistry()
	reg.Register(fetch.SchemeHTTPS, pf)
	prov, err := NewProvisioner(ProvisionerConfig{Catalog: cat, Fetchers: reg})
	require.NoError(t, err)
	promReg := prometheus.NewRegistry()
	m, err := NewMetrics(promReg)
	require.NoError(t, err)
	loop, err := NewLoop(LoopConfig{ModelsDir: models, Provisioner: prov, Catalog: cat, Metrics: m})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(models, "dl.yaml"), []byte("model_ref: https://models.example.test/m.gguf\n"), 0o644))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	sig := make(chan watch.Signal, 1)
	sig <- watch.Signal{Rescan: true}
	go func() { done <- loop.Run(ctx, sig) }()
	defer func() { cancel(); <-done }()

	require.Eventually(t, func() bool {
		for _, s := range loop.Status().Models {
			if s.Name == "dl" && s.Phase == PhaseFetching && s.BytesDone == 60 && s.BytesTotal == 100 {
				return s.RateBytesPerSec > 0
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond, "status shows bytes done, total and rate while fetching")
	require.NoError(t, testutil.GatherAndCompare(promReg, strings.NewReader(`
# HELP model_provisioner_download_done_bytes Bytes on disk of each download in flight.
# TYPE model_provisioner_download_done_bytes gauge
model_provisioner_download_done_bytes{model="dl"} 60
# HELP model_provisioner_download_size_bytes Size of each download in flight (-1 unknown).
# TYPE model_provisioner_download_size_bytes gauge
model_provisioner_download_size_bytes{model="dl"} 100
`), "model_provisioner_download_done_bytes", "model_provisioner_download_size_bytes"))
	close(pf.release)
	require.Eventually(t, func() bool {
		for _, s := range loop.Status().Models {
			if s.Name == "dl" {
				return s.Phase == PhaseActive
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)
}

// TestLoop_NamesShareOneModel declares one model under three names: each
// name gets its handoff, the catalog holds one entry, an idle resync writes
// nothing, and the model is retired only when its last name goes.
func TestLoop_NamesShareOneModel(t *testing.T) {
	e := startLoop(t, nil, 2, nil)
	p := e.model(t, "shared", "abc")
	id := "file:" + p
	for _, n := range []string{"a", "b", "c"} {
		e.spec(t, n+".yaml", "model_ref: "+p+"\nengine: generic\n")
	}
	e.resync()
	for _, n := range []string{"a", "b", "c"} {
		e.waitPhase(t, n, PhaseActive)
		f, err := handoff.Read(filepath.Join(e.handoffDir, n+".json"))
		require.NoError(t, err, "handoff of %s", n)
		assert.Equal(t, id, f.Model.ID)
	}
	entry, err := e.cat.Get(id)
	require.NoError(t, err)
	var names []string
	for _, u := range entry.Uses() {
		names = append(names, u.Name)
	}
	assert.ElementsMatch(t, []string{"a", "b", "c"}, names)

	before, err := os.Stat(e.cat.IndexPath())
	require.NoError(t, err)
	hBefore, err := os.Stat(filepath.Join(e.handoffDir, "b.json"))
	require.NoError(t, err)
	e.resyncAndWait(t)
	after, err := os.Stat(e.cat.IndexPath())
	require.NoError(t, err)
	hAfter, err := os.Stat(filepath.Join(e.handoffDir, "b.json"))
	require.NoError(t, err)
	assert.True(t, os.SameFile(before, after), "an idle resync does not rewrite the catalog")
	assert.True(t, os.SameFile(hBefore, hAfter), "an idle resync does not rewrite handoffs")

	// The first declarer goes: the model stays active under the others.
	require.NoError(t, os.Remove(filepath.Join(e.modelsDir, "a.yaml")))
	e.resync()
	e.waitPhase(t, "a", PhaseRetired)
	assert.NoFileExists(t, filepath.Join(e.handoffDir, "a.json"))
	entry, err = e.cat.Get(id)
	require.NoError(t, err)
	assert.Equal(t, catalog.Active, entry.Lifecycle)
	assert.Len(t, entry.Uses(), 2)
	assert.FileExists(t, filepath.Join(e.handoffDir, "b.json"))
	assert.FileExists(t, filepath.Join(e.handoffDir, "c.json"))

	require.NoError(t, os.Remove(filepath.Join(e.modelsDir, "b.yaml")))
	require.NoError(t, os.Remove(filepath.Join(e.modelsDir, "c.yaml")))
	e.resync()
	e.waitPhase(t, "c", PhaseRetired)
	require.Eventually(t, func() bool {
		entry, err := e.cat.Get(id)
		return err == nil && entry.Lifecycle == catalog.Retired
	}, 5*time.Second, 5*time.Millisecond)
	assert.NoFileExists(t, filepath.Join(e.handoffDir, "b.json"))
	assert.NoFileExists(t, filepath.Join(e.handoffDir, "c.json"))
}

// TestLoop_SalvagesCorruptCatalog garbles index.json under a running loop:
// the next pass moves it aside, verifies the model again and restores its
// record and a deleted handoff.
func TestLoop_SalvagesCorruptCatalog(t *testing.T) {
	e := startLoop(t, nil, 1, nil)
	p := e.model(t, "m", "abc")
	e.spec(t, "m.yaml", "model_ref: "+p+"\nexpected_digest: {algo: sha256, value: "+abcSHA256+"}\n")
	e.resyncAndWait(t)
	e.waitPhase(t, "m", PhaseActive)
	hp := filepath.Join(e.handoffDir, "m.json")
	require.FileExists(t, hp)

	require.NoError(t, os.WriteFile(e.cat.IndexPath(), []byte(`{"version":1,"entries":{"file:`), 0o644))
	require.NoError(t, os.Remove(hp))
	e.resyncAndWait(t)

	entry, err := e.cat.Get("file:" + p)
	require.NoError(t, err, "the model is registered again")
	assert.Equal(t, catalog.Active, entry.Lifecycle)
	assert.Equal(t, abcSHA256, entry.Digest.Value)
	f, err := handoff.Read(hp)
	require.NoError(t, err, "the deleted handoff is written again")
	assert.Equal(t, p, f.Model.Path)
	aside, _ := filepath.Glob(e.cat.IndexPath() + ".corrupt-*")
	assert.Len(t, aside, 1, "the corrupt index is kept aside")
}

// TestLoop_NamesSwapModels swaps two names between two models and then
// drops one name: no handoff is left behind and every entry ends with the
// names that declare it.
func TestLoop_NamesSwapModels(t *testing.T) {
	e := startLoop(t, nil, 2, nil)
	m0, m1 := e.model(t, "m0", "zero"), e.model(t, "m1", "one")
	declare := func(specs map[string]string) {
		entries, _ := os.ReadDir(e.modelsDir)
		for _, de := range entries {
			require.NoError(t, os.Remove(filepath.Join(e.modelsDir, de.Name())))
		}
		for name, p := range specs {
			e.spec(t, name+".yaml", "model_ref: "+p+"\n")
		}
		e.resyncAndWait(t)
	}
	declare(map[string]string{"a": m0, "b": m1})
	declare(map[string]string{"a": m1, "b": m0})
	declare(map[string]string{"a": m0})

	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(e.handoffDir, "b.json"))
		return os.IsNotExist(err)
	}, 5*time.Second, 5*time.Millisecond, "b's handoff is removed")
	h, err := handoff.Read(filepath.Join(e.handoffDir, "a.json"))
	require.NoError(t, err)
	assert.Equal(t, "file:"+m0, h.Model.ID)
	require.Eventually(t, func() bool {
		e0, err0 := e.cat.Get("file:" + m0)
		e1, err1 := e.cat.Get("file:" + m1)
		if err0 != nil || err1 != nil {
			return false
		}
		_, hasB := e0.Use("b")
		return e0.Lifecycle == catalog.Active && e1.Lifecycle == catalog.Retired && !hasB && len(e0.Uses()) == 1
	}, 5*time.Second, 5*time.Millisecond, "m0 is active under a alone, m1 retired")
}

// TestLoop_NameRemovedWhileItsEnsureRuns removes a second name of an
// active model while its first ensure is still running: the handoff that
// ensure writes does not outlive the name.
func TestLoop_NameRemovedWhileItsEnsureRuns(t *testing.T) {
	e, p, release := secondNameInFlight(t)
	require.NoError(t, os.Remove(filepath.Join(e.modelsDir, "b.yaml")))
	e.resync()
	e.waitPhase(t, "b", PhaseVerifying)
	close(release)
	e.waitPhase(t, "b", PhaseRetired)
	assert.NoFileExists(t, filepath.Join(e.handoffDir, "b.json"))
	assert.FileExists(t, filepath.Join(e.handoffDir, "a.json"))
	entry, err := e.cat.Get("file:" + p)
	require.NoError(t, err)
	assert.Equal(t, catalog.Active, entry.Lifecycle)
	_, hasB := entry.Use("b")
	assert.False(t, hasB)
}

// TestLoop_ModelRetiredWhileANewNameIsEnsured removes both names of a
// model while the second name's first ensure runs: the model is retired
// under the first name before the second is recorded, and the second's
// handoff must go too.
func TestLoop_ModelRetiredWhileANewNameIsEnsured(t *testing.T) {
	e, p, release := secondNameInFlight(t)
	require.NoError(t, os.Remove(filepath.Join(e.modelsDir, "a.yaml")))
	require.NoError(t, os.Remove(filepath.Join(e.modelsDir, "b.yaml")))
	e.resync()
	e.waitPhase(t, "a", PhaseRetired)
	close(release)
	e.waitPhase(t, "b", PhaseRetired)
	assert.NoFileExists(t, filepath.Join(e.handoffDir, "a.json"))
	assert.NoFileExists(t, filepath.Join(e.handoffDir, "b.json"))
	entry, err := e.cat.Get("file:" + p)
	require.NoError(t, err)
	assert.Equal(t, catalog.Retired, entry.Lifecycle)
}

// secondNameInFlight makes model "shared" active as "a", then declares it
// as "b" too and returns while b's first ensure is held: closing release
// lets it finish.
func secondNameInFlight(t *testing.T) (e *loopEnv, path string, release chan struct{}) {
	t.Helper()
	release = make(chan struct{})
	e = startLoop(t, nil, 2, func(f *flakyFetcher) { f.block["b"] = release })
	path = e.model(t, "shared", "abc")
	e.spec(t, "a.yaml", "model_ref: "+path+"\n")
	e.resyncAndWait(t)
	e.waitPhase(t, "a", PhaseActive)
	e.spec(t, "b.yaml", "model_ref: "+path+"\n")
	e.resync()
	require.Eventually(t, func() bool { return e.fetcher.callCount("b") == 1 }, 5*time.Second, time.Millisecond)
	return e, path, release
}
