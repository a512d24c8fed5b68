//go:build faults

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/catalog"
	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch/fetchtest"
	"github.com/model-provisioner/model-provisioner/internal/testserver/nginx"
	"github.com/model-provisioner/model-provisioner/reconcile"
)

// The disk-full suite runs the agent with its state directory on a small
// tmpfs and fills that filesystem while a model downloads. How the tmpfs is
// made depends on the privileges at hand:
//
//	tmpfs     root: mount it directly
//	unshare   otherwise: re-run this test inside "unshare -rm", where the
//	          test is root of its own user and mount namespaces
//	headroom  neither: no small filesystem can be made, so free_space_headroom
//	          is set to just under the free space, which makes the disk look
//	          full to the preflight; a mid-download ENOSPC cannot happen then
//
// FAULTS_DISKFULL_MODE forces one of them (to test the fallbacks as root).
const (
	diskFullModeEnv = "FAULTS_DISKFULL_MODE"
	// diskFullInNamespace marks the re-run inside unshare.
	diskFullInNamespace = "FAULTS_DISKFULL_IN_NAMESPACE"
	// diskFullServerEnv passes the nginx started outside the namespace to
	// the run inside: "URL CAFILE".
	diskFullServerEnv = "FAULTS_DISKFULL_NGINX"
	diskFullTmpfsSize = 64 << 20
	diskFullHugeSize  = 96 << 20
	diskFullMidSize   = 40 << 20
)

// diskFullFiles serves huge.bin and mid.bin over HTTPS.
type diskFullFiles struct {
	url, CAFile string
}

func (f diskFullFiles) FileURL(name string) string { return f.url + "/" + name }

