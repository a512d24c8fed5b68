//go:build faults

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/atomicfile"
	"github.com/model-provisioner/model-provisioner/catalog"
	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch/fetchtest"
	"github.com/model-provisioner/model-provisioner/handoff"
	"github.com/model-provisioner/model-provisioner/internal/testserver"
	"github.com/model-provisioner/model-provisioner/internal/testserver/nginx"
	"github.com/model-provisioner/model-provisioner/verify"
)

// killEnvInt reads a positive integer knob of the kill suites from the
// environment, so a longer run needs no code change.
func killEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err, "%s", name)
	require.Positive(t, n, "%s", name)
	return n
}

// killStart starts "run" like startAgentEnv, but prints no log when the
// test fails: the kill loop starts hundreds of agents, and only the log of
// the one that went wrong is worth reading.
func killStart(t *testing.T, cfg, addr string) *agentProc {
	t.Helper()
	a := &agentProc{addr: addr, stderr: &testserver.Buffer{}, done: make(chan error, 1)}
	a.cmd = exec.Command(binary, "run", "--config", cfg)
	a.cmd.Stderr = a.stderr
	a.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=")
	require.NoError(t, a.cmd.Start())
	go func() { a.done <- a.cmd.Wait() }()
	// Should the test stop early; a process already waited for is not
	// signalled again.
	t.Cleanup(func() { _ = a.cmd.Process.Kill() })
	return a
}

// kill ends the process with SIGKILL, as the kernel's OOM killer or a
// power cut would: no deferred cleanup runs.
func (a *agentProc) kill() {
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
}

// killReady waits for /readyz to answer 200.
func killReady(a *agentProc, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		select {
		case err := <-a.done:
			a.done <- err
			return fmt.Errorf("agent exited before it was ready: %v", err)
		default:
		}
		if code, _, err := a.get("/readyz"); err == nil && code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent not ready within %v", within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killTemps lists the atomic-write temp files under the given directories,
// as paths relative to the test directory.
func killTemps(base string, dirs ...string) map[string]bool {
	out := map[string]bool{}
	for _, d := range dirs {
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() && atomicfile.IsTemp(e.Name()) {
				rel, _ := filepath.Rel(base, p)
				out[rel] = true
			}
			return nil
		})
	}
	return out
}

func killSorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestFaultKillWrites SIGKILLs a running agent hundreds of times while it
// rewrites a model's catalog entry and handoff file: the spec keeps
// switching between two local GGUF files and two engines, and each kill
// lands at a random point (fixed seed) up to 40 ms after the agent started
// writing. After every kill, index.json and every handoff file must be one
// whole version the test declared, never a prefix or a mix, and every
// finished provenance line must parse. Every fourth restart, and the last,
// must reach readiness with no temp file left by the killed writers, and
// converge on the spec in force.
//
// FAULTS_KILLS (default 300) and FAULTS_SEED (default 1) change the number
// of kills and the random sequence.
func TestFaultKillWrites(t *testing.T) {
	kills := killEnvInt(t, "FAULTS_KILLS", 300)
	seed := uint64(killEnvInt(t, "FAULTS_SEED", 1))
	const (
		checkEvery = 4
		maxDelay   = 40 * time.Millisecond
	)
	rng := rand.New(rand.NewPCG(seed, 0x6b696c6c))

	dir := t.TempDir()
	models := filepath.Join(dir, "models.d")
	state := filepath.Join(dir, "state")
	handoffs := filepath.Join(dir, "handoff")
	for _, d := range []string{models, state, handoffs} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}

	// Two real GGUF files, so the llamacpp form is a valid handoff for both.
	type model struct {
		path, digest string
		size         int64
	}
	var files []model
	for i, src := range []string{"tinyllama-q4.gguf", "tinyqwen-q8.gguf"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "models", src))
		require.NoError(t, err)
		p := filepath.Join(dir, fmt.Sprintf("%c.gguf", 'a'+i))
		require.NoError(t, os.WriteFile(p, raw, 0o644))
		files = append(files, model{path: p, digest: fetchtest.DigestOf(raw).Value, size: int64(len(raw))})
	}
	engines := []string{"llamacpp", "generic"}
	type version struct {
		file   int
		engine string
	}
	var versions []version
	for f := range files {
		for _, e := range engines {
			versions = append(versions, version{f, e})
		}
	}
	specPath := filepath.Join(models, "m.yaml")
	hp := filepath.Join(handoffs, "m.json")
	// declare switches the spec the way config management does: a hidden
	// temp file renamed over the old one.
	declare := func(v version) {
		f := files[v.file]
		tmp := filepath.Join(models, ".m.yaml.tmp")
		spec := fmt.Sprintf("name: m\nmodel_ref: %s\nexpected_digest: {algo: sha256, value: %s}\nengine: %s\n", f.path, f.digest, v.engine)
		require.NoError(t, os.WriteFile(tmp, []byte(spec), 0o644))
		require.NoError(t, os.Rename(tmp, specPath))
	}

	addr := freeAddr(t)
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("models_dir: %s\nstate_dir: %s\nhandoff_dir: %s\nlisten: %s\nresync: '@every 1h'\nlog_level: info\n", models, state, handoffs, addr)), 0o644))

	// The exact handoff bytes of each declared version, as an agent that
	// is not interrupted writes them.
	want := make([][]byte, len(versions))
	ids := map[string]model{}
	learn := startAgentEnv(t, cfg, addr, nil)
	require.NoError(t, killReady(learn, 15*time.Second))
	for i, v := range versions {
		declare(v)
		var h handoff.File
		require.Eventually(t, func() bool {
			var err error
			h, err = handoff.Read(hp)
			return err == nil && h.Engine == v.engine && h.Model.Path == files[v.file].path
		}, 10*time.Second, 5*time.Millisecond, "handoff of version %d", i)
		raw, err := os.ReadFile(hp)
		require.NoError(t, err)
		want[i] = raw
		require.Equal(t, "sha256:"+files[v.file].digest, h.Metadata.Digest)
		ids[h.Model.ID] = files[v.file]
	}
	learn.stop(t)
	require.Len(t, ids, len(files))
	cur := len(versions) - 1
	versionOf := func(raw []byte) int {
		for i, w := range want {
			if bytes.Equal(raw, w) {
				return i
			}
		}
		return -1
	}

	// whole checks what a reader finds on disk right after a kill.
	tornTails, lastTail := 0, 0
	whole := func() []string {
		var bad []string
		raw, err := os.ReadFile(filepath.Join(state, catalog.IndexFile))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			bad = append(bad, err.Error())
		default:
			var idx catalog.Index
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&idx); err != nil {
				bad = append(bad, fmt.Sprintf("index.json does not parse (%d bytes): %v", len(raw), err))
				break
			}
			if dec.More() || !bytes.HasSuffix(raw, []byte("}\n")) {
				bad = append(bad, "index.json has bytes after the document, or lacks its final newline")
			}
			if idx.Version != catalog.IndexVersion {
				bad = append(bad, fmt.Sprintf("index.json version %d", idx.Version))
			}
			for id, e := range idx.Entries {
				f, ok := ids[id]
				switch {
				case !ok:
					bad = append(bad, "index entry of an undeclared model "+id)
				case e.ID != id || e.Name != "m" || e.Source != "file" || e.LocalPath != f.path || e.SizeBytes != f.size ||
					e.Digest.String() != "sha256:"+f.digest || e.Verification.Result != verify.Pass ||
					(e.Lifecycle != catalog.Active && e.Lifecycle != catalog.Retired) || !slices.Contains(engines, e.Engine) ||
					e.SpecFile != specPath || e.HandoffPath != hp || len(e.Aliases) != 0 || e.Fingerprint.IsZero() ||
					e.Metadata.Format != "gguf" || e.CreatedMs == 0:
					line, _ := json.Marshal(e)
					bad = append(bad, "index entry is not a declared state: "+string(line))
				}
			}
		}
		if aside, _ := filepath.Glob(filepath.Join(state, catalog.IndexFile+".corrupt-*")); len(aside) > 0 {
			bad = append(bad, fmt.Sprintf("an agent found index.json corrupt at start: %v", aside))
		}
		entries, err := os.ReadDir(handoffs)
		if err != nil {
			return append(bad, err.Error())
		}
		for _, e := range entries {
			p := filepath.Join(handoffs, e.Name())
			switch {
			case e.Name() == handoff.ProvenanceFile:
				// A line counts once its newline is written: a killed
				// appender may leave an unfinished last line, which the
				// next append cuts away. Every finished line must parse.
				raw, err := os.ReadFile(p)
				if err != nil {
					bad = append(bad, err.Error())
					continue
				}
				if i := bytes.LastIndexByte(raw, '\n'); i+1 < len(raw) {
					if len(raw) != lastTail {
						tornTails++
						lastTail = len(raw)
					}
					raw = raw[:i+1]
				}
				var off int
				for n, line := range bytes.SplitAfter(raw, []byte("\n")) {
					var rec handoff.Record
					if len(line) > 0 && (json.Unmarshal(line, &rec) != nil || rec.ModelID == "") {
						bad = append(bad, fmt.Sprintf("%s line %d (bytes %d-%d) does not parse: %q", handoff.ProvenanceFile, n+1, off, off+len(line), line))
					}
					off += len(line)
				}
			case e.Name() == handoff.LockFile || atomicfile.IsTemp(e.Name()):
			case e.Name() != "m.json":
				bad = append(bad, "unexpected file in the handoff directory: "+e.Name())
			default:
				raw, err := os.ReadFile(p)
				if err != nil {
					bad = append(bad, err.Error())
				} else if versionOf(raw) < 0 {
					bad = append(bad, fmt.Sprintf("m.json is not a declared version (%d bytes):\n%s", len(raw), raw))
				}
			}
		}
		return bad
	}

	w, err := fsnotify.NewWatcher()
	require.NoError(t, err)
	defer w.Close()
	require.NoError(t, w.Add(state))
	require.NoError(t, w.Add(handoffs))
	drain := func() {
		for {
			select {
			case <-w.Events:
			case <-w.Errors:
			default:
				return
			}
		}
	}
	// writing waits until agent a creates a temp file in the state or
	// handoff directory: it has started an atomic write. It returns false
	// when a is ready and the handoff already shows the declared version:
	// a spec switched back to what the files say may leave nothing to
	// write.
	writing := func(a *agentProc, within time.Duration) bool {
		timeout := time.After(within)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case ev := <-w.Events:
				if ev.Has(fsnotify.Create) && atomicfile.IsTemp(filepath.Base(ev.Name)) {
					return true
				}
			case <-w.Errors:
			case <-tick.C:
				raw, _ := os.ReadFile(hp)
				if versionOf(raw) != cur {
					continue
				}
				if code, _, err := a.get("/readyz"); err == nil && code == http.StatusOK {
					return false
				}
			case <-timeout:
				return false
			}
		}
	}

	// restart starts an agent after a kill and checks that, once ready, it
	// removed what the killed writers left and converged on the spec.
	restart := func() (*agentProc, []string) {
		left := killTemps(dir, state, handoffs)
		a := killStart(t, cfg, addr)
		if err := killReady(a, 15*time.Second); err != nil {
			return a, []string{err.Error()}
		}
		var bad []string
		// A temp that was there before the start is a killed writer's; a
		// new one is this agent's write in flight, given a moment to end.
		deadline := time.Now().Add(2 * time.Second)
		for {
			now := killTemps(dir, state, handoffs)
			var stale, inflight []string
			for _, p := range killSorted(now) {
				if left[p] {
					stale = append(stale, p)
				} else {
					inflight = append(inflight, p)
				}
			}
			if len(stale) > 0 {
				bad = append(bad, fmt.Sprintf("ready with temp files of killed writers still there: %v", stale))
				break
			}
			if len(inflight) == 0 {
				break
			}
			if time.Now().After(deadline) {
				bad = append(bad, fmt.Sprintf("temp files stay after readiness: %v", inflight))
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		deadline = time.Now().Add(10 * time.Second)
		for {
			raw, _ := os.ReadFile(hp)
			if versionOf(raw) == cur {
				break
			}
			if time.Now().After(deadline) {
				bad = append(bad, fmt.Sprintf("the handoff is not version %d of the spec in force 10 s after readiness:\n%s", cur, raw))
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		return a, bad
	}

	tried, failed, midWrite, noWrite, checked := 0, 0, 0, 0, 0
	start := time.Now()
	defer func() {
		t.Logf("%d kills in %v: %d left a temp file (killed mid-write), %d an unfinished provenance line, %d had nothing to write, %d restarts checked",
			tried, time.Since(start).Round(time.Millisecond), midWrite, tornTails, noWrite, checked)
		faultSummary(t, "kill-writes", tried, failed, fmt.Sprintf(
			"SIGKILL 0-40 ms into handoff/index rewrites (seed %d): %d kills left a temp file, %d an unfinished provenance line; index.json, handoff files and finished provenance lines checked after every kill; %d restarts checked for temp files left and the spec in force",
			seed, midWrite, tornTails, checked))
	}()
	report := func(i int, a *agentProc, what string, bad []string) {
		failed++
		t.Errorf("kill %d (seed %d): %s:\n%s", i, seed, what, strings.Join(bad, "\n"))
		t.Logf("log of the agent:\n%s", a.stderr.String())
	}
	for i := 0; i < kills && failed < 5; i++ {
		drain()
		var a *agentProc
		if i%checkEvery == 0 {
			var bad []string
			a, bad = restart()
			checked++
			if len(bad) > 0 {
				report(i, a, "restart after a kill", bad)
			}
		} else {
			a = killStart(t, cfg, addr)
		}
		// Any other version: when the agent had not applied the last
		// one, this may switch back to what the files already say.
		next := rng.IntN(len(versions) - 1)
		if next >= cur {
			next++
		}
		cur = next
		declare(versions[cur])
		before := killTemps(dir, state, handoffs)
		// Skewed towards the first milliseconds, where one atomic write
		// is in progress, while still reaching the last write of a pass.
		u := rng.Float64()
		delay := time.Duration(u * u * float64(maxDelay))
		if !writing(a, 5*time.Second) {
			noWrite++
		}
		time.Sleep(delay)
		a.kill()
		tried++
		after := killTemps(dir, state, handoffs)
		for p := range after {
			if !before[p] {
				midWrite++
				break
			}
		}
		if bad := whole(); len(bad) > 0 {
			report(i, a, fmt.Sprintf("after SIGKILL %v into the writes", delay), bad)
		}
	}
	a, bad := restart()
	checked++
	if len(bad) > 0 {
		report(tried, a, "final restart", bad)
	}
	if bad := whole(); len(bad) > 0 {
		report(tried, a, "final state", bad)
	}
	a.stop(t)
}

// killBlobs checks that every blob, and every file of the model tree,
// holds the bytes its name promises. A file is hashed again only when its
// identity (device, inode, size, mtime, ctime) changed since it was last
// hashed, so that polling every few milliseconds stays cheap while a
// rename into place or a write in place is always seen.
type killBlobs struct {
	state, model, digest string
	seen                 map[string]string // path -> identity last hashed
}

func (k *killBlobs) check(t *testing.T) []string {
	t.Helper()
	var bad []string
	look := func(p, wantSum string) {
		fi, err := os.Stat(p)
		if err != nil {
			return // gone since the directory was read
		}
		st := fi.Sys().(*syscall.Stat_t)
		id := fmt.Sprintf("%v/%d.%d", verify.FingerprintOf(fi), st.Ctim.Sec, st.Ctim.Nsec)
		if k.seen[p] == id {
			return
		}
		sum, err := killHash(p)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			bad = append(bad, err.Error())
			return
		}
		if sum != wantSum {
			bad = append(bad, fmt.Sprintf("%s holds bytes with sha256 %s, want %s", p, sum, wantSum))
			return
		}
		k.seen[p] = id
	}
	blobs := filepath.Join(k.state, content.BlobsDir, "sha256")
	entries, _ := os.ReadDir(blobs)
	for _, e := range entries {
		look(filepath.Join(blobs, e.Name()), e.Name())
	}
	look(k.model, k.digest)
	return bad
}

func killHash(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// TestFaultKillDownloads downloads a 200 MiB model from nginx over TLS
// with the real ensure command and SIGKILLs it at 0% (as soon as its
// ingest exists), 10%, 50%, 90% and 100% (99% of the bytes received or
// checkpointed, or the blob committed), starting it again each time. Every
// 10 ms while a process runs, and after each kill, every blob must hash to
// its name and the model tree must hold only verified bytes. The last run
// must end with the right bytes, and the server must have sent less than
// 1.6 times the file in all.
func TestFaultKillDownloads(t *testing.T) {
	const size = 200 << 20
	root, err := os.MkdirTemp("", "nginx-root-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	data := fetchtest.Data(size)
	digest := fetchtest.DigestOf(data)
	require.NoError(t, os.WriteFile(filepath.Join(root, "big.gguf"), data, 0o644))
	data = nil
	// Four parts at 12 MB/s each: about four seconds for the whole file,
	// slow enough to stop at a chosen point.
	srv := nginx.Start(t, nginx.Options{Root: root, TLS: true, RateLimit: "12m"})
	state := filepath.Join(t.TempDir(), "state")
	env := []string{"SSL_CERT_FILE=" + srv.CAFile, "MODEL_PROVISIONER_STATE_DIR=" + state}
	args := []string{"ensure", srv.FileURL("big.gguf"), "--digest", digest.String(), "--name", "big"}
	blob := filepath.Join(state, content.BlobsDir, "sha256", digest.Value)
	obs := &killBlobs{state: state, model: filepath.Join(state, "models", "big", "big.gguf"), digest: digest.Value, seen: map[string]string{}}

	tried, failed := 0, 0
	var at []string
	ratio := 0.0
	defer func() {
		faultSummary(t, "kill-downloads", tried, failed, fmt.Sprintf(
			"200 MiB over TLS from nginx, SIGKILL at %s then a full run; blobs and model tree hashed at every observation; server sent %.2fx the size",
			strings.Join(at, " "), ratio))
	}()
	observe := func(when string) {
		tried++
		if bad := obs.check(t); len(bad) > 0 {
			failed++
			t.Errorf("%s: %s", when, strings.Join(bad, "; "))
		}
	}
	// received is the fraction of the file written into the ingest so
	// far: the data file is sparse, so its allocated blocks count the
	// bytes that arrived, checkpointed or not.
	received := func() float64 {
		matches, _ := filepath.Glob(filepath.Join(state, content.IngestDir, "*", "data"))
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil {
				return float64(fi.Sys().(*syscall.Stat_t).Blocks*512) / size
			}
		}
		return 0
	}
	ingestExists := func() bool {
		entries, _ := os.ReadDir(filepath.Join(state, content.IngestDir))
		return len(entries) > 0
	}
	blobExists := func() bool { _, err := os.Stat(blob); return err == nil }
	points := []struct {
		label   string
		reached func() bool
	}{
		{"0%", ingestExists},
		{"10%", func() bool { return received() >= 0.10 }},
		{"50%", func() bool { return received() >= 0.50 }},
		{"90%", func() bool { return received() >= 0.90 }},
		{"100%", func() bool { return received() >= 0.99 || fetchtest.IngestProgress(state) >= 0.99 || blobExists() }},
	}
	run := func() (*exec.Cmd, chan error, *testserver.Buffer) {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), env...)
		stderr := &testserver.Buffer{}
		cmd.Stderr = stderr
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		return cmd, done, stderr
	}
	for _, pt := range points {
		cmd, done, stderr := run()
		// The kill point is looked for every 2 ms, the blobs every 10 ms.
		deadline := time.Now().Add(60 * time.Second)
		exited := false
		for n := 0; !pt.reached() && !exited && time.Now().Before(deadline); n++ {
			if n%5 == 0 {
				observe("while running towards " + pt.label)
			}
			select {
			case err := <-done:
				// Finishing first is no fault (the last percent can go by
				// between two looks); failing is.
				exited = true
				if err != nil {
					failed++
					t.Errorf("ensure failed before the %s kill point: %v\n%s", pt.label, err, stderr.String())
				}
			case <-time.After(2 * time.Millisecond):
			}
		}
		if !exited {
			require.True(t, pt.reached(), "the download did not reach %s within 60 s:\n%s", pt.label, stderr.String())
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
		}
		where := fmt.Sprintf("%.1f%%", received()*100)
		switch {
		case exited:
			where = "completed before the kill"
		case blobExists():
			where = "committed"
		}
		at = append(at, pt.label+"→"+where)
		t.Logf("killed with %s received, %.1f%% checkpointed (target %s)", where, fetchtest.IngestProgress(state)*100, pt.label)
		observe("after the kill at " + pt.label)
	}

	_, done, stderr := run()
	var exitErr error
	for finished := false; !finished; {
		observe("during the last run")
		select {
		case exitErr = <-done:
			finished = true
		case <-time.After(10 * time.Millisecond):
		}
	}
	require.NoError(t, exitErr, "the last run completes:\n%s", stderr.String())
	observe("after the last run")
	sum, err := killHash(blob)
	require.NoError(t, err)
	if sum != digest.Value {
		failed++
		t.Errorf("the blob has sha256 %s, want %s", sum, digest.Value)
	}
	h, err := handoff.Read(filepath.Join(state, "handoff", "big.json"))
	require.NoError(t, err)
	require.Equal(t, obs.model, h.Model.Path)
	entries, err := os.ReadDir(filepath.Join(state, content.IngestDir))
	require.NoError(t, err)
	require.Empty(t, entries, "the ingest is gone after commit")

	// A killed client's request is logged once nginx notices the closed
	// connection: every request (six runs, four parts each at most, and
	// probes) has ended by now, the last run having completed.
	sent := srv.BytesSent("/big.gguf")
	ratio = float64(sent) / size
	t.Logf("server sent %d bytes for a %d-byte file (%.2fx)", sent, size, ratio)
	if sent >= size*16/10 {
		failed++
		t.Errorf("the server sent %.2fx the file: resumes re-downloaded what was already on disk", ratio)
	}
}
