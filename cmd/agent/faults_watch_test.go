//go:build faults

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/handoff"
	"github.com/model-provisioner/model-provisioner/reconcile"
)

// The watch-torture suite drives the models directory of the real agent the
// way busy configuration management, the kubelet and editors do, and checks
// the state the agent reaches, never the order of events: the watcher only
// says "look again", and every pass re-reads the whole directory.
//
//	overflow   FAULTS_WATCH_SPECS (default 20,000) spec files written from
//	           several goroutines as fast as they go, most of them while the
//	           agent is frozen with SIGSTOP, so that the kernel's inotify
//	           queue overflows and the agent has to rescan
//	configmap  100 atomic swaps of a Kubernetes ConfigMap volume
//	editors    vim, emacs, sed -i and truncate-then-write saves, all at once
//	recreate   the models directory removed (or renamed away) and made again
//
// Every spec file written, swap and edit is a trial; a trial fails when the
// state it should lead to is not reached. Periodic resync is set to an hour,
// so only the watcher can make the agent notice anything.

const (
	watchSpecsEnv     = "FAULTS_WATCH_SPECS"
	watchDefaultSpecs = 20000
	// watchFreezeEnv=0 keeps the agent running throughout the overflow
	// trial, to see whether the queue overflows without help.
	watchFreezeEnv = "FAULTS_WATCH_FREEZE"
	// watchPoolFiles is how many small model files the specs point at.
	watchPoolFiles = 8
)

func TestFaultWatch(t *testing.T) {
	const suite = "watch-torture"
	begin := time.Now()
	var tried, failed int
	var detail []string
	record := func(name string, n, bad int, format string, args ...any) {
		tried += n
		failed += min(bad, n)
		detail = append(detail, fmt.Sprintf("%s=%d/%d(%s)", name, n-min(bad, n), n, fmt.Sprintf(format, args...)))
	}
	defer func() {
		faultSummary(t, suite, tried, failed, strings.Join(detail, " ")+" time="+time.Since(begin).Round(100*time.Millisecond).String())
	}()

	t.Run("overflow", func(t *testing.T) { watchOverflow(t, record) })
	t.Run("configmap", func(t *testing.T) { watchConfigMap(t, record) })
	t.Run("editors", func(t *testing.T) { watchEditors(t, record) })
	t.Run("recreate", func(t *testing.T) { watchRecreate(t, record) })
}

type watchRecord func(name string, n, bad int, format string, args ...any)

