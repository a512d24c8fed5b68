package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// specName is the kind of filter the agent passes as Config.Relevant: spec
// extensions only, no hidden, backup or temp names.
func specName(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
		return false
	}
	switch filepath.Ext(name) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

func isRescan(s Signal) bool   { return s.Rescan }
func isFsnotify(s Signal) bool { return s.Reason == ReasonFsnotify }

// startWatcher creates a Watcher, runs it until the test ends and returns
// once the start Signal has been received, that is once the watches are in
// place.
func startWatcher(t *testing.T, cfg Config) *Watcher {
	t.Helper()
	w, err := New(cfg)
	require.NoError(t, err)
	runWatcher(t, w)
	return w
}

func runWatcher(t *testing.T, w *Watcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "Run")
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context was cancelled")
		}
	})
	sig := waitSignal(t, w.C(), 2*time.Second, "start signal", func(s Signal) bool { return s.Reason == ReasonStart })
	require.True(t, sig.Rescan, "start signal must ask for a rescan")
}

// waitSignal receives until a Signal satisfies pred (nil: any) and returns
// it, failing the test after timeout.
func waitSignal(t *testing.T, c <-chan Signal, timeout time.Duration, what string, pred func(Signal) bool) Signal {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var other []Signal
	for {
		select {
		case s := <-c:
			if pred == nil || pred(s) {
				return s
			}
			other = append(other, s)
		case <-deadline.C:
			t.Fatalf("no %s within %v; other signals: %+v", what, timeout, other)
			return Signal{}
		}
	}
}

// expectQuiet fails the test if a Signal arrives within d.
func expectQuiet(t *testing.T, c <-chan Signal, d time.Duration) {
	t.Helper()
	select {
	case s := <-c:
		t.Errorf("unexpected signal %+v", s)
	case <-time.After(d):
	}
}

// drain receives until no Signal has come for quiet.
func drain(c <-chan Signal, quiet time.Duration) {
	for {
		select {
		case <-c:
		case <-time.After(quiet):
			return
		}
	}
}

// collector receives Signals on its own goroutine as fast as they come, so
// that a test can count what the Watcher sent rather than what the
// one-slot channel coalesced.
type collector struct {
	mu    sync.Mutex
	times []time.Time
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func collect(t *testing.T, c <-chan Signal) *collector {
	col := &collector{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(col.done)
		for {
			select {
			case <-c:
				col.mu.Lock()
				col.times = append(col.times, time.Now())
				col.mu.Unlock()
			case <-col.stop:
				return
			}
		}
	}()
	t.Cleanup(col.close)
	return col
}

func (col *collector) close() {
	col.once.Do(func() { close(col.stop) })
	<-col.done
}

func (col *collector) received() []time.Time {
	col.mu.Lock()
	defer col.mu.Unlock()
	return append([]time.Time(nil), col.times...)
}

// settled waits until a Signal has been received after after and none for
// quiet since, and returns everything received.
func (col *collector) settled(t *testing.T, after time.Time, quiet, timeout time.Duration) []time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		got := col.received()
		if n := len(got); n > 0 && got[n-1].After(after) && time.Since(got[n-1]) > quiet {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := col.received()
	t.Fatalf("no settled signal after the last change within %v; received %d", timeout, len(got))
	return nil
}

func write(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; empty means success
	}{
		{name: "minimal", cfg: Config{Dir: "/etc/model-provisioner/models.d"}},
		{name: "schedules", cfg: Config{Dir: "/m", Resync: "@every 5m", Reverify: "0 3 * * 0"}},
		{name: "missing dir", cfg: Config{}, wantErr: "dir: required"},
		{name: "relative dir", cfg: Config{Dir: "models.d"}, wantErr: "dir:"},
		{name: "invalid resync", cfg: Config{Dir: "/m", Resync: "every 5 minutes"}, wantErr: "resync:"},
		{name: "invalid reverify", cfg: Config{Dir: "/m", Reverify: "@fortnightly"}, wantErr: "reverify:"},
		{name: "resync never fires", cfg: Config{Dir: "/m", Resync: "0 0 30 2 *"}, wantErr: "resync:"},
		{name: "negative settle", cfg: Config{Dir: "/m", Settle: -time.Second}, wantErr: "settle:"},
		{name: "negative backoff", cfg: Config{Dir: "/m", RestartBackoffMax: -time.Second}, wantErr: "restart backoff max:"},
		{name: "max delay below settle", cfg: Config{Dir: "/m", Settle: time.Second, MaxDelay: 500 * time.Millisecond}, wantErr: "max delay"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := New(tc.cfg)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, defaultSettle, w.cfg.Settle)
			assert.Equal(t, defaultMaxDelay, w.cfg.MaxDelay)
			assert.Equal(t, defaultRestartBackoffMax, w.cfg.RestartBackoffMax)
		})
	}
}

