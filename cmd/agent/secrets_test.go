package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/fetch/fetchtest"
	"github.com/model-provisioner/model-provisioner/internal/testserver/hubtest"
	"github.com/model-provisioner/model-provisioner/internal/testserver/nginx"
)

// TestSecrets_NeverLeak plants a Hub token (as a systemd credential), a URL
// password and signed-URL parameters, runs the agent and the one-shot
// ensure on models that succeed and models that fail, and greps every log
// line, /status, /metrics, the catalog, the handoff files and the provenance
// log for them.
func TestSecrets_NeverLeak(t *testing.T) {
	const (
		token    = "hf_plantedTokenValue0123456789abcdefXYZ"
		password = "pl4ntedPassw0rdValue"
		sig      = "5ec7e75ec7e75ec7e75ec7e7deadbeefcafe"
		cred     = "AKIAPLANTEDCREDENTIAL"
		secTok   = "PlantedSessionTokenValue"
	)
	hub := hubtest.New(t)
	hub.AddRepo("org", "private", "main", map[string][]byte{"m.gguf": fetchtest.Data(2 << 20)}, hubtest.Private(token))

	root, err := os.MkdirTemp("", "nginx-root-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	require.NoError(t, os.WriteFile(filepath.Join(root, "w.gguf"), fetchtest.Data(1<<20), 0o644))
	srv := nginx.Start(t, nginx.Options{Root: root, TLS: true})
	u, err := url.Parse(srv.FileURL("w.gguf"))
	require.NoError(t, err)
	u.User = url.UserPassword("ops", password)
	u.RawQuery = "X-Amz-Signature=" + sig + "&X-Amz-Credential=" + cred + "&X-Amz-Security-Token=" + secTok
	signed := u.String()
	missing := strings.Replace(signed, "w.gguf", "missing.gguf", 1)

	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	require.NoError(t, os.MkdirAll(creds, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(creds, "hf_token"), []byte(token+"\n"), 0o600))
	ca := filepath.Join(dir, "ca.pem")
	caHub, err := os.ReadFile(hub.CAFile)
	require.NoError(t, err)
	caNginx, err := os.ReadFile(srv.CAFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(ca, append(caHub, caNginx...), 0o644))

	models := filepath.Join(dir, "models.d")
	require.NoError(t, os.MkdirAll(models, 0o755))
	specs := map[string]string{
		"hub.yaml":         "model_ref: hf:org/private/m.gguf@main\n",
		"hub-missing.yaml": "model_ref: hf:org/private/nope.gguf@main\n",
		"signed.yaml":      fmt.Sprintf("model_ref: %q\n", signed),
		"gone.yaml":        fmt.Sprintf("model_ref: %q\n", missing),
	}
	for name, body := range specs {
		require.NoError(t, os.WriteFile(filepath.Join(models, name), []byte(body), 0o644))
	}
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("models_dir: models.d\nstate_dir: state\nlisten: %s\nlog_level: debug\nlog_format: json\n", addr)), 0o644))

	env := []string{"CREDENTIALS_DIRECTORY=" + creds, "HF_ENDPOINT=" + hub.URL, "SSL_CERT_FILE=" + ca, "HF_TOKEN=", "HOME=" + dir}
	a := startAgentEnv(t, cfg, addr, env)
	var status string
	require.Eventually(t, func() bool {
		code, body, err := a.get("/status")
		if err != nil || code != http.StatusOK {
			return false
		}
		status = body
		return strings.Count(body, `"phase": "active"`) == 2 && strings.Count(body, `"phase": "failed"`) == 2
	}, 20*time.Second, 50*time.Millisecond, "two models active and two failed; last status: %s", status)
	_, metrics, err := a.get("/metrics")
	require.NoError(t, err)
	a.stop(t)

	// The one-shot path too, with its error output.
	state := filepath.Join(dir, "state")
	oneShot := []result{
		runBinary(t, dir, append(env, "MODEL_PROVISIONER_STATE_DIR="+state), "ensure", "hf:org/private/m.gguf", "--log-level", "debug"),
		runBinary(t, dir, append(env, "MODEL_PROVISIONER_STATE_DIR="+state), "ensure", missing, "--log-level", "debug"),
		runBinary(t, dir, append(env, "MODEL_PROVISIONER_STATE_DIR="+state), "ensure", signed, "--log-level", "debug"),
	}
	assert.Equal(t, 0, oneShot[0].code, oneShot[0].stderr)
	assert.Equal(t, 1, oneShot[1].code)
	assert.Contains(t, oneShot[1].stderr, "404")

	haystacks := map[string]string{"agent log": a.stderr.String(), "/status": status, "/metrics": metrics}
	for i, r := range oneShot {
		haystacks[fmt.Sprintf("ensure %d stdout", i)] = r.stdout
		haystacks[fmt.Sprintf("ensure %d stderr", i)] = r.stderr
	}
	require.NoError(t, filepath.Walk(state, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || fi.Size() > 1<<20 {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil {
			haystacks[p] = string(data)
		}
		return err
	}))
	require.Contains(t, haystacks, filepath.Join(state, "index.json"))
	require.Contains(t, haystacks, filepath.Join(state, "handoff", "provenance.jsonl"))
	secrets := []string{token, password, sig, cred, secTok, url.QueryEscape(token)}
	for _, r := range hub.CDNRequests() {
		cu, err := url.Parse(r.URL)
		require.NoError(t, err)
		if s := cu.Query().Get("X-Amz-Signature"); s != "" {
			secrets = append(secrets, s)
		}
	}
	checked := 0
	for where, text := range haystacks {
		for _, s := range secrets {
			assert.NotContains(t, text, s, "secret found in %s", where)
			checked++
		}
	}
	t.Logf("checked %d secrets in %d places", len(secrets), len(haystacks))
	assert.Contains(t, a.stderr.String(), "REDACTED", "redaction did happen somewhere in the logs")
}