// watchOverflow writes the spec files from several goroutines in a tight
// loop. The agent runs for the first and last tenth and is frozen in
// between, which leaves the kernel queue more events than it holds: the
// watcher must report the overflow and the agent rescan. /status must then
// list exactly the models written, all Active, and the handoff directory
// exactly their files.
func watchOverflow(t *testing.T, record watchRecord) {
	n := watchDefaultSpecs
	if v := os.Getenv(watchSpecsEnv); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(t, err, watchSpecsEnv)
	}
	e := newWatchEnv(t, 8)
	e.start()

	want := make(map[string]string, n)
	for i := range n {
		want[fmt.Sprintf("ov-%05d", i)] = e.pool[i%len(e.pool)]
	}
	const writers = 4
	var next, written atomic.Int64
	freezeAt, thawAt := int64(n/10), int64(n-n/10)
	if os.Getenv(watchFreezeEnv) == "0" {
		freezeAt, thawAt = -1, -1
	}
	var froze, thawed atomic.Bool
	var freezeErr error
	var mu sync.Mutex
	errs := map[string]error{}
	begin := time.Now()
	var frozenFor time.Duration
	var frozeAt time.Time
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				name := fmt.Sprintf("ov-%05d", i)
				if err := os.WriteFile(filepath.Join(e.models, name+".yaml"), watchSpec(want[name]), 0o644); err != nil {
					mu.Lock()
					errs[name] = err
					mu.Unlock()
				}
				w := written.Add(1)
				if w == freezeAt && froze.CompareAndSwap(false, true) {
					mu.Lock()
					freezeErr = e.agent.cmd.Process.Signal(syscall.SIGSTOP)
					frozeAt = time.Now()
					mu.Unlock()
				}
				if w == thawAt && thawed.CompareAndSwap(false, true) {
					mu.Lock()
					frozenFor = time.Since(frozeAt)
					mu.Unlock()
					_ = e.agent.cmd.Process.Signal(syscall.SIGCONT)
				}
			}
		}()
	}
	wg.Wait()
	// However the counts fell, never leave the agent frozen.
	_ = e.agent.cmd.Process.Signal(syscall.SIGCONT)
	wrote := time.Since(begin)
	require.NoError(t, freezeErr, "SIGSTOP the agent")
	for name, err := range errs {
		t.Errorf("write %s: %v", name, err)
		delete(want, name)
	}

	diffs, took := e.converge(5*time.Minute, want)
	overflows := e.metric("model_provisioner_watcher_overflows_total")
	restarts := e.metric("model_provisioner_watcher_restarts_total")
	passes := e.metric("model_provisioner_reconcile_passes_total")
	bad := len(diffs) + len(errs)
	for _, d := range watchHead(diffs, 20) {
		t.Errorf("overflow: %s", d)
	}
	queue := watchQueueLimit()
	// Each file written while frozen queues a create and a write event;
	// fsnotify's reader holds at most 4096 of them in its buffer.
	if events := 2 * int(thawAt-freezeAt); freezeAt >= 0 && queue > 0 && events > queue+4096 {
		assert.GreaterOrEqual(t, overflows, 1.0, "%d events were queued for a frozen agent, more than max_queued_events=%d: the watcher must report an overflow", events, queue)
	}
	t.Logf("overflow: %d specs written in %s (agent frozen %s); converged %s after the last write; %v overflows, %v watcher restarts, %v passes", n, wrote.Round(time.Millisecond), frozenFor.Round(time.Millisecond), took.Round(time.Millisecond), overflows, restarts, passes)
	record("overflow", n, bad, "specs=%d write=%s converge=%s overflows=%v restarts=%v passes=%v max_queued_events=%d", n, wrote.Round(time.Millisecond), took.Round(time.Millisecond), overflows, restarts, passes, queue)
}

// watchConfigMap publishes two sets of specs alternately through a
// ConfigMap volume layout, 100 times, with a random pause of up to two
// settle periods between swaps. The state is checked after swaps 25, 50, 75
// and 100, which alternate between the two sets.
func watchConfigMap(t *testing.T, record watchRecord) {
	e := newWatchEnv(t, 4)
	sets := [2]map[string]string{{}, {}}
	for i := range 5 {
		sets[0][fmt.Sprintf("cm-shared-%d", i)] = e.pool[0]
		sets[1][fmt.Sprintf("cm-shared-%d", i)] = e.pool[1]
		sets[0][fmt.Sprintf("cm-a-%d", i)] = e.pool[2+i%3]
		sets[1][fmt.Sprintf("cm-b-%d", i)] = e.pool[5+i%3]
	}
	vol := &configMapVolume{dir: e.models}
	require.NoError(t, vol.publish(watchSpecFiles(sets[0])))
	e.start()
	diffs, _ := e.converge(30*time.Second, sets[0])
	require.Empty(t, diffs, "initial ConfigMap contents")

	const swaps = 100
	bad := 0
	var checks []string
	begin := time.Now()
	for k := 1; k <= swaps; k++ {
		set := sets[k%2]
		if err := vol.publish(watchSpecFiles(set)); err != nil {
			t.Errorf("swap %d: %v", k, err)
			bad++
			continue
		}
		if k%25 != 0 {
			time.Sleep(rand.N(200 * time.Millisecond))
			continue
		}
		diffs, took := e.converge(15*time.Second, set)
		checks = append(checks, fmt.Sprintf("%d:%s", k, took.Round(time.Millisecond)))
		for _, d := range watchHead(diffs, 10) {
			t.Errorf("after swap %d: %s", k, d)
		}
		if len(diffs) > 0 {
			// Every swap since the last check may have been lost.
			bad += 25
		}
	}
	entries, err := os.ReadDir(e.models)
	require.NoError(t, err)
	var hidden []string
	for _, de := range entries {
		if strings.HasPrefix(de.Name(), "..") {
			hidden = append(hidden, de.Name())
		}
	}
	assert.Len(t, hidden, 2, "one timestamped directory and ..data remain: %v", hidden)
	t.Logf("configmap: %d swaps in %s; converged after swaps %s", swaps, time.Since(begin).Round(time.Millisecond), strings.Join(checks, " "))
	record("configmap", swaps, bad, "swaps=%d checks=%s", swaps, strings.Join(checks, ","))
}