func TestValidateSchedule(t *testing.T) {
	tests := []struct {
		spec    string
		wantErr bool
	}{
		{spec: ""},
		{spec: "@every 5m"},
		{spec: "@weekly"},
		{spec: "@midnight"},
		{spec: "*/15 * * * *"},
		{spec: "0 3 * * SUN"},
		{spec: "TZ=Europe/Berlin 0 3 * * *"},
		{spec: "every 5 minutes", wantErr: true},
		{spec: "* * * * * *", wantErr: true},
		{spec: "61 * * * *", wantErr: true},
		{spec: "@every five", wantErr: true},
		{spec: "0 0 30 2 *", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			err := ValidateSchedule(tc.spec)
			if tc.wantErr {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

func TestWatcher_sendCoalesces(t *testing.T) {
	tests := []struct {
		name string
		sent []Signal
		want Signal
	}{
		{name: "one", sent: []Signal{{Reason: ReasonFsnotify}}, want: Signal{Reason: ReasonFsnotify}},
		{
			name: "start absorbs an event",
			sent: []Signal{{Rescan: true, Reason: ReasonStart}, {Reason: ReasonFsnotify}},
			want: Signal{Rescan: true, Reason: ReasonStart},
		},
		{
			name: "reverify kept across a later resync",
			sent: []Signal{{Reverify: true, Reason: ReasonReverify}, {Reason: ReasonResync}},
			want: Signal{Reverify: true, Reason: ReasonReverify},
		},
		{
			name: "overflow is the strongest reason",
			sent: []Signal{{Reason: ReasonFsnotify}, {Rescan: true, Reason: ReasonOverflow}, {Reverify: true, Reason: ReasonReverify}},
			want: Signal{Rescan: true, Reverify: true, Reason: ReasonOverflow},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := New(Config{Dir: "/m"})
			require.NoError(t, err)
			for _, s := range tc.sent {
				w.send(s) // must not block although nobody reads
			}
			assert.Equal(t, tc.want, <-w.C())
			select {
			case s := <-w.C():
				t.Errorf("second signal %+v; want everything coalesced into one", s)
			default:
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{initial: 100 * time.Millisecond, max: time.Second}
	for _, step := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		step *= time.Millisecond
		d := b.next()
		assert.GreaterOrEqual(t, d, step/2)
		assert.LessOrEqual(t, d, step)
	}
	b.reset()
	assert.LessOrEqual(t, b.next(), 100*time.Millisecond)
}

// TestWatcher_FileChanges checks that the ways people and tools change a
// spec file each lead to a signal, soon after the change settles.
func TestWatcher_FileChanges(t *testing.T) {
	t.Parallel()
	const settle = 150 * time.Millisecond
	tests := []struct {
		name     string
		setup    func(t *testing.T, dir string)
		change   func(t *testing.T, dir string)
		noFilter bool // Config.Relevant nil instead of specName
		single   bool // the change must produce exactly one signal
	}{
		{
			name:   "create",
			change: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "x.yaml"), "name: x\n") },
		},
		{
			name:  "modify in chunks",
			setup: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "x.yaml"), "name: x\n") },
			change: func(t *testing.T, dir string) {
				f, err := os.OpenFile(filepath.Join(dir, "x.yaml"), os.O_WRONLY|os.O_TRUNC, 0)
				require.NoError(t, err)
				for _, chunk := range []string{"name: x\n", "model_ref: /m/x.gguf\n", "strict_verification: false\n"} {
					_, err := f.WriteString(chunk)
					require.NoError(t, err)
					time.Sleep(10 * time.Millisecond) // well under settle
				}
				require.NoError(t, f.Close())
			},
			single: true,
		},
		{
			name:   "delete",
			setup:  func(t *testing.T, dir string) { write(t, filepath.Join(dir, "x.yaml"), "name: x\n") },
			change: func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, "x.yaml"))) },
		},
		{
			name:   "chmod",
			setup:  func(t *testing.T, dir string) { write(t, filepath.Join(dir, "x.yaml"), "name: x\n") },
			change: func(t *testing.T, dir string) { require.NoError(t, os.Chmod(filepath.Join(dir, "x.yaml"), 0o600)) },
		},
		{
			name: "vim save",
			setup: func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, "x.yaml"), "name: x\n")
				write(t, filepath.Join(dir, ".x.yaml.swp"), "swap")
			},
			change: func(t *testing.T, dir string) {
				// vim probes the directory, renames the original to a
				// backup, writes a new file and drops the backup.
				probe := filepath.Join(dir, "4913")
				write(t, probe, "")
				require.NoError(t, os.Remove(probe))
				require.NoError(t, os.Rename(filepath.Join(dir, "x.yaml"), filepath.Join(dir, "x.yaml~")))
				write(t, filepath.Join(dir, "x.yaml"), "name: x2\n")
				require.NoError(t, os.Remove(filepath.Join(dir, "x.yaml~")))
				write(t, filepath.Join(dir, ".x.yaml.swp"), "swap2")
			},
		},
		{
			name:  "emacs save",
			setup: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "x.yaml"), "name: x\n") },
			change: func(t *testing.T, dir string) {
				lock := filepath.Join(dir, ".#x.yaml")
				require.NoError(t, os.Symlink("root@gpu-01.4242:1700000000", lock))
				require.NoError(t, os.Rename(filepath.Join(dir, "x.yaml"), filepath.Join(dir, "x.yaml~")))
				write(t, filepath.Join(dir, "x.yaml"), "name: x2\n")
				require.NoError(t, os.Remove(lock))
			},
		},
		{
			name:  "sed -i",
			setup: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "x.yaml"), "name: x\n") },
			change: func(t *testing.T, dir string) {
				tmp := filepath.Join(dir, "sedq1W2eR")
				write(t, tmp, "name: y\n")
				require.NoError(t, os.Rename(tmp, filepath.Join(dir, "x.yaml")))
			},
		},
		{
			name:  "temp file renamed over",
			setup: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "x.yaml"), "name: x\n") },
			change: func(t *testing.T, dir string) {
				tmp := filepath.Join(dir, ".x.yaml.tmp-123456")
				write(t, tmp, "name: y\n")
				require.NoError(t, os.Rename(tmp, filepath.Join(dir, "x.yaml")))
			},
		},
		{
			name: "configmap ..data swap",
			setup: func(t *testing.T, dir string) {
				configMapInit(t, dir)
			},
			change: func(t *testing.T, dir string) { configMapSwap(t, dir, 2) },
		},
		{
			name:     "hidden file without a filter",
			change:   func(t *testing.T, dir string) { write(t, filepath.Join(dir, ".x.swp"), "swap") },
			noFilter: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			cfg := Config{Dir: dir, Settle: settle, Relevant: specName}
			if tc.noFilter {
				cfg.Relevant = nil
			}
			w := startWatcher(t, cfg)

			begin := time.Now()
			tc.change(t, dir)
			end := time.Now()
			sig := waitSignal(t, w.C(), 2*time.Second, "signal after the change", nil)
			assert.Equal(t, Signal{Reason: ReasonFsnotify}, sig)
			assert.GreaterOrEqual(t, time.Since(begin), settle, "signal came before events settled")
			assert.Less(t, time.Since(end), time.Second, "signal came too late")
			if tc.single {
				expectQuiet(t, w.C(), 2*settle)
			}
		})
	}
}