// diskFullServer starts nginx serving the suite's files, or, inside the
// namespace (where nginx cannot switch to its worker user), returns the one
// the outer run started.
func diskFullServer(t *testing.T) diskFullFiles {
	if v := os.Getenv(diskFullServerEnv); v != "" {
		u, ca, _ := strings.Cut(v, " ")
		return diskFullFiles{url: u, CAFile: ca}
	}
	root, err := os.MkdirTemp("", "nginx-root-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	require.NoError(t, os.WriteFile(filepath.Join(root, "huge.bin"), nil, 0o644))
	require.NoError(t, os.Truncate(filepath.Join(root, "huge.bin"), diskFullHugeSize))
	require.NoError(t, os.WriteFile(filepath.Join(root, "mid.bin"), fetchtest.Data(diskFullMidSize), 0o644))
	// 4 MB/s: the mid model takes about ten seconds, time enough to fill
	// the disk under it.
	srv := nginx.Start(t, nginx.Options{Root: root, TLS: true, RateLimit: "4m"})
	return diskFullFiles{url: srv.URL, CAFile: srv.CAFile}
}

func TestFaultDiskFull(t *testing.T) {
	const suite = "disk-full"
	begin := time.Now()
	mode := diskFullMode()
	if mode == "unshare" && os.Getenv(diskFullInNamespace) == "" {
		diskFullInUnshare(t, suite, begin)
		return
	}
	var tried, failed int
	var detail []string
	trial := func(name string, ok bool, format string, args ...any) {
		tried++
		if !ok {
			failed++
		}
		detail = append(detail, fmt.Sprintf("%s=%s", name, map[bool]string{true: "ok", false: "FAILED"}[ok]))
		if format != "" {
			detail = append(detail, fmt.Sprintf("("+format+")", args...))
		}
	}
	defer func() {
		faultSummary(t, suite, tried, failed, fmt.Sprintf("mode=%s %s time=%s", mode, strings.Join(detail, " "), time.Since(begin).Round(100*time.Millisecond)))
	}()

	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	require.NoError(t, os.MkdirAll(state, 0o755))
	if mode != "headroom" {
		mountTmpfs(t, state, diskFullTmpfsSize)
	}

	// The models: a local file already Active before anything goes wrong,
	// one larger than the filesystem (huge.bin), and one that fits but is
	// still downloading when the disk fills (mid.bin).
	srv := diskFullServer(t)
	midDigest := fetchtest.DigestOf(fetchtest.Data(diskFullMidSize))

	local := fetchtest.Data(1 << 20)
	localPath := filepath.Join(dir, "data", "local.bin")
	require.NoError(t, os.MkdirAll(filepath.Dir(localPath), 0o755))
	require.NoError(t, os.WriteFile(localPath, local, 0o644))
	models := filepath.Join(dir, "models.d")
	require.NoError(t, os.MkdirAll(models, 0o755))
	writeSpec(t, models, "local.yaml", fmt.Sprintf("model_ref: %s\nexpected_digest: {algo: sha256, value: %s}\n", localPath, fetchtest.DigestOf(local).Value))

	headroom := int64(4 << 20)
	if mode == "headroom" {
		// Leave the preflight 32 MiB: less than either remote model.
		headroom = freeBytes(t, state) - 32<<20
	}
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "agent.yaml")
	cfgText := fmt.Sprintf("models_dir: models.d\nstate_dir: %s\nlisten: %s\nresync: '@every 1h'\ndownload_parts: 1\nstall_timeout: 5s\nfree_space_headroom: %%d\n", state, addr)
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, cfgText, headroom), 0o644))
	a := startAgentEnv(t, cfg, addr, []string{"SSL_CERT_FILE=" + srv.CAFile})

	st, _, ok := waitModel(a, "local", 15*time.Second, isPhase(reconcile.PhaseActive))
	require.True(t, ok, "the local model becomes active: %+v", st)
	localHandoff := filepath.Join(state, "handoff", "local.json")
	handoffBefore, err := os.ReadFile(localHandoff)
	require.NoError(t, err)
	localEntry := indexEntry(t, state, "file:"+localPath)
	require.Equal(t, catalog.Active, localEntry.Lifecycle)
	othersIntact := func(when string) bool {
		ok := true
		if got, err := os.ReadFile(localHandoff); err != nil || !bytes.Equal(got, handoffBefore) {
			ok = false
			t.Errorf("%s: the local model's handoff changed or is unreadable (%v)", when, err)
		}
		if e := indexEntry(t, state, "file:"+localPath); !e.Equal(localEntry) {
			ok = false
			t.Errorf("%s: the local model's catalog entry changed:\nbefore %+v\nafter  %+v", when, localEntry, e)
		}
		if st, ok2 := modelNow(a, "local"); !ok2 || st.Phase != reconcile.PhaseActive {
			ok = false
			t.Errorf("%s: the local model is not active: %+v", when, st)
		}
		return ok
	}

	// (a) Preflight: a model larger than the free space is refused before a
	// byte is written, with the model, the sizes and what to do.
	free := freeBytes(t, state)
	writeSpec(t, models, "huge.yaml", "model_ref: "+srv.FileURL("huge.bin")+"\n")
	st, took, ok := waitModel(a, "huge", 15*time.Second, isPhase(reconcile.PhaseFailed))
	msg := st.LastError
	okA := assert.True(t, ok, "the huge model fails: %+v", st) &&
		assert.Less(t, took, 10*time.Second, "refused within seconds") &&
		assert.Contains(t, msg, "huge", "names the model") &&
		assert.Contains(t, msg, fmt.Sprint(diskFullHugeSize), "names the size") &&
		assert.InDelta(t, free, freeIn(msg), 8<<20, "names the free space (%d bytes when the spec was written)", free) &&
		assert.Contains(t, msg, "state_dir", "says what to do")
	okA = assert.Empty(t, dirNamesOf(t, filepath.Join(state, content.IngestDir)), "a refused download leaves no ingest") && okA
	okA = assert.NoDirExists(t, filepath.Join(state, content.ModelsDir, "huge")) && okA
	okA = othersIntact("after the preflight refusal") && okA
	trial("preflight", okA, "refused in %s: %s", took.Round(time.Millisecond), msg)
	require.NoError(t, os.Remove(filepath.Join(models, "huge.yaml")))
	_, _, ok = waitModel(a, "huge", 10*time.Second, isPhase(reconcile.PhaseRetired))
	require.True(t, ok, "the huge model is withdrawn with its spec file")

	if mode == "headroom" {
		// (c) without a small filesystem: "freeing space" is lowering the
		// headroom the preflight keeps; the agent picks it up on SIGHUP and
		// the failed model becomes active by itself.
		writeSpec(t, models, "mid.yaml", fmt.Sprintf("model_ref: %s\nexpected_digest: {algo: sha256, value: %s}\n", srv.FileURL("mid.bin"), midDigest.Value))
		st, _, ok = waitModel(a, "mid", 15*time.Second, isPhase(reconcile.PhaseFailed))
		require.True(t, ok, "the mid model is refused by the preflight: %+v", st)
		require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, cfgText, 4<<20), 0o644))
		freed := time.Now()
		require.NoError(t, a.cmd.Process.Signal(syscall.SIGHUP))
		st, _, ok = waitModel(a, "mid", 120*time.Second, isPhase(reconcile.PhaseActive))
		okC := assert.True(t, ok, "the mid model recovers: %+v", st)
		okC = okC && assert.Equal(t, midDigest.Value, hashFile(t, filepath.Join(state, content.ModelsDir, "mid", "mid.bin")))
		trial("recovery", okC, "active %s after the headroom was lowered; no mid-download ENOSPC without a small filesystem", time.Since(freed).Round(100*time.Millisecond))
		a.stop(t)
		return
	}

	// (b) The disk fills while the mid model downloads: it fails at once
	// with ENOSPC named, nothing partial reaches blobs/ or models/, and
	// everything else carries on.
	writeSpec(t, models, "mid.yaml", fmt.Sprintf("model_ref: %s\nexpected_digest: {algo: sha256, value: %s}\n", srv.FileURL("mid.bin"), midDigest.Value))
	deadline := time.Now().Add(60 * time.Second)
	for fetchtest.IngestProgress(state) < 0.15 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.GreaterOrEqual(t, fetchtest.IngestProgress(state), 0.15, "the mid model starts downloading")
	ballast := filepath.Join(state, "ballast")
	filled, err := fillFilesystem(ballast)
	require.NoError(t, err)
	full := time.Now()
	t.Logf("ballast of %d bytes fills the state filesystem; %d bytes free", filled, freeBytes(t, state))

	var firstErr string
	st, took, ok = waitModel(a, "mid", 20*time.Second, func(s reconcile.ModelStatus) bool {
		if s.Phase == reconcile.PhaseFailed && firstErr == "" {
			firstErr = s.LastError
		}
		return s.Phase == reconcile.PhaseFailed
	})
	okB := assert.True(t, ok, "the mid model fails when the disk fills: %+v", st) &&
		assert.Less(t, took, 10*time.Second, "it fails fast, not after retries")
	okB = assert.Contains(t, firstErr, "mid", "the reason names the model") && okB
	okB = assert.Contains(t, firstErr, "no space left on device", "the reason names ENOSPC") && okB
	// A write that fails with ENOSPC is explained by content.Store.SpaceError,
	// which fetch/download must apply to its writes into the ingest.
	okB = assert.Contains(t, strings.ToLower(firstErr), "free space", "the reason says to free space") && okB

	// While the disk stays full: a resync re-checks the local model, /status
	// answers, and the failed model keeps failing with a reason.
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGHUP))
	var statusOK, statusBad int
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		code, body, err := a.get("/status")
		var rep reconcile.Report
		if err == nil && code == http.StatusOK && json.Unmarshal([]byte(body), &rep) == nil {
			statusOK++
			if s, ok := modelIn(rep, "mid"); ok && s.Phase != reconcile.PhaseFailed && s.Phase != reconcile.PhaseFetching {
				t.Errorf("while the disk is full the mid model is %s", s.Phase)
				okB = false
			}
		} else {
			statusBad++
		}
	}
	okB = assert.Zero(t, statusBad, "/status answers 200 throughout (%d good)", statusOK) && okB
	// A retry may be under way; it ends failed again.
	stFull, _, stillFailed := waitModel(a, "mid", 10*time.Second, isPhase(reconcile.PhaseFailed))
	okB = assert.True(t, stillFailed, "the mid model stays failed while the disk is full: %+v", stFull) && okB
	okB = assert.NotEmpty(t, stFull.LastError, "/status shows why") && okB
	okB = assert.NoFileExists(t, filepath.Join(state, content.ModelsDir, "mid", "mid.bin"), "nothing at the final path") && okB
	okB = assert.NoFileExists(t, filepath.Join(state, content.BlobsDir, "sha256", midDigest.Value), "no blob of the unfinished download") && okB
	blobsAreWhole(t, state)
	okB = othersIntact("while the disk is full") && okB
	okB = assert.Nil(t, a.cmd.ProcessState, "the agent is alive") && okB
	trial("enospc", okB, "failed %s after the disk filled: %s | then: %s", took.Round(time.Millisecond), firstErr, stFull.LastError)

	// (c) Space comes back: the model resumes and becomes active without
	// anyone touching the agent.
	require.NoError(t, os.Remove(ballast))
	freed := time.Now()
	st, took, ok = waitModel(a, "mid", 120*time.Second, isPhase(reconcile.PhaseActive))
	okC := assert.True(t, ok, "the mid model recovers by itself: %+v", st)
	if okC {
		okC = assert.Equal(t, midDigest.Value, hashFile(t, filepath.Join(state, content.ModelsDir, "mid", "mid.bin"))) && okC
		_, err := os.Stat(filepath.Join(state, "handoff", "mid.json"))
		okC = assert.NoError(t, err, "the mid model's handoff is written") && okC
	}
	okC = assert.Empty(t, dirNamesOf(t, filepath.Join(state, content.IngestDir)), "the ingest is gone after commit") && okC
	blobsAreWhole(t, state)
	okC = othersIntact("after recovery") && okC
	trial("recovery", okC, "active %s after the ballast went (disk full for %s; %d attempts)", took.Round(100*time.Millisecond), freed.Sub(full).Round(100*time.Millisecond), stFull.Attempts)
	a.stop(t)
}