// configMapVolume lays out a directory the way the kubelet's atomic writer
// does: every key is a visible symlink "key -> ..data/key", "..data" is a
// symlink to a hidden timestamped directory holding the payload, and an
// update writes a new timestamped directory, points "..data_tmp" at it,
// renames "..data_tmp" over "..data", adds and removes visible symlinks and
// then removes the old directory.
type configMapVolume struct {
	dir  string
	seq  int
	cur  string
	keys map[string]bool
}

func (v *configMapVolume) publish(files map[string][]byte) error {
	v.seq++
	ts := fmt.Sprintf("..2026_11_27_10_%02d_%02d.%09d", v.seq/60%60, v.seq%60, rand.N(1_000_000_000))
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		return err
	}
	for key, data := range files {
		if err := os.WriteFile(filepath.Join(v.dir, ts, key), data, 0o644); err != nil {
			return err
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		return err
	}
	for key := range files {
		if v.keys[key] {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", key), filepath.Join(v.dir, key)); err != nil {
			return err
		}
	}
	for key := range v.keys {
		if _, ok := files[key]; !ok {
			if err := os.Remove(filepath.Join(v.dir, key)); err != nil {
				return err
			}
		}
	}
	if v.cur != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, v.cur)); err != nil {
			return err
		}
	}
	v.cur = ts
	v.keys = map[string]bool{}
	for key := range files {
		v.keys[key] = true
	}
	return nil
}