// TestWatcher_IgnoresIrrelevantNames checks that changes the filter rejects,
// and changes next to the models directory, produce no signal.
func TestWatcher_IgnoresIrrelevantNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
	}{
		{name: "vim swap file", change: func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, ".x.yaml.swp"), "swap")
			require.NoError(t, os.Remove(filepath.Join(dir, ".x.yaml.swp")))
		}},
		{name: "backup file", change: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "x.yaml~"), "name: x\n") }},
		{name: "emacs lock symlink", change: func(t *testing.T, dir string) {
			require.NoError(t, os.Symlink("root@gpu-01.4242:1700000000", filepath.Join(dir, ".#x.yaml")))
		}},
		{name: "sed temp file", change: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "sedAbCdEf"), "x") }},
		{name: "other extension", change: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "README.md"), "x") }},
		{name: "sibling in parent", change: func(t *testing.T, dir string) {
			write(t, filepath.Join(filepath.Dir(dir), "agent.yaml"), "x")
		}},
	}
	// One watcher for all cases: each case must leave it quiet.
	dir := filepath.Join(t.TempDir(), "models.d")
	require.NoError(t, os.Mkdir(dir, 0o755))
	w := startWatcher(t, Config{Dir: dir, Settle: 50 * time.Millisecond, Relevant: specName})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.change(t, dir)
			expectQuiet(t, w.C(), 300*time.Millisecond)
		})
	}
}

