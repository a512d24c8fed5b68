package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/catalog"
	"github.com/model-provisioner/model-provisioner/handoff"
	"github.com/model-provisioner/model-provisioner/internal/testserver"
	"github.com/model-provisioner/model-provisioner/reconcile"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

type agentProc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *testserver.Buffer
	done   chan error
}

func startAgent(t *testing.T, config string, addr string) *agentProc {
	t.Helper()
	return startAgentEnv(t, config, addr, nil)
}

func startAgentEnv(t *testing.T, config string, addr string, env []string) *agentProc {
	t.Helper()
	a := &agentProc{addr: addr, stderr: &testserver.Buffer{}, done: make(chan error, 1)}
	a.cmd = exec.Command(binary, "run", "--config", config)
	a.cmd.Stderr = a.stderr
	a.cmd.Env = append(append(os.Environ(), "NOTIFY_SOCKET="), env...)
	require.NoError(t, a.cmd.Start())
	go func() { a.done <- a.cmd.Wait() }()
	t.Cleanup(func() {
		if a.cmd.ProcessState == nil {
			_ = a.cmd.Process.Kill()
			<-a.done
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", a.stderr.String())
		}
	})
	return a
}

func (a *agentProc) get(path string) (int, string, error) {
	resp, err := http.Get("http://" + a.addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func (a *agentProc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-a.done:
		require.NoError(t, err, "agent exits cleanly on SIGTERM")
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not stop within 10s of SIGTERM")
	}
}

// TestRun_EndToEnd starts the real binary, drops a spec file, waits for the
// handoff, deletes the spec and waits for the handoff to go.
func TestRun_EndToEnd(t *testing.T) {
	dir := t.TempDir()
	models := filepath.Join(dir, "models.d")
	require.NoError(t, os.MkdirAll(models, 0o755))
	model := filepath.Join(dir, "m.bin")
	require.NoError(t, os.WriteFile(model, []byte("abc"), 0o644))
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("models_dir: models.d\nstate_dir: state\nhandoff_dir: handoff\nlisten: %s\nresync: '@every 1h'\n", addr)), 0o644))
	a := startAgent(t, cfg, addr)

	require.Eventually(t, func() bool {
		code, _, err := a.get("/readyz")
		return err == nil && code == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "agent becomes ready with an empty models.d")
	code, body, err := a.get("/healthz")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)

	// Write the spec the way config management does: temp file, rename.
	tmp := filepath.Join(models, ".m.yaml.tmp")
	require.NoError(t, os.WriteFile(tmp, []byte("name: m\nmodel_ref: ../m.bin\nexpected_digest: {algo: sha256, value: "+abcSHA256+"}\n"), 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(models, "m.yaml")))
	hp := filepath.Join(dir, "handoff", "m.json")
	require.Eventually(t, func() bool { _, err := os.Stat(hp); return err == nil }, 5*time.Second, 10*time.Millisecond, "handoff appears without any periodic tick")
	h, err := handoff.Read(hp)
	require.NoError(t, err)
	assert.Equal(t, model, h.Model.Path)
	assert.Equal(t, "pass", h.Metadata.Verification)

	// The handoff is written by the worker just before the loop records the
	// outcome; wait for the status to catch up.
	var rep reconcile.Report
	require.Eventually(t, func() bool {
		code, body, err := a.get("/status")
		if err != nil || code != http.StatusOK || json.Unmarshal([]byte(body), &rep) != nil {
			return false
		}
		return len(rep.Models) == 1 && rep.Models[0].Phase == reconcile.PhaseActive
	}, 5*time.Second, 10*time.Millisecond, "status shows the model active: %+v", rep)
	assert.True(t, rep.Ready)

	// /status and "catalog show" describe the model the same way.
	require.NotNil(t, rep.Models[0].Metadata)
	shown := runBinary(t, dir, nil, "catalog", "show", "m", "--config", cfg)
	require.Equal(t, 0, shown.code, shown.stderr)
	var entry catalog.Entry
	require.NoError(t, json.Unmarshal([]byte(shown.stdout), &entry))
	require.NotNil(t, entry.Metadata.Info)
	assert.Equal(t, *entry.Metadata.Info, *rep.Models[0].Metadata)

	code, body, err = a.get("/metrics")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `model_provisioner_models{phase="active"} 1`)
	assert.Contains(t, body, `model_provisioner_verifications_total{result="pass"} 1`)

	r := runBinary(t, dir, nil, "status", "--config", cfg)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "m  ")
	assert.Contains(t, r.stdout, "active")

	require.NoError(t, os.Remove(filepath.Join(models, "m.yaml")))
	require.Eventually(t, func() bool { _, err := os.Stat(hp); return os.IsNotExist(err) }, 5*time.Second, 10*time.Millisecond, "handoff removed when the spec goes")
	assert.FileExists(t, model)

	a.stop(t)
	logs := a.stderr.String()
	assert.Contains(t, logs, "model active")
	assert.Contains(t, logs, "model retired")
	assert.NotContains(t, logs, "level=ERROR")
}

