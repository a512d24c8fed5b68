package reconcile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/model-provisioner/model-provisioner/catalog"
	"github.com/model-provisioner/model-provisioner/desired"
	"github.com/model-provisioner/model-provisioner/fetch"
	filefetch "github.com/model-provisioner/model-provisioner/fetch/file"
	"github.com/model-provisioner/model-provisioner/handoff"
	"github.com/model-provisioner/model-provisioner/watch"
)

// agentEnv runs a real watcher on a real directory (inotify) feeding a real
// loop with the file fetcher: the agent minus its process and endpoints.
type agentEnv struct {
	dir, modelsDir, handoffDir string
	loop                       *Loop
	metrics                    *Metrics
	cat                        *catalog.Store
}

func startAgent(t *testing.T, modelsDir string) *agentEnv {
	t.Helper()
	dir := t.TempDir()
	if modelsDir == "" {
		modelsDir = filepath.Join(dir, "models.d")
		require.NoError(t, os.MkdirAll(modelsDir, 0o755))
	}
	e := &agentEnv{dir: dir, modelsDir: modelsDir, handoffDir: filepath.Join(dir, "handoff")}
	var err error
	e.cat, err = catalog.Open(filepath.Join(dir, "state"))
	require.NoError(t, err)
	e.metrics, err = NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	reg := fetch.NewRegistry()
	reg.Register(fetch.SchemeFile, filefetch.New())
	prov, err := NewProvisioner(ProvisionerConfig{Catalog: e.cat, Fetchers: reg, HandoffDir: e.handoffDir, Observer: e.metrics})
	require.NoError(t, err)
	e.loop, err = NewLoop(LoopConfig{ModelsDir: modelsDir, Provisioner: prov, Catalog: e.cat, Metrics: e.metrics, BackoffBase: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	require.NoError(t, err)
	w, err := watch.New(watch.Config{
		Dir:      modelsDir,
		Relevant: func(name string) bool { return desired.IsSpecFile(name) && !desired.Ignored(name) },
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.Run(gctx) })
	g.Go(func() error { return e.loop.Run(gctx, w.C()) })
	t.Cleanup(func() {
		cancel()
		require.NoError(t, g.Wait())
	})
	require.Eventually(t, e.loop.Ready, 5*time.Second, 5*time.Millisecond)
	return e
}

func (e *agentEnv) modelFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(e.dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// waitHandoff waits until the handoff of name points at path ("" = absent).
// No resync tick is configured, so only file events can get it there.
func (e *agentEnv) waitHandoff(t *testing.T, name, path string) {
	t.Helper()
	hp := filepath.Join(e.handoffDir, name+".json")
	var last string
	require.Eventually(t, func() bool {
		f, err := handoff.Read(hp)
		switch {
		case os.IsNotExist(err):
			last = "(absent)"
			return path == ""
		case err != nil:
			last = err.Error()
			return false
		}
		last = f.Model.Path
		return f.Model.Path == path
	}, 3*time.Second, 5*time.Millisecond, "handoff %s: want path %q, last saw %q", name, path, last)
}

func writeSpec(t *testing.T, path, ref string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte("name: m\nmodel_ref: "+ref+"\n"), 0o644))
}

func TestAgent_CreateModifyDelete(t *testing.T) {
	e := startAgent(t, "")
	a, b := e.modelFile(t, "a.bin", "a"), e.modelFile(t, "b.bin", "b")
	spec := filepath.Join(e.modelsDir, "m.yaml")

	writeSpec(t, spec, a)
	e.waitHandoff(t, "m", a)

	writeSpec(t, spec, b)
	e.waitHandoff(t, "m", b)

	require.NoError(t, os.Remove(spec))
	e.waitHandoff(t, "m", "")
	assert.FileExists(t, a)
	assert.FileExists(t, b)
}

func TestAgent_EditorSaves(t *testing.T) {
	e := startAgent(t, "")
	spec := filepath.Join(e.modelsDir, "m.yaml")
	writeSpec(t, spec, e.modelFile(t, "v0.bin", "0"))
	e.waitHandoff(t, "m", filepath.Join(e.dir, "v0.bin"))

	saves := map[string]func(t *testing.T, content string){
		// vim: swap file, original renamed to a backup, new file written.
		"vim": func(t *testing.T, content string) {
			swp := filepath.Join(e.modelsDir, ".m.yaml.swp")
			require.NoError(t, os.WriteFile(swp, []byte("swap"), 0o600))
			require.NoError(t, os.Rename(spec, spec+"~"))
			require.NoError(t, os.WriteFile(spec, []byte(content), 0o644))
			require.NoError(t, os.Remove(spec+"~"))
			require.NoError(t, os.Remove(swp))
		},
		// emacs: a lock symlink, then the new content renamed over the file.
		"emacs": func(t *testing.T, content string) {
			lock := filepath.Join(e.modelsDir, ".#m.yaml")
			require.NoError(t, os.Symlink("user@host.1234", lock))
			tmp := filepath.Join(e.modelsDir, "#m.yaml#")
			require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
			require.NoError(t, os.Rename(tmp, spec))
			require.NoError(t, os.Remove(lock))
		},
		// sed -i: a temp file with a random name renamed over the file.
		"sed -i": func(t *testing.T, content string) {
			tmp := filepath.Join(e.modelsDir, "sedAbC123")
			require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
			require.NoError(t, os.Rename(tmp, spec))
		},
		// Config management writing in several chunks.
		"chunked": func(t *testing.T, content string) {
			f, err := os.OpenFile(spec, os.O_WRONLY|os.O_TRUNC, 0o644)
			require.NoError(t, err)
			for i := 0; i < len(content); i += 7 {
				_, err := f.WriteString(content[i:min(i+7, len(content))])
				require.NoError(t, err)
				time.Sleep(5 * time.Millisecond)
			}
			require.NoError(t, f.Close())
		},
	}
	i := 0
	for name, save := range saves {
		i++
		t.Run(name, func(t *testing.T) {
			p := e.modelFile(t, fmt.Sprintf("v%d.bin", i), fmt.Sprint(i))
			save(t, "name: m\nmodel_ref: "+p+"\n")
			e.waitHandoff(t, "m", p)
		})
	}
}

func TestAgent_ConfigMapSwaps(t *testing.T) {
	e := startAgent(t, "")
	// The kubelet's layout: ..TIMESTAMP/ holds the keys, ..data points at
	// it, and each visible key is a symlink through ..data.
	var models [3]string
	for i := range models {
		models[i] = e.modelFile(t, fmt.Sprintf("cm%d.bin", i), fmt.Sprint(i))
	}
	publish := func(gen int) {
		ts := filepath.Join(e.modelsDir, fmt.Sprintf("..2026_11_26_00_00_%02d.%09d", gen%60, gen))
		require.NoError(t, os.Mkdir(ts, 0o755))
		writeSpec(t, filepath.Join(ts, "m.yaml"), models[gen%3])
		tmpLink := filepath.Join(e.modelsDir, "..data_tmp")
		require.NoError(t, os.Symlink(filepath.Base(ts), tmpLink))
		old, _ := os.Readlink(filepath.Join(e.modelsDir, "..data"))
		require.NoError(t, os.Rename(tmpLink, filepath.Join(e.modelsDir, "..data")))
		if old != "" {
			require.NoError(t, os.RemoveAll(filepath.Join(e.modelsDir, old)))
		}
	}
	publish(0)
	require.NoError(t, os.Symlink("..data/m.yaml", filepath.Join(e.modelsDir, "m.yaml")))
	e.waitHandoff(t, "m", models[0])
	const swaps = 100
	for gen := 1; gen <= swaps; gen++ {
		publish(gen)
	}
	e.waitHandoff(t, "m", models[swaps%3])
	assert.Empty(t, e.loop.Status().SpecErrors)
}

func TestAgent_DirRemovedAndRecreated(t *testing.T) {
	e := startAgent(t, "")
	a := e.modelFile(t, "a.bin", "a")
	writeSpec(t, filepath.Join(e.modelsDir, "m.yaml"), a)
	e.waitHandoff(t, "m", a)

	require.NoError(t, os.RemoveAll(e.modelsDir))
	time.Sleep(100 * time.Millisecond)
	e.waitHandoff(t, "m", a) // an absent directory retires nothing

	require.NoError(t, os.MkdirAll(e.modelsDir, 0o755))
	b := e.modelFile(t, "b.bin", "b")
	writeSpec(t, filepath.Join(e.modelsDir, "m.yaml"), b)
	e.waitHandoff(t, "m", b)
}

func TestAgent_MissingAtStart(t *testing.T) {
	parent := t.TempDir()
	models := filepath.Join(parent, "models.d")
	e := startAgent(t, models)
	require.NoError(t, os.MkdirAll(models, 0o755))
	a := e.modelFile(t, "a.bin", "a")
	writeSpec(t, filepath.Join(models, "m.yaml"), a)
	e.waitHandoff(t, "m", a)
}

func TestAgent_InvalidFileKeepsModel(t *testing.T) {
	e := startAgent(t, "")
	a := e.modelFile(t, "a.bin", "a")
	spec := filepath.Join(e.modelsDir, "m.yaml")
	writeSpec(t, spec, a)
	e.waitHandoff(t, "m", a)

	require.NoError(t, os.WriteFile(spec, []byte("name: m\nmodel_ref: "+a+"\nexpected_digest: {algo: md5, value: x}\n"), 0o644))
	require.Eventually(t, func() bool {
		for _, m := range e.loop.Status().Models {
			if m.Name == "m" && m.SpecError != "" {
				return m.Phase == PhaseActive
			}
		}
		return false
	}, 3*time.Second, 5*time.Millisecond)
	e.waitHandoff(t, "m", a)
}

func TestAgent_RapidWritesBoundedPasses(t *testing.T) {
	e := startAgent(t, "")
	spec := filepath.Join(e.modelsDir, "m.yaml")
	var files [4]string
	for i := range files {
		files[i] = e.modelFile(t, fmt.Sprintf("r%d.bin", i), fmt.Sprint(i))
	}
	before := testutil.ToFloat64(e.metrics.passes)
	const writes = 1000
	for i := range writes {
		writeSpec(t, spec, files[i%len(files)])
	}
	final := files[(writes-1)%len(files)]
	e.waitHandoff(t, "m", final)
	time.Sleep(300 * time.Millisecond) // let any trailing signal land
	passes := testutil.ToFloat64(e.metrics.passes) - before
	assert.LessOrEqual(t, passes, 20.0, "1000 writes must coalesce into a bounded number of passes")
	assert.GreaterOrEqual(t, passes, 1.0)
	e.waitHandoff(t, "m", final)
}