// configMapInit lays dir out the way the kubelet does for a ConfigMap
// volume: a timestamped directory holding the data, "..data" pointing at it,
// and each key a symlink through "..data".
func configMapInit(t *testing.T, dir string) {
	t.Helper()
	gen := configMapGen(1)
	require.NoError(t, os.Mkdir(filepath.Join(dir, gen), 0o755))
	write(t, filepath.Join(dir, gen, "x.yaml"), "name: x\n")
	require.NoError(t, os.Symlink(gen, filepath.Join(dir, "..data")))
	require.NoError(t, os.Symlink(filepath.Join("..data", "x.yaml"), filepath.Join(dir, "x.yaml")))
}

// configMapSwap publishes generation n the way the kubelet's atomic writer
// does: new timestamped directory, "..data_tmp" symlink to it renamed over
// "..data", old directory removed.
func configMapSwap(t *testing.T, dir string, n int) {
	t.Helper()
	gen := configMapGen(n)
	require.NoError(t, os.Mkdir(filepath.Join(dir, gen), 0o755))
	write(t, filepath.Join(dir, gen, "x.yaml"), fmt.Sprintf("name: x\n# generation %d\n", n))
	tmp := filepath.Join(dir, "..data_tmp")
	require.NoError(t, os.Symlink(gen, tmp))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, "..data")))
	require.NoError(t, os.RemoveAll(filepath.Join(dir, configMapGen(n-1))))
}

func configMapGen(n int) string { return fmt.Sprintf("..2024_01_01_00_00_00.%09d", n) }

func TestWatcher_ConfigMapSwaps(t *testing.T) {
	t.Parallel()
	const swaps = 100
	const maxDelay = 200 * time.Millisecond
	dir := t.TempDir()
	configMapInit(t, dir)
	// specName rejects every ".." name: signals must still come.
	w := startWatcher(t, Config{Dir: dir, Settle: 50 * time.Millisecond, MaxDelay: maxDelay, Relevant: specName})
	col := collect(t, w.C())

	var lastStart time.Time
	for n := 2; n < swaps+2; n++ {
		lastStart = time.Now()
		configMapSwap(t, dir, n)
		time.Sleep(5 * time.Millisecond)
	}
	lastEnd := time.Now()

	got := col.settled(t, lastEnd, 300*time.Millisecond, 3*time.Second)
	t.Logf("%d swaps in %v gave %d signals", swaps, lastEnd.Sub(got[0]).Round(time.Millisecond), len(got))
	assert.Less(t, len(got), swaps/2, "signals were not coalesced")
	assert.True(t, got[0].Before(lastStart), "no signal while swaps kept coming: MaxDelay not honoured")
	assert.True(t, got[len(got)-1].After(lastEnd), "no signal after the last swap")
}