// watchEditors saves spec files the way four editors and tools do, all at
// the same time, each on its own file, while two more files stay untouched.
// Every save points the model at another file; after each one the model
// must follow, and at no point may a model appear under a temporary name, a
// model be retired, or its handoff file go missing.
func watchEditors(t *testing.T, record watchRecord) {
	e := newWatchEnv(t, 4)
	editors := []struct {
		name string
		save func(dir, file string, data []byte) error
	}{
		{"vim", vimSave},
		{"emacs", emacsSave},
		{"sed", sedSave},
		{"truncate", truncateSave},
	}
	var mu sync.Mutex
	want := map[string]string{"ed-still-0": e.pool[6], "ed-still-1": e.pool[7]}
	for i, ed := range editors {
		want["ed-"+ed.name] = e.pool[i]
	}
	for name, file := range want {
		require.NoError(t, os.WriteFile(filepath.Join(e.models, name+".yaml"), watchSpec(file), 0o644))
	}
	e.start()
	diffs, _ := e.converge(30*time.Second, want)
	require.Empty(t, diffs, "initial specs")

	// The monitor records anything that must never be seen, however
	// briefly: a model under a name no spec declares, a declared model
	// retired or failed, a handoff file missing.
	stop := make(chan struct{})
	var anomalies []string
	var monitorWG sync.WaitGroup
	monitorWG.Add(1)
	go func() {
		defer monitorWG.Done()
		seen := map[string]bool{}
		note := func(s string) {
			if !seen[s] {
				seen[s] = true
				mu.Lock()
				anomalies = append(anomalies, s)
				mu.Unlock()
			}
		}
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			rep, err := e.status()
			if err != nil {
				continue
			}
			mu.Lock()
			names := slices.Collect(maps.Keys(want))
			mu.Unlock()
			for _, m := range rep.Models {
				if !slices.Contains(names, m.Name) {
					note(fmt.Sprintf("model %q (%s) appeared", m.Name, m.SpecFile))
				} else if m.Phase == reconcile.PhaseRetired || m.Phase == reconcile.PhaseFailed {
					note(fmt.Sprintf("model %q was %s: %s %s", m.Name, m.Phase, m.Reason, m.LastError))
				}
			}
			for _, n := range names {
				if _, err := os.Stat(filepath.Join(e.handoff, n+".json")); err != nil {
					note(fmt.Sprintf("handoff of %q missing", n))
				}
			}
		}
	}()

	const edits = 10
	begin := time.Now()
	var wg sync.WaitGroup
	bad := make([]int, len(editors))
	slow := make([]time.Duration, len(editors))
	var failures []string
	for i, ed := range editors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := "ed-" + ed.name
			for j := 1; j <= edits; j++ {
				target := e.pool[(i+j)%len(e.pool)]
				if err := ed.save(e.models, name+".yaml", watchSpec(target)); err != nil {
					bad[i]++
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s edit %d: %v", ed.name, j, err))
					mu.Unlock()
					continue
				}
				t0 := time.Now()
				ok := false
				for time.Since(t0) < 15*time.Second {
					if e.follows(name, target) {
						ok = true
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				slow[i] = max(slow[i], time.Since(t0))
				if !ok {
					bad[i]++
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s edit %d: model %s did not follow to %s within 15s", ed.name, j, name, target))
					mu.Unlock()
				}
				mu.Lock()
				want[name] = target
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	diffs, _ = e.converge(15*time.Second, want)
	close(stop)
	monitorWG.Wait()

	for _, f := range failures {
		t.Error(f)
	}
	for _, a := range anomalies {
		t.Errorf("editors: %s", a)
	}
	for _, d := range watchHead(diffs, 10) {
		t.Errorf("editors, final state: %s", d)
	}
	// Only the emacs backup stays behind, as emacs leaves it.
	entries, err := os.ReadDir(e.models)
	require.NoError(t, err)
	var left []string
	for _, de := range entries {
		if _, ok := want[strings.TrimSuffix(de.Name(), ".yaml")]; !ok || !strings.HasSuffix(de.Name(), ".yaml") {
			left = append(left, de.Name())
		}
	}
	assert.Equal(t, []string{"ed-emacs.yaml~"}, left, "files left in models.d besides the specs")

	var parts []string
	total, totalBad := 0, len(anomalies)+len(diffs)
	for i, ed := range editors {
		parts = append(parts, fmt.Sprintf("%s:%d/%d,max=%s", ed.name, edits-bad[i], edits, slow[i].Round(time.Millisecond)))
		total += edits
		totalBad += bad[i]
	}
	t.Logf("editors: %d edits in %s: %s; anomalies %d", total, time.Since(begin).Round(time.Millisecond), strings.Join(parts, " "), len(anomalies))
	record("editors", total, totalBad, "%s anomalies=%d", strings.Join(parts, " "), len(anomalies))
}

// vimSave writes the way Vim does with its defaults (backupcopy=auto,
// writebackup): a swap file while editing, a probe file to test that the
// directory is writable, the original renamed to a backup, the new file
// written and the backup removed.
func vimSave(dir, file string, data []byte) error {
	swp := filepath.Join(dir, "."+file+".swp")
	if err := os.WriteFile(swp, make([]byte, 4096), 0o600); err != nil {
		return err
	}
	probe := filepath.Join(dir, "4913")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		return err
	}
	if err := os.Remove(probe); err != nil {
		return err
	}
	p := filepath.Join(dir, file)
	if err := os.Rename(p, p+"~"); err != nil {
		return err
	}
	if err := watchWriteSync(p, data, os.O_CREATE|os.O_EXCL|os.O_WRONLY); err != nil {
		return err
	}
	if err := os.Remove(p + "~"); err != nil {
		return err
	}
	return os.Remove(swp)
}

// emacsSave writes the way Emacs does: a lock symlink ".#file" to a
// dangling "user@host.pid:boot" target while the buffer is modified, an
// auto-save file "#file#", the original renamed to the backup "file~" (left
// in place), the new file written, then the auto-save file and the lock
// removed.
func emacsSave(dir, file string, data []byte) error {
	lock := filepath.Join(dir, ".#"+file)
	if err := os.Symlink(fmt.Sprintf("torture@node.%d:1764230400", os.Getpid()), lock); err != nil {
		return err
	}
	auto := filepath.Join(dir, "#"+file+"#")
	if err := os.WriteFile(auto, data, 0o644); err != nil {
		return err
	}
	p := filepath.Join(dir, file)
	if err := os.Rename(p, p+"~"); err != nil {
		return err
	}
	if err := watchWriteSync(p, data, os.O_CREATE|os.O_EXCL|os.O_WRONLY); err != nil {
		return err
	}
	if err := os.Remove(auto); err != nil {
		return err
	}
	return os.Remove(lock)
}

// sedSave writes the way "sed -i" does: a temporary "sedXXXXXX" in the same
// directory, renamed over the file.
func sedSave(dir, file string, data []byte) error {
	f, err := os.CreateTemp(dir, "sed")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, file))
}