// diskFullMode chooses how to get a small filesystem.
func diskFullMode() string {
	if m := os.Getenv(diskFullModeEnv); m != "" {
		return m
	}
	if os.Getenv(diskFullInNamespace) != "" {
		return "unshare"
	}
	if os.Geteuid() == 0 {
		return "tmpfs"
	}
	if _, err := exec.LookPath("unshare"); err == nil && exec.Command("unshare", "-rm", "true").Run() == nil {
		return "unshare"
	}
	return "headroom"
}

// diskFullInUnshare re-runs TestFaultDiskFull as root of new user and mount
// namespaces, where it may mount a tmpfs. The inner run prints the summary
// line; this one only passes its output on.
func diskFullInUnshare(t *testing.T, suite string, begin time.Time) {
	srv := diskFullServer(t)
	cmd := exec.Command("unshare", "-rm", os.Args[0], "-test.run", "^TestFaultDiskFull$", "-test.v", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), diskFullInNamespace+"=1", diskFullServerEnv+"="+srv.url+" "+srv.CAFile)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	os.Stdout.Write(out.Bytes())
	if err != nil {
		t.Errorf("the run inside unshare -rm failed: %v", err)
	}
	if !strings.Contains(out.String(), "FAULT-SUMMARY suite="+suite) {
		faultSummary(t, suite, 0, 1, fmt.Sprintf("mode=unshare the inner run printed no summary (%v) time=%s", err, time.Since(begin).Round(100*time.Millisecond)))
	}
}