// TestWatcher_Burst checks that a flood of writes to one file produces a
// bounded number of signals, the last one after the last write.
func TestWatcher_Burst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := startWatcher(t, Config{Dir: dir, Relevant: specName})
	col := collect(t, w.C())

	path := filepath.Join(dir, "x.yaml")
	begin := time.Now()
	for i := range 1000 {
		write(t, path, fmt.Sprintf("name: x\n# write %d\n", i))
	}
	last := time.Now()

	got := col.settled(t, last, 300*time.Millisecond, 3*time.Second)
	t.Logf("1000 writes in %v gave %d signals", last.Sub(begin).Round(time.Millisecond), len(got))
	assert.LessOrEqual(t, len(got), 10)
	assert.True(t, got[len(got)-1].After(last), "no signal after the last write")
}

// TestWatcher_DirLifecycle checks that the models directory may be missing,
// appear, vanish and be replaced, that each of these asks for a rescan, and
// that files in the directory are watched again afterwards.
func TestWatcher_DirLifecycle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		dir    string // below the test's temp dir
		setup  func(t *testing.T, dir string)
		change func(t *testing.T, w *Watcher, dir string)
	}{
		{
			name: "missing at start",
			dir:  "models.d",
			change: func(t *testing.T, w *Watcher, dir string) {
				require.NoError(t, os.Mkdir(dir, 0o755))
				write(t, filepath.Join(dir, "x.yaml"), "name: x\n")
				waitSignal(t, w.C(), 2*time.Second, "rescan after the directory appeared", isRescan)
			},
		},
		{
			name: "parent missing at start",
			dir:  "etc/model-provisioner/models.d",
			change: func(t *testing.T, w *Watcher, dir string) {
				time.Sleep(300 * time.Millisecond) // let the poll back off a few times
				require.NoError(t, os.MkdirAll(dir, 0o755))
				write(t, filepath.Join(dir, "x.yaml"), "name: x\n")
				waitSignal(t, w.C(), 3*time.Second, "rescan after the directory appeared", isRescan)
			},
		},
		{
			name:  "removed and recreated",
			dir:   "models.d",
			setup: mkdirWithSpec,
			change: func(t *testing.T, w *Watcher, dir string) {
				require.NoError(t, os.RemoveAll(dir))
				waitSignal(t, w.C(), 2*time.Second, "rescan after the directory vanished", isRescan)
				drain(w.C(), 200*time.Millisecond)
				require.NoError(t, os.Mkdir(dir, 0o755))
				waitSignal(t, w.C(), 2*time.Second, "rescan after the directory came back", isRescan)
			},
		},
		{
			name:  "replaced by rename",
			dir:   "models.d",
			setup: mkdirWithSpec,
			change: func(t *testing.T, w *Watcher, dir string) {
				staging := dir + ".new"
				mkdirWithSpec(t, staging)
				require.NoError(t, os.Rename(dir, dir+".old"))
				require.NoError(t, os.Rename(staging, dir))
				waitSignal(t, w.C(), 2*time.Second, "rescan after the directory was replaced", isRescan)
				drain(w.C(), 200*time.Millisecond)
				// The watch must have left the old directory.
				write(t, filepath.Join(dir+".old", "y.yaml"), "name: y\n")
				expectQuiet(t, w.C(), 300*time.Millisecond)
			},
		},
		{
			name: "symlink retargeted",
			dir:  "models.d",
			setup: func(t *testing.T, dir string) {
				mkdirWithSpec(t, dir+".a")
				require.NoError(t, os.Symlink(filepath.Base(dir)+".a", dir))
			},
			change: func(t *testing.T, w *Watcher, dir string) {
				mkdirWithSpec(t, dir+".b")
				tmp := dir + ".tmp"
				require.NoError(t, os.Symlink(filepath.Base(dir)+".b", tmp))
				require.NoError(t, os.Rename(tmp, dir))
				waitSignal(t, w.C(), 2*time.Second, "rescan after the symlink was retargeted", isRescan)
			},
		},
		{
			name:  "file replaced by a directory",
			dir:   "models.d",
			setup: func(t *testing.T, dir string) { write(t, dir, "not a directory") },
			change: func(t *testing.T, w *Watcher, dir string) {
				require.NoError(t, os.Remove(dir))
				require.NoError(t, os.Mkdir(dir, 0o755))
				waitSignal(t, w.C(), 2*time.Second, "rescan after the directory appeared", isRescan)
			},
		},
		{
			name:  "parent removed and recreated",
			dir:   "etc/models.d",
			setup: mkdirWithSpec,
			change: func(t *testing.T, w *Watcher, dir string) {
				require.NoError(t, os.RemoveAll(filepath.Dir(dir)))
				waitSignal(t, w.C(), 2*time.Second, "rescan after the parent vanished", isRescan)
				drain(w.C(), 200*time.Millisecond)
				require.NoError(t, os.MkdirAll(dir, 0o755))
				waitSignal(t, w.C(), 3*time.Second, "rescan after the directory came back", isRescan)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), tc.dir)
			if tc.setup != nil {
				require.NoError(t, os.MkdirAll(filepath.Dir(dir), 0o755))
				tc.setup(t, dir)
			}
			w := startWatcher(t, Config{
				Dir:               dir,
				Settle:            50 * time.Millisecond,
				RestartBackoffMax: 200 * time.Millisecond, // caps the parent poll
				Relevant:          specName,
			})
			tc.change(t, w, dir)

			drain(w.C(), 200*time.Millisecond)
			write(t, filepath.Join(dir, "z.yaml"), "name: z\n")
			waitSignal(t, w.C(), time.Second, "signal for a file in the directory", isFsnotify)
		})
	}
}