// truncateSave writes in place the way "cat > file" does: the file is
// truncated, and the new content follows a moment later. An agent that
// reads in between sees an empty file, which must keep the last good
// version in force.
func truncateSave(dir, file string, data []byte) error {
	f, err := os.OpenFile(filepath.Join(dir, file), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	time.Sleep(rand.N(30 * time.Millisecond))
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func watchWriteSync(path string, data []byte, flag int) error {
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// watchRecreate removes the models directory and makes it again, several
// times and several ways. While it is missing the current models stay
// Active with their handoff files (the agent must have noticed, which the
// models_dir error counter shows); once it is back the agent follows its
// new contents.
func watchRecreate(t *testing.T, record watchRecord) {
	e := newWatchEnv(t, 4)
	set := func(cycle int) map[string]string {
		m := map[string]string{}
		// Names 0-5 stay with a target that changes every cycle; 6-9 come
		// and go; one name is new in each cycle.
		for i := range 6 {
			m[fmt.Sprintf("rd-%d", i)] = e.pool[(i+cycle)%len(e.pool)]
		}
		for i := 6; i < 10; i++ {
			if (i+cycle)%2 == 0 {
				m[fmt.Sprintf("rd-%d", i)] = e.pool[i%len(e.pool)]
			}
		}
		m[fmt.Sprintf("rd-new-%d", cycle)] = e.pool[cycle%len(e.pool)]
		return m
	}
	want := set(0)
	for name, data := range watchSpecFiles(want) {
		require.NoError(t, os.WriteFile(filepath.Join(e.models, name), data, 0o644))
	}
	e.start()
	diffs, _ := e.converge(30*time.Second, want)
	require.Empty(t, diffs, "initial specs")

	ways := []string{"rm -rf", "mv away", "mv new into place"}
	const cycles = 6
	tried, bad, stale := 0, 0, 0
	var notes []string
	for cycle := 1; cycle <= cycles; cycle++ {
		way := ways[(cycle-1)%len(ways)]
		before := e.metric(`model_provisioner_errors_total{reason="models_dir"}`)
		switch way {
		case "rm -rf":
			require.NoError(t, os.RemoveAll(e.models))
		case "mv away", "mv new into place":
			require.NoError(t, os.Rename(e.models, fmt.Sprintf("%s.old-%d", e.models, cycle)))
		}
		tried++
		// Missing: the agent notices and keeps every model.
		noticed := false
		for t0 := time.Now(); time.Since(t0) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
			if e.metric(`model_provisioner_errors_total{reason="models_dir"}`) > before {
				noticed = true
				break
			}
		}
		time.Sleep(300 * time.Millisecond) // more than a settle period: any retirement would have started
		diffs := e.diff(want, false)
		if !noticed || len(diffs) > 0 {
			bad++
			t.Errorf("cycle %d (%s): models directory missing: noticed=%v", cycle, way, noticed)
			for _, d := range watchHead(diffs, 10) {
				t.Errorf("cycle %d (%s), while missing: %s", cycle, way, d)
			}
		}

		next := set(cycle)
		dir := e.models
		if way == "mv new into place" {
			dir = e.models + ".new"
		}
		require.NoError(t, os.Mkdir(dir, 0o755))
		for name, data := range watchSpecFiles(next) {
			tried++
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				bad++
				t.Errorf("cycle %d: %v", cycle, err)
			}
		}
		if dir != e.models {
			require.NoError(t, os.Rename(dir, e.models))
		}
		want = next
		diffs, took := e.converge(15*time.Second, want)
		for _, d := range watchHead(diffs, 10) {
			t.Errorf("cycle %d (%s), after recreation: %s", cycle, way, d)
		}
		bad += len(diffs)
		// A handoff file left behind would fail every later cycle too:
		// count it once, then take it away.
		for _, d := range diffs {
			if name, ok := strings.CutSuffix(d, " "+watchStale); ok {
				stale++
				_ = os.Remove(filepath.Join(e.handoff, strings.TrimPrefix(name, "handoff ")))
			}
		}
		notes = append(notes, fmt.Sprintf("%s:%s", strings.ReplaceAll(way, " ", "_"), took.Round(time.Millisecond)))
	}
	t.Logf("recreate: %d cycles: %s; %d handoff files left behind", cycles, strings.Join(notes, " "), stale)
	record("recreate", tried, bad, "cycles=%d %s stale_handoffs=%d", cycles, strings.Join(notes, ","), stale)
}

// watchEnv is one agent with its directories and a pool of small model
// files for the specs to point at.
type watchEnv struct {
	t       *testing.T
	dir     string
	models  string
	handoff string
	config  string
	pool    []string
	agent   *agentProc
}

func newWatchEnv(t *testing.T, concurrency int) *watchEnv {
	t.Helper()
	dir := t.TempDir()
	e := &watchEnv{t: t, dir: dir, models: filepath.Join(dir, "models.d"), handoff: filepath.Join(dir, "handoff"), config: filepath.Join(dir, "agent.yaml")}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "pool"), 0o755))
	require.NoError(t, os.MkdirAll(e.models, 0o755))
	for i := range watchPoolFiles {
		p := filepath.Join(dir, "pool", fmt.Sprintf("m%d.bin", i))
		require.NoError(t, os.WriteFile(p, []byte(fmt.Sprintf("model %d\n", i)), 0o644))
		e.pool = append(e.pool, p)
	}
	addr := freeAddr(t)
	cfg := fmt.Sprintf("models_dir: models.d\nstate_dir: state\nhandoff_dir: handoff\nlisten: %s\nresync: '@every 1h'\nconcurrency: %d\n", addr, concurrency)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o644))
	e.agent = &agentProc{addr: addr}
	return e
}