// mountTmpfs mounts a tmpfs of size bytes on dir until the test ends. The
// unmount is registered before anything that uses dir, so it runs after
// the agent and servers of the test have stopped.
func mountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0755", size), "tmpfs", dir).CombinedOutput()
	require.NoError(t, err, "mount tmpfs: %s", out)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s; detaching it", dir, err, out)
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
}

// fillFilesystem writes path until the filesystem holding it has no room
// left, and returns how many bytes it wrote.
func fillFilesystem(path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	for _, chunk := range []int{1 << 20, 4 << 10, 1} {
		buf := make([]byte, chunk)
		for {
			w, err := f.Write(buf)
			n += int64(w)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// freeIn returns the free bytes a preflight refusal reports, -1 if none.
func freeIn(msg string) float64 {
	m := regexp.MustCompile(`(\d+) bytes (\([^)]*\) )?(are )?free`).FindStringSubmatch(msg)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return float64(n)
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(dir, &st))
	return int64(st.Bavail) * st.Bsize
}

func writeSpec(t *testing.T, dir, name, text string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	require.NoError(t, os.WriteFile(tmp, []byte(text), 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, name)))
}

func dirNamesOf(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// indexEntry reads the entry id from the state directory's index, which
// must parse.
func indexEntry(t *testing.T, state, id string) catalog.Entry {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(state, catalog.IndexFile))
	require.NoError(t, err)
	var idx catalog.Index
	require.NoError(t, json.Unmarshal(raw, &idx), "index.json parses")
	return idx.Entries[id]
}

// statusReport reads the agent's /status.
func statusReport(a *agentProc) (reconcile.Report, error) {
	code, body, err := a.get("/status")
	if err != nil {
		return reconcile.Report{}, err
	}
	if code != http.StatusOK {
		return reconcile.Report{}, fmt.Errorf("/status answered %d: %s", code, body)
	}
	var rep reconcile.Report
	err = json.Unmarshal([]byte(body), &rep)
	return rep, err
}

func modelIn(rep reconcile.Report, name string) (reconcile.ModelStatus, bool) {
	for _, m := range rep.Models {
		if m.Name == name {
			return m, true
		}
	}
	return reconcile.ModelStatus{}, false
}

func modelNow(a *agentProc, name string) (reconcile.ModelStatus, bool) {
	rep, err := statusReport(a)
	if err != nil {
		return reconcile.ModelStatus{}, false
	}
	return modelIn(rep, name)
}

func isPhase(p reconcile.Phase) func(reconcile.ModelStatus) bool {
	return func(s reconcile.ModelStatus) bool { return s.Phase == p }
}

// waitModel polls /status until the model's status satisfies cond, and
// returns it with the time that took.
func waitModel(a *agentProc, name string, timeout time.Duration, cond func(reconcile.ModelStatus) bool) (reconcile.ModelStatus, time.Duration, bool) {
	start := time.Now()
	var last reconcile.ModelStatus
	for time.Since(start) < timeout {
		if s, ok := modelNow(a, name); ok {
			last = s
			if cond(s) {
				return s, time.Since(start), true
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return last, time.Since(start), false
}