func mkdirWithSpec(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, os.Mkdir(dir, 0o755))
	write(t, filepath.Join(dir, "x.yaml"), "name: x\n")
}

// TestWatcher_Errors feeds errors into the event loop as the kernel watcher
// would report them.
func TestWatcher_Errors(t *testing.T) {
	t.Parallel()
	boom := errors.New("read inotify: input/output error")
	tests := []struct {
		name         string
		err          error
		wantReason   string
		wantOverflow int32
		wantRestart  bool
	}{
		{name: "overflow", err: fsnotify.ErrEventOverflow, wantReason: ReasonOverflow, wantOverflow: 1},
		{name: "other error restarts", err: boom, wantReason: ReasonRestart, wantRestart: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var overflows atomic.Int32
			restarts := make(chan error, 10)
			w, err := New(Config{
				Dir:      dir,
				Settle:   50 * time.Millisecond,
				Relevant: specName,
				Hooks: Hooks{
					OnOverflow: func() { overflows.Add(1) },
					OnRestart:  func(err error) { restarts <- err },
				},
			})
			require.NoError(t, err)
			w.inject = make(chan error)
			runWatcher(t, w)

			w.inject <- tc.err
			sig := waitSignal(t, w.C(), 2*time.Second, "rescan after the error", isRescan)
			assert.Equal(t, tc.wantReason, sig.Reason)
			assert.Equal(t, tc.wantOverflow, overflows.Load())
			if tc.wantRestart {
				require.Len(t, restarts, 1)
				assert.ErrorIs(t, <-restarts, boom)
			} else {
				assert.Empty(t, restarts)
			}

			// The watches are in place again.
			write(t, filepath.Join(dir, "x.yaml"), "name: x\n")
			waitSignal(t, w.C(), time.Second, "signal for a file after the error", isFsnotify)
		})
	}
}