func (e *watchEnv) start() {
	e.t.Helper()
	e.agent = startAgent(e.t, e.config, e.agent.addr)
	require.Eventually(e.t, func() bool {
		code, _, err := e.get("/readyz")
		return err == nil && code == http.StatusOK
	}, 60*time.Second, 20*time.Millisecond, "agent becomes ready")
	e.t.Cleanup(func() {
		if e.agent.cmd.ProcessState == nil {
			e.agent.stop(e.t)
		}
		if logs := e.agent.stderr.String(); strings.Contains(logs, "level=ERROR") {
			e.t.Errorf("the agent logged errors:\n%s", watchHead(watchGrep(logs, "level=ERROR"), 10))
		}
	})
}

// watchClient asks the agent without keep-alive. With keep-alive, the
// transport of several polling goroutines dials spare connections that never
// carry a request, and the agent's graceful shutdown waits for those.
var watchClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}

func (e *watchEnv) get(path string) (int, string, error) {
	resp, err := watchClient.Get("http://" + e.agent.addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func (e *watchEnv) status() (reconcile.Report, error) {
	var rep reconcile.Report
	code, body, err := e.get("/status")
	if err != nil {
		return rep, err
	}
	if code != http.StatusOK {
		return rep, fmt.Errorf("/status: %d", code)
	}
	return rep, json.Unmarshal([]byte(body), &rep)
}

// follows reports whether the model called name is Active on target, with
// its handoff file saying so.
func (e *watchEnv) follows(name, target string) bool {
	rep, err := e.status()
	if err != nil {
		return false
	}
	i := slices.IndexFunc(rep.Models, func(m reconcile.ModelStatus) bool { return m.Name == name })
	if i < 0 || rep.Models[i].Phase != reconcile.PhaseActive || rep.Models[i].ID != "file:"+target {
		return false
	}
	h, err := handoff.Read(filepath.Join(e.handoff, name+".json"))
	return err == nil && h.Model.Path == target
}

// check compares the agent's state with want (model name to the file it
// must be Active on) and returns the differences: /status must show every
// wanted model Active on its file and any other model retired, no spec
// errors, and the handoff directory exactly the wanted models' files,
// each pointing at the right file.
func (e *watchEnv) check(want map[string]string) []string { return e.diff(want, true) }

// diff is check; with stale false, handoff files of models not in want are
// not counted.
func (e *watchEnv) diff(want map[string]string, stale bool) []string {
	rep, err := e.status()
	if err != nil {
		return []string{err.Error()}
	}
	var diffs []string
	seen := make(map[string]bool, len(rep.Models))
	for _, m := range rep.Models {
		seen[m.Name] = true
		target, ok := want[m.Name]
		switch {
		case !ok && m.Phase != reconcile.PhaseRetired:
			diffs = append(diffs, fmt.Sprintf("model %q is %s, want retired or absent", m.Name, m.Phase))
		case ok && (m.Phase != reconcile.PhaseActive || m.ID != "file:"+target):
			diffs = append(diffs, fmt.Sprintf("model %q is %s on %s (%s %s), want active on %s", m.Name, m.Phase, m.ID, m.Reason, m.LastError, target))
		}
	}
	for name := range want {
		if !seen[name] {
			diffs = append(diffs, fmt.Sprintf("model %q missing from /status", name))
		}
	}
	for _, se := range rep.SpecErrors {
		diffs = append(diffs, fmt.Sprintf("spec error: %s", se.Error))
	}
	if len(diffs) > 0 {
		return diffs
	}
	entries, err := os.ReadDir(e.handoff)
	if err != nil {
		return []string{err.Error()}
	}
	found := 0
	for _, de := range entries {
		name, isJSON := strings.CutSuffix(de.Name(), ".json")
		switch {
		case de.Name() == handoff.ProvenanceFile || de.Name() == handoff.LockFile:
		case !isJSON:
			diffs = append(diffs, fmt.Sprintf("stray file %s in the handoff directory", de.Name()))
		case want[name] == "":
			if stale {
				diffs = append(diffs, fmt.Sprintf("handoff %s %s", de.Name(), watchStale))
			}
		default:
			found++
			h, err := handoff.Read(filepath.Join(e.handoff, de.Name()))
			if err != nil || h.Model.Path != want[name] {
				diffs = append(diffs, fmt.Sprintf("handoff %s: path %q, %v; want %s", de.Name(), h.Model.Path, err, want[name]))
			}
		}
	}
	if found != len(want) {
		diffs = append(diffs, fmt.Sprintf("%d handoff files for %d models", found, len(want)))
	}
	return diffs
}

// watchStale ends the difference reported for a handoff file left behind
// by a model no spec declares any more.
const watchStale = "of an undeclared model"

// converge polls check until it finds no difference or timeout passes, and
// returns the differences seen last and how long it waited.
func (e *watchEnv) converge(timeout time.Duration, want map[string]string) ([]string, time.Duration) {
	begin := time.Now()
	interval := 20 * time.Millisecond
	if len(want) > 1000 {
		interval = time.Second
	}
	var staleSince time.Time
	for {
		diffs := e.check(want)
		if len(diffs) == 0 || time.Since(begin) > timeout {
			return diffs, time.Since(begin)
		}
		// A model's handoff file is removed before /status shows it
		// retired: once only stale handoff files are left, they stay.
		onlyStale := !slices.ContainsFunc(diffs, func(d string) bool { return !strings.HasSuffix(d, watchStale) })
		switch {
		case !onlyStale:
			staleSince = time.Time{}
		case staleSince.IsZero():
			staleSince = time.Now()
		case time.Since(staleSince) > 2*time.Second:
			return diffs, time.Since(begin)
		}
		time.Sleep(interval)
	}
}

// metric returns the value of one sample of /metrics, 0 when absent.
func (e *watchEnv) metric(sample string) float64 {
	_, body, err := e.get("/metrics")
	if err != nil {
		return -1
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func watchSpec(target string) []byte {
	return []byte("model_ref: " + target + "\n")
}

// watchSpecFiles turns model names and targets into spec files named after
// the models (specs give no name, so the file name is the model's name).
func watchSpecFiles(models map[string]string) map[string][]byte {
	files := make(map[string][]byte, len(models))
	for name, target := range models {
		files[name+".yaml"] = watchSpec(target)
	}
	return files
}

func watchQueueLimit() int {
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func watchHead(lines []string, n int) []string {
	if len(lines) > n {
		return append(slices.Clone(lines[:n]), fmt.Sprintf("... and %d more", len(lines)-n))
	}
	return lines
}

func watchGrep(s, substr string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}