func TestRun_SIGHUPRefusesInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "models.d"), 0o755))
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "agent.yaml")
	good := fmt.Sprintf("models_dir: models.d\nstate_dir: state\nlisten: %s\n", addr)
	require.NoError(t, os.WriteFile(cfg, []byte(good), 0o644))
	a := startAgent(t, cfg, addr)
	require.Eventually(t, func() bool { code, _, err := a.get("/readyz"); return err == nil && code == 200 }, 10*time.Second, 20*time.Millisecond)

	require.NoError(t, os.WriteFile(cfg, []byte(good+"concurrency: 0\n"), 0o644))
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(a.stderr.String(), "reload refused") }, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, a.stderr.String(), "concurrency")
	code, _, err := a.get("/healthz")
	require.NoError(t, err)
	assert.Equal(t, 200, code, "the agent keeps running on the old configuration")

	// A valid change is applied.
	require.NoError(t, os.WriteFile(cfg, []byte(good+"concurrency: 3\n"), 0o644))
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(a.stderr.String(), "configuration reloaded") }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { code, _, err := a.get("/readyz"); return err == nil && code == 200 }, 10*time.Second, 20*time.Millisecond)
	a.stop(t)
}

func TestValidate_CLI(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "good.yaml"), []byte("model_ref: /m/x.gguf\n"), 0o644))
	r := runBinary(t, dir, nil, "validate", "good.yaml")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "ok (1 model)")

	// An Ansible-style temp copy without an extension is validated too.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tmpXYZ"), []byte("model_ref: /m/x.gguf\nmodel_rf: 1\n"), 0o644))
	r = runBinary(t, dir, nil, "validate", "tmpXYZ")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "tmpXYZ:2")
	assert.Contains(t, r.stderr, "model_ref")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("model_ref: hf:org\n"), 0o644))
	r = runBinary(t, dir, nil, "validate", dir)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "bad.yaml")
	assert.Contains(t, r.stderr, "missing repository")

	r = runBinary(t, dir, nil, "validate", "../../examples/models.d")
	wd, _ := os.Getwd()
	r = runBinary(t, wd, nil, "validate", "../../examples/models.d")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "ok (2 models)")
}

func TestConfig_Load(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte("models_dir: m\nstate_dir: /var/tmp/s\nconcurrency: 4\n"), 0o644))
	t.Setenv("MODEL_PROVISIONER_STATE_DIR", "/srv/state")
	t.Setenv("MODEL_PROVISIONER_TOKEN", "not-config") // other variables are ignored
	cfg, err := loadConfig(cfgPath, true, map[string]any{"concurrency": "8"})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "m"), cfg.ModelsDir, "relative to the config file")
	assert.Equal(t, "/srv/state", cfg.StateDir, "environment overrides the file")
	assert.Equal(t, 8, cfg.Concurrency, "flags override the environment")
	assert.Equal(t, "@every 5m", cfg.Resync)
	assert.Equal(t, "/srv/state/handoff", cfg.Handoff())

	_, err = loadConfig(filepath.Join(dir, "missing.yaml"), true, nil)
	assert.Error(t, err, "an explicit config file must exist")
	_, err = loadConfig(filepath.Join(dir, "missing.yaml"), false, nil)
	assert.NoError(t, err, "the default path may be absent")

	require.NoError(t, os.WriteFile(cfgPath, []byte("modles_dir: m\n"), 0o644))
	_, err = loadConfig(cfgPath, true, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown key "modles_dir"`)

	for field, content := range map[string]string{
		"resync":      "resync: every five minutes\n",
		"concurrency": "concurrency: 0\n",
		"listen":      "listen: nonsense\n",
		"log_level":   "log_level: loud\n",
		"handoff_dir": "handoff_dir: /srv/state/\n", // the state directory, from the environment
	} {
		require.NoError(t, os.WriteFile(cfgPath, []byte(content), 0o644))
		_, err = loadConfig(cfgPath, true, nil)
		require.Error(t, err, field)
		var fe *FieldError
		require.ErrorAs(t, err, &fe, field)
		assert.Equal(t, field, fe.Field)
	}
}

// TestRun_StopsPromptlyWithAnIdleConnection holds a connection to the
// status listener open without sending a request: SIGTERM still stops the
// agent at once and cleanly.
func TestRun_StopsPromptlyWithAnIdleConnection(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "models.d"), 0o755))
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("models_dir: models.d\nstate_dir: state\nlisten: %s\n", addr)), 0o644))
	a := startAgent(t, cfg, addr)
	require.Eventually(t, func() bool {
		code, _, err := a.get("/readyz")
		return err == nil && code == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond)
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	start := time.Now()
	a.stop(t)
	assert.Less(t, time.Since(start), 3*time.Second, "an idle client does not hold the stop")
}
