//go:build faults

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/catalog"
	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch/fetchtest"
	"github.com/model-provisioner/model-provisioner/handoff"
	"github.com/model-provisioner/model-provisioner/internal/testserver/nginx"
	"github.com/model-provisioner/model-provisioner/reconcile"
)

// TestFaultCorruptState damages the agent's state under it: a truncated
// index.json found at start, a garbled index.json while it runs, a handoff
// file deleted by hand, and a downloaded blob whose bytes were changed, both
// with a new mtime and with the old mtime put back. Each time the agent
// must report the damage, never hand out a wrong path, and repair what it
// can by itself: verify again, rewrite the handoff, quarantine the bad blob
// and download the model again.
func TestFaultCorruptState(t *testing.T) {
	root, err := os.MkdirTemp("", "nginx-root-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	remote := fetchtest.Data(8<<20 + 3)
	remoteDigest := fetchtest.DigestOf(remote)
	require.NoError(t, os.WriteFile(filepath.Join(root, "r.gguf"), remote, 0o644))
	srv := nginx.Start(t, nginx.Options{Root: root, TLS: true})

	dir := t.TempDir()
	local := filepath.Join(dir, "l.bin")
	localData := fetchtest.Data(1<<20 + 1)
	require.NoError(t, os.WriteFile(local, localData, 0o644))
	localDigest := fetchtest.DigestOf(localData)
	models := filepath.Join(dir, "models.d")
	require.NoError(t, os.MkdirAll(models, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(models, "local.yaml"), []byte(fmt.Sprintf("model_ref: %s\nexpected_digest: {algo: sha256, value: %s}\n", local, localDigest.Value)), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(models, "remote.yaml"), []byte(fmt.Sprintf("model_ref: %s\nexpected_digest: {algo: sha256, value: %s}\n", srv.FileURL("r.gguf"), remoteDigest.Value)), 0o644))
	state, handoffs := filepath.Join(dir, "state"), filepath.Join(dir, "handoff")
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "agent.yaml")
	// A re-hash every 2 s catches bytes changed with their mtime put back.
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("models_dir: %s\nstate_dir: %s\nhandoff_dir: %s\nlisten: %s\nresync: \"@every 1h\"\nreverify: \"@every 2s\"\nlog_level: info\nlog_format: json\n", models, state, handoffs, addr)), 0o644))
	env := []string{"SSL_CERT_FILE=" + srv.CAFile}
	want := map[string]string{"local": localDigest.Value, "remote": remoteDigest.Value}

	tried, failed := 0, 0
	trial := func(name string, fn func(t *testing.T)) {
		tried++
		if !t.Run(name, fn) {
			failed++
		}
	}
	// consistent checks what the agent hands out: every handoff that exists
	// names a file whose bytes have the model's digest.
	consistent := func(t *testing.T) {
		t.Helper()
		for name, sum := range want {
			h, err := handoff.Read(filepath.Join(handoffs, name+".json"))
			if os.IsNotExist(err) {
				continue
			}
			require.NoError(t, err, "handoff of %s parses", name)
			assert.Equal(t, "sha256:"+sum, h.Metadata.Digest, "handoff of %s", name)
			assert.Equal(t, sum, hashFile(t, h.Model.Path), "the handoff of %s names its verified bytes", name)
		}
	}
	healthy := func(t *testing.T, a *agentProc) {
		t.Helper()
		require.Eventually(t, func() bool {
			code, body, err := a.get("/status")
			if err != nil || code != http.StatusOK {
				return false
			}
			var r reconcile.Report
			if json.Unmarshal([]byte(body), &r) != nil {
				return false
			}
			active := 0
			for _, m := range r.Models {
				if m.Phase == reconcile.PhaseActive {
					active++
				}
			}
			return active == len(want)
		}, 30*time.Second, 20*time.Millisecond, "both models Active again")
		for name := range want {
			require.Eventually(t, func() bool {
				_, err := os.Stat(filepath.Join(handoffs, name+".json"))
				return err == nil
			}, 10*time.Second, 10*time.Millisecond, "handoff of %s written", name)
		}
		consistent(t)
		cat, err := catalog.Open(state)
		require.NoError(t, err, "the index parses")
		entries, err := cat.List()
		require.NoError(t, err)
		active := 0
		for _, e := range entries {
			if e.Lifecycle == catalog.Active {
				active++
			}
		}
		assert.Equal(t, len(want), active, "both models registered Active")
	}
	logHas := func(a *agentProc, s string) bool { return strings.Contains(a.stderr.String(), s) }

	parent := t
	a := startAgentEnv(t, cfg, addr, env)
	healthy(t, a)
	a.stop(t)

	trial("truncated index at start", func(t *testing.T) {
		idx := filepath.Join(state, catalog.IndexFile)
		raw, err := os.ReadFile(idx)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(idx, raw[:len(raw)/2], 0o644))
		a = startAgentEnv(parent, cfg, addr, env) // lives on after this trial
		healthy(t, a)
		aside, _ := filepath.Glob(idx + ".corrupt-*")
		assert.NotEmpty(t, aside, "the corrupt index is kept aside")
		assert.True(t, logHas(a, "catalog index was corrupt"), "the damage is reported")
	})

	trial("garbled index while running", func(t *testing.T) {
		idx := filepath.Join(state, catalog.IndexFile)
		require.NoError(t, os.WriteFile(idx, []byte("\x00\x01{\"version\":1,garbage"), 0o644))
		require.NoError(t, a.cmd.Process.Signal(syscall.SIGHUP))
		require.Eventually(t, func() bool {
			_, err := catalog.Open(state)
			return err == nil
		}, 10*time.Second, 20*time.Millisecond, "the index is repaired")
		healthy(t, a)
		aside, _ := filepath.Glob(idx + ".corrupt-*")
		assert.Len(t, aside, 2)
	})

	trial("handoff deleted by hand", func(t *testing.T) {
		require.NoError(t, os.Remove(filepath.Join(handoffs, "local.json")))
		require.NoError(t, a.cmd.Process.Signal(syscall.SIGHUP))
		healthy(t, a)
	})

	blob := filepath.Join(state, content.BlobsDir, "sha256", remoteDigest.Value)
	tamper := func(t *testing.T, keepMtime bool) {
		fi, err := os.Stat(blob)
		require.NoError(t, err)
		f, err := os.OpenFile(blob, os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.WriteAt([]byte("tampered"), 4096)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		if keepMtime {
			require.NoError(t, os.Chtimes(blob, fi.ModTime(), fi.ModTime()))
		}
		quarantined := filepath.Join(state, content.QuarantineDir, remoteDigest.Value)
		_ = os.Remove(quarantined)
		if !keepMtime {
			require.NoError(t, a.cmd.Process.Signal(syscall.SIGHUP))
		}
		// From the moment the agent looks, it never names the bad bytes:
		// the blob goes to quarantine and the handoff goes until the
		// model is downloaded again.
		require.Eventually(t, func() bool {
			_, err := os.Stat(quarantined)
			return err == nil
		}, 15*time.Second, 10*time.Millisecond, "the tampered blob is quarantined")
		assert.NotEqual(t, remoteDigest.Value, hashFile(t, quarantined))
		healthy(t, a)
		assert.Equal(t, remoteDigest.Value, hashFile(t, blob), "the blob was downloaded again")
		blobsAreWhole(t, state)
	}
	trial("blob bytes changed", func(t *testing.T) { tamper(t, false) })
	trial("blob bytes changed, mtime restored", func(t *testing.T) { tamper(t, true) })

	code, _, err := a.get("/healthz")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	a.stop(t)
	faultSummary(t, "corrupt-state", tried, failed, "truncated index at start, garbled index while running, deleted handoff, tampered blob (new mtime, old mtime)")
}