func TestWatcher_Schedules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   Config
		want  Signal
		ticks int // more than one shows the schedule keeps firing
	}{
		{name: "resync", cfg: Config{Resync: "@every 1s"}, want: Signal{Reason: ReasonResync}, ticks: 2},
		{name: "reverify", cfg: Config{Reverify: "@every 1s"}, want: Signal{Reverify: true, Reason: ReasonReverify}, ticks: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.Dir = t.TempDir()
			w := startWatcher(t, tc.cfg)
			for i := range tc.ticks {
				sig := waitSignal(t, w.C(), 2500*time.Millisecond, fmt.Sprintf("tick %d", i+1), nil)
				assert.Equal(t, tc.want, sig)
			}
		})
	}
}

func TestWatcher_RunTwice(t *testing.T) {
	t.Parallel()
	w := startWatcher(t, Config{Dir: t.TempDir()})
	assert.Error(t, w.Run(context.Background()), "a second concurrent Run must be refused")
}

// TestRunner_recheck checks the repair of watches that went stale without
// an event saying so (events lost in an overflow, a watch the kernel dropped
// silently). It drives a runner directly, without Run, and never reads its
// events: exactly the situation in which they are lost.
func TestRunner_recheck(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(t *testing.T, dir string)
		change      func(t *testing.T, r *runner, dir string)
		wantRescan  bool
		wantWatched bool
	}{
		{
			name:        "nothing changed",
			setup:       mkdirWithSpec,
			change:      func(*testing.T, *runner, string) {},
			wantWatched: true,
		},
		{
			name:  "watch dropped",
			setup: mkdirWithSpec,
			change: func(t *testing.T, r *runner, dir string) {
				require.NoError(t, r.fsw.Remove(dir))
			},
			wantRescan:  true,
			wantWatched: true,
		},
		{
			name:  "directory replaced",
			setup: mkdirWithSpec,
			change: func(t *testing.T, r *runner, dir string) {
				require.NoError(t, os.Rename(dir, dir+".old"))
				mkdirWithSpec(t, dir)
			},
			wantRescan:  true,
			wantWatched: true,
		},
		{
			name:        "directory appeared",
			setup:       func(*testing.T, string) {},
			change:      func(t *testing.T, _ *runner, dir string) { mkdirWithSpec(t, dir) },
			wantRescan:  true,
			wantWatched: true,
		},
		{
			name:       "directory vanished",
			setup:      mkdirWithSpec,
			change:     func(t *testing.T, _ *runner, dir string) { require.NoError(t, os.RemoveAll(dir)) },
			wantRescan: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "models.d")
			tc.setup(t, dir)
			w, err := New(Config{Dir: dir})
			require.NoError(t, err)
			r := newRunner(w)
			defer r.shutdown()
			require.NoError(t, r.arm())
			r.started = true

			tc.change(t, r, dir)
			r.recheck()
			assert.Equal(t, tc.wantRescan, r.hasPending && r.pending.Rescan, "rescan pending")
			require.NotNil(t, r.fsw)
			assert.Equal(t, tc.wantWatched, slices.Contains(r.fsw.WatchList(), dir), "directory watched")
		})
	}
}

// lockedBuffer lets the test read what Run's goroutine logs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestWatcher_Logs checks that routine changes stay below Info, so a quiet
// host has quiet logs, while the directory vanishing is reported.
func TestWatcher_Logs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		want   string // substring of the Info+ log; empty means no Info+ record
	}{
		{name: "file changes", change: func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "x.yaml"), "name: x\n")
			write(t, filepath.Join(dir, ".x.yaml.swp"), "swap")
			require.NoError(t, os.Remove(filepath.Join(dir, "x.yaml")))
		}},
		{name: "directory removed", change: func(t *testing.T, dir string) {
			require.NoError(t, os.RemoveAll(dir))
		}, want: "models directory disappeared"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "models.d")
			mkdirWithSpec(t, dir)
			var logs lockedBuffer
			w := startWatcher(t, Config{
				Dir:      dir,
				Settle:   50 * time.Millisecond,
				Relevant: specName,
				Logger:   slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
			})
			tc.change(t, dir)
			waitSignal(t, w.C(), 2*time.Second, "signal after the change", nil)
			if tc.want == "" {
				assert.Empty(t, logs.String())
			} else {
				assert.Contains(t, logs.String(), tc.want)
			}
		})
	}
}
