//go:build faults

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch/fetchtest"
	"github.com/model-provisioner/model-provisioner/internal/testserver/hubtest"
	"github.com/model-provisioner/model-provisioner/internal/testserver/registry"
	"github.com/model-provisioner/model-provisioner/internal/testserver/s3srv"
	"github.com/model-provisioner/model-provisioner/reconcile"
)

// Bounds every hostile input must stay within.
const (
	hostileRejectWithin = 5 * time.Second
	hostileMaxHWM       = 200 << 20
)

// hostileTrial is one hostile input: set-up drops it (spec files, planted
// symlinks), and the agent must reject it either as a spec error of file
// or as a failure of model, with every string of want in the message.
type hostileTrial struct {
	name    string
	setup   func(t *testing.T)
	file    string // spec file rejected at parse time
	model   string // model rejected when it is fetched
	want    []string
	restore func(t *testing.T) // undoes what set-up planted in the state directory
}

// TestFaultHostileSpecs feeds the real agent hostile spec files and hostile
// remote file names next to one good model, one at a time, and checks that
// each is rejected quickly, with bounded memory and a message naming it,
// while the good model, a canary directory outside the state directory and
// the agent itself are unaffected.
func TestFaultHostileSpecs(t *testing.T) {
	const suite = "hostile-specs"
	begin := time.Now()
	var tried, failed int
	var detail []string
	defer func() {
		faultSummary(t, suite, tried, failed, strings.Join(detail, " ")+" time="+time.Since(begin).Round(100*time.Millisecond).String())
	}()

	dir := t.TempDir()
	models := filepath.Join(dir, "models.d")
	state := filepath.Join(dir, "state")
	canary := filepath.Join(dir, "canary")
	require.NoError(t, os.MkdirAll(models, 0o755))
	makeCanary(t, canary)
	canaryBefore := snapshotTree(t, canary)

	good := fetchtest.Data(1 << 20)
	goodPath := filepath.Join(dir, "data", "good.bin")
	require.NoError(t, os.MkdirAll(filepath.Dir(goodPath), 0o755))
	require.NoError(t, os.WriteFile(goodPath, good, 0o644))
	goodDigest := fetchtest.DigestOf(good).Value
	writeSpec(t, models, "good.yaml", fmt.Sprintf("model_ref: %s\nexpected_digest: {algo: sha256, value: %s}\n", goodPath, goodDigest))

	hfEndpoint, hubCA := hostileHub(t)
	s3Endpoint, s3Env, s3Mode := hostileS3(t)
	reg := registry.Start(t, registry.Options{})
	reg.Push(t, "hostile/dotdot", "v1", registry.File{Name: "../evil.gguf", Data: fetchtest.Data(3001)})
	reg.Push(t, "hostile/absolute", "v1", registry.File{Name: "/etc/evil.gguf", Data: fetchtest.Data(3002)})

	addr := freeAddr(t)
	cfg := filepath.Join(dir, "agent.yaml")
	// A short retention lets a configuration reload prune the models the
	// trials retire, which runs the content store's garbage collection.
	cfgText := fmt.Sprintf("models_dir: models.d\nstate_dir: state\nlisten: %s\nresync: '@every 1h'\ns3_endpoint: %s\nretired_retention: 1ms\n", addr, s3Endpoint)
	require.NoError(t, os.WriteFile(cfg, []byte(cfgText), 0o644))
	env := append([]string{"HF_ENDPOINT=" + hfEndpoint, "SSL_CERT_FILE=" + hubCA, "HF_TOKEN="}, s3Env...)
	a := startAgentEnv(t, cfg, addr, env)

	st, _, ok := waitModel(a, "good", 15*time.Second, isPhase(reconcile.PhaseActive))
	require.True(t, ok, "the good model becomes active: %+v", st)
	goodHandoff := filepath.Join(state, "handoff", "good.json")
	handoffBefore, err := os.ReadFile(goodHandoff)
	require.NoError(t, err)
	otherPath := filepath.Join(dir, "data", "other.bin")
	require.NoError(t, os.WriteFile(otherPath, fetchtest.Data(4096), 0o644))

	spec := func(name, text string) func(t *testing.T) {
		return func(t *testing.T) { writeSpec(t, models, name, text) }
	}
	file := func(name string) string { return filepath.Join(models, name) }
	// plant replaces the state directory's rel with a symlink to target,
	// keeping what was there aside; unplant puts it back.
	plant := func(rel, target string) func(t *testing.T) {
		return func(t *testing.T) {
			p := filepath.Join(state, rel)
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			if _, err := os.Lstat(p); err == nil {
				require.NoError(t, os.Rename(p, p+".aside"))
			}
			require.NoError(t, os.Symlink(target, p))
		}
	}
	unplant := func(rel, specFile, model string) func(t *testing.T) {
		return func(t *testing.T) {
			require.NoError(t, os.Remove(filepath.Join(models, specFile)))
			waitModel(a, model, 10*time.Second, isPhase(reconcile.PhaseRetired))
			p := filepath.Join(state, rel)
			require.NoError(t, os.Remove(p))
			if _, err := os.Lstat(p + ".aside"); err == nil {
				require.NoError(t, os.Rename(p+".aside", p))
			}
		}
	}
	both := func(fns ...func(t *testing.T)) func(t *testing.T) {
		return func(t *testing.T) {
			for _, fn := range fns {
				fn(t)
			}
		}
	}
	ref := func(r string) string { return "model_ref: " + r + "\n" }

	trials := []hostileTrial{
		{name: "alias-bomb", setup: spec("bomb.yaml", billionLaughs()), file: file("bomb.yaml"), want: []string{"bomb.yaml", "aliases"}},
		{name: "spec-100MB", setup: func(t *testing.T) { writeBigSpec(t, file("big.yaml"), 100<<20) }, file: file("big.yaml"), want: []string{"big.yaml", "too large"}},
		{name: "nesting-100k", setup: spec("deep.yaml", "model_ref: "+strings.Repeat("[", 100_000)+"\n"), file: file("deep.yaml"), want: []string{"deep.yaml"}},
		{name: "nesting-60k", setup: spec("deep60k.yaml", "model_ref: "+strings.Repeat("[", 60_000)+"\n"), file: file("deep60k.yaml"), want: []string{"deep60k.yaml", "syntax"}},
		{name: "invalid-utf8", setup: spec("utf8.yaml", "model_ref: /srv/m\xff\xfe.gguf\n"), file: file("utf8.yaml"), want: []string{"utf8.yaml", "UTF-8"}},
		{name: "invalid-utf8-file-name", setup: spec("bad\xffname.yaml", "model_ref: /srv/m.gguf\n"), file: file("bad\xffname.yaml"), want: []string{"name"}},
		{name: "nul-byte-raw", setup: spec("nulraw.yaml", "model_ref: /srv/m\x00.gguf\n"), file: file("nulraw.yaml"), want: []string{"nulraw.yaml", "NUL"}},
		{name: "nul-in-model-ref", setup: spec("nulref.yaml", "model_ref: \"/srv/m\\0.gguf\"\n"), file: file("nulref.yaml"), want: []string{"nulref.yaml", "model_ref", "control character"}},
		{name: "nul-in-handoff-path", setup: spec("nulhandoff.yaml", "model_ref: /srv/m.gguf\nhandoff: {path: \"/run/h\\0.json\"}\n"), file: file("nulhandoff.yaml"), want: []string{"nulhandoff.yaml", "handoff.path", "control character"}},
		{name: "digest-63", setup: spec("d63.yaml", fmt.Sprintf("model_ref: %s\nexpected_digest: {algo: sha256, value: %s}\n", goodPath, goodDigest[:63])), file: file("d63.yaml"), want: []string{"d63.yaml", "63 characters"}},
		{name: "digest-65", setup: spec("d65.yaml", fmt.Sprintf("model_ref: %s\nexpected_digest: {algo: sha256, value: %s0}\n", goodPath, goodDigest)), file: file("d65.yaml"), want: []string{"d65.yaml", "65 characters"}},
		{name: "digest-unknown-algo", setup: spec("md5.yaml", fmt.Sprintf("model_ref: %s\nexpected_digest: {algo: md5, value: %s}\n", goodPath, goodDigest[:32])), file: file("md5.yaml"), want: []string{"md5.yaml", "unknown digest algorithm", "md5"}},

		// A spec may name its handoff file anywhere; it must not take over
		// another model's handoff, nor overwrite a file that is not a
		// handoff file.
		{
			name: "handoff-path-of-other-model", setup: spec("squat.yaml", fmt.Sprintf("model_ref: %s\nhandoff: {path: %s}\n", otherPath, goodHandoff)),
			file: file("squat.yaml"), model: "squat", want: []string{"squat", goodHandoff},
			restore: func(t *testing.T) {
				// Withdrawing the spec must leave the good model's handoff as
				// it was; put it back if not, so the next trials are judged
				// alone.
				require.NoError(t, os.Remove(file("squat.yaml")))
				waitModel(a, "squat", 10*time.Second, isPhase(reconcile.PhaseRetired))
				if !assert.Eventually(t, func() bool {
					got, err := os.ReadFile(goodHandoff)
					return err == nil && bytes.Equal(got, handoffBefore)
				}, 5*time.Second, 20*time.Millisecond, "the good model's handoff is back once the spec is withdrawn") {
					require.NoError(t, os.WriteFile(goodHandoff, handoffBefore, 0o644))
				}
			},
		},
		{
			name: "handoff-path-onto-foreign-file", setup: spec("foreign.yaml", fmt.Sprintf("model_ref: %s\nhandoff: {path: %s}\n", otherPath, filepath.Join(canary, "passwd"))),
			file: file("foreign.yaml"), model: "foreign", want: []string{"foreign", filepath.Join(canary, "passwd")},
			restore: func(t *testing.T) {
				// Withdrawing the spec must not delete the file either.
				require.NoError(t, os.Remove(file("foreign.yaml")))
				waitModel(a, "foreign", 10*time.Second, isPhase(reconcile.PhaseRetired))
				if !assert.Equal(t, canaryBefore, snapshotTree(t, canary), "the canary is unchanged after the spec is withdrawn") {
					require.NoError(t, os.RemoveAll(canary))
					makeCanary(t, canary)
				}
			},
		},

		{name: "hf-dotdot", setup: spec("hfdotdot.yaml", ref("hf:hostile/dotdot@main")), model: "hfdotdot", want: []string{"hfdotdot", "../evil.bin", "unsafe"}},
		{name: "hf-absolute", setup: spec("hfabs.yaml", ref("hf:hostile/absolute@main")), model: "hfabs", want: []string{"hfabs", "/etc/evil.bin", "unsafe"}},
		{name: "s3-dotdot", setup: spec("s3dotdot.yaml", ref("s3://models/pre-dotdot/")), model: "s3dotdot", want: []string{"s3dotdot", "pre-dotdot/../escape.bin", "unsafe"}},
		{name: "s3-absolute", setup: spec("s3abs.yaml", ref("s3://models/pre-abs/")), model: "s3abs", want: []string{"s3abs", "pre-abs//etc/escape.bin", "unsafe"}},
		{name: "oci-dotdot", setup: spec("ocidotdot.yaml", ref("oci://"+reg.Host+"/hostile/dotdot:v1")), model: "ocidotdot", want: []string{"ocidotdot", "../evil.gguf", "unsafe"}},
		{name: "oci-absolute", setup: spec("ociabs.yaml", ref("oci://"+reg.Host+"/hostile/absolute:v1")), model: "ociabs", want: []string{"ociabs", "/etc/evil.gguf", "unsafe"}},

		{
			name:  "symlink-model-dir",
			setup: both(plant("models/planted", canary), spec("planted.yaml", ref("hf:hostile/planted/model.bin@main"))),
			model: "planted", want: []string{"planted", "symlink"},
			restore: unplant("models/planted", "planted.yaml", "planted"),
		},
		{
			name:  "symlink-model-subdir",
			setup: both(plant("models/nested/sub", filepath.Join(canary, "sub")), spec("nested.yaml", ref("hf:hostile/nested@main"))),
			model: "nested", want: []string{"nested", "symlink"},
			restore: unplant("models/nested/sub", "nested.yaml", "nested"),
		},
		{
			name:  "symlink-ingest-dir",
			setup: both(plant(content.IngestDir, canary), spec("viaingest.yaml", ref("hf:hostile/viaingest/model.bin@main"))),
			model: "viaingest", want: []string{"viaingest", "symlink"},
			restore: unplant(content.IngestDir, "viaingest.yaml", "viaingest"),
		},
		{
			// A reload starts a new reconcile loop, whose first pass prunes
			// the models retired longer than retired_retention ago and
			// garbage-collects blobs/sha256: with that directory planted as
			// a symlink, the collection must not delete the canary's files.
			name: "symlink-blobs-dir-gc",
			setup: both(func(t *testing.T) {
				// A downloaded model, retired: what the pruning removes.
				writeSpec(t, models, "victim.yaml", ref("hf:hostile/victim/model.bin@main"))
				st, _, ok := waitModel(a, "victim", 15*time.Second, isPhase(reconcile.PhaseActive))
				require.True(t, ok, "a downloaded model to retire: %+v", st)
				require.NoError(t, os.Remove(filepath.Join(models, "victim.yaml")))
				st, _, ok = waitModel(a, "victim", 10*time.Second, isPhase(reconcile.PhaseRetired))
				require.True(t, ok, "retired: %+v", st)
			}, plant(filepath.Join(content.BlobsDir, "sha256"), canary), func(t *testing.T) {
				require.NoError(t, os.WriteFile(cfg, []byte(cfgText+"concurrency: 3\n"), 0o644))
				require.NoError(t, a.cmd.Process.Signal(syscall.SIGHUP))
				require.Eventually(t, func() bool {
					logs := a.stderr.String()
					return strings.Contains(logs, "configuration reloaded") && (strings.Contains(logs, "pruned retired models") || strings.Contains(logs, "could not prune"))
				}, 10*time.Second, 20*time.Millisecond, "the reloaded agent prunes")
			}, spec("viagc.yaml", ref("hf:hostile/viagc/model.bin@main"))),
			model: "viagc", want: []string{"viagc", "symlink"},
			restore: unplant(filepath.Join(content.BlobsDir, "sha256"), "viagc.yaml", "viagc"),
		},
		{
			name:  "symlink-blobs-dir",
			setup: both(plant(filepath.Join(content.BlobsDir, "sha256"), canary), spec("viablobs.yaml", ref("hf:hostile/viablobs/model.bin@main"))),
			model: "viablobs", want: []string{"viablobs", "symlink"},
			restore: unplant(filepath.Join(content.BlobsDir, "sha256"), "viablobs.yaml", "viablobs"),
		},
	}

	var maxHWM int64
	var slowest time.Duration
	var failedNames []string
	for _, tc := range trials {
		ran := false
		ok := t.Run(tc.name, func(t *testing.T) {
			ran = true
			start := time.Now()
			tc.setup(t)
			msg, asSpecError, took, found := waitRejection(a, tc.file, tc.model, hostileRejectWithin)
			if assert.True(t, found, "rejected within %s", hostileRejectWithin) {
				for _, w := range tc.want {
					assert.Contains(t, msg, w, "the message names the input and the problem")
				}
			}
			slowest = max(slowest, took)
			t.Logf("rejected in %s: %s", took.Round(time.Millisecond), msg)
			if asSpecError {
				rep, err := statusReport(a)
				if assert.NoError(t, err) {
					for _, m := range rep.Models {
						assert.NotEqual(t, tc.file, m.SpecFile, "a rejected file declares no model")
					}
				}
			}
			hwm := peakRSS(t, a.cmd.Process.Pid)
			maxHWM = max(maxHWM, hwm)
			assert.Less(t, hwm, int64(hostileMaxHWM), "agent VmHWM")
			assert.Nil(t, a.cmd.ProcessState, "the agent is alive")
			code, _, err := a.get("/healthz")
			assert.NoError(t, err)
			assert.Equal(t, http.StatusOK, code)
			gs, ok := modelNow(a, "good")
			assert.True(t, ok && gs.Phase == reconcile.PhaseActive, "the good model stays active: %+v", gs)
			if got, err := os.ReadFile(goodHandoff); assert.NoError(t, err) {
				assert.Equal(t, string(handoffBefore), string(got), "the good model's handoff is unchanged")
			}
			if after := snapshotTree(t, canary); !assert.Equal(t, canaryBefore, after, "the canary tree is unchanged") {
				// Put it back so that the next trials are judged alone.
				require.NoError(t, os.RemoveAll(canary))
				makeCanary(t, canary)
			}
			if tc.restore != nil {
				tc.restore(t)
			}
			t.Logf("trial took %s", time.Since(start).Round(time.Millisecond))
		})
		if !ran {
			continue // not selected by -run
		}
		tried++
		if !ok {
			failed++
			failedNames = append(failedNames, tc.name)
		}
	}

	// After everything: the good model is still served, nothing escaped,
	// and the agent stops cleanly.
	gs, ok := modelNow(a, "good")
	assert.True(t, ok && gs.Phase == reconcile.PhaseActive, "good model active at the end: %+v", gs)
	assert.Equal(t, canaryBefore, snapshotTree(t, canary))
	for _, p := range []string{
		filepath.Join(dir, "evil.bin"), filepath.Join(state, "evil.bin"), filepath.Join(state, "models", "evil.bin"),
		filepath.Join(state, "models", "evil.gguf"), filepath.Join(state, "models", "escape.bin"),
		"/etc/evil.bin", "/etc/evil.gguf", "/etc/escape.bin",
	} {
		assert.NoFileExists(t, p, "nothing lands where a hostile name points")
	}
	maxHWM = max(maxHWM, peakRSS(t, a.cmd.Process.Pid))
	a.stop(t)

	detail = append(detail, fmt.Sprintf("s3=%s slowest_rejection=%s max_vmhwm=%.1fMiB", s3Mode, slowest.Round(time.Millisecond), float64(maxHWM)/(1<<20)))
	if len(failedNames) > 0 {
		detail = append(detail, "failed_trials="+strings.Join(failedNames, ","))
	}
}

// waitRejection polls /status until file shows up among spec_errors, or
// model has failed with a last error, and returns the message and which of
// the two it was.
func waitRejection(a *agentProc, file, model string, within time.Duration) (msg string, asSpecError bool, took time.Duration, ok bool) {
	start := time.Now()
	for time.Since(start) < within {
		if rep, err := statusReport(a); err == nil {
			if file != "" {
				for _, e := range rep.SpecErrors {
					if e.File == file || e.File == strings.ToValidUTF8(file, "\uFFFD") {
						return e.Error, true, time.Since(start), true
					}
				}
			}
			if m, ok := modelIn(rep, model); model != "" && ok && m.Phase == reconcile.PhaseFailed && m.LastError != "" {
				return m.LastError, false, time.Since(start), true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", false, time.Since(start), false
}

// hostileHub serves Hub repositories through a proxy that rewrites the
// tree listings, so that they name files the Hub fixture would never store
// ("../evil.bin", "/etc/evil.bin"), as a compromised or buggy mirror
// could. It returns the endpoint and the CA file the CDN needs.
func hostileHub(t *testing.T) (string, string) {
	hub := hubtest.New(t)
	hub.AddRepo("hostile", "dotdot", "main", map[string][]byte{"config.json": []byte("{}"), "evil-dotdot.bin": fetchtest.Data(2001)})
	hub.AddRepo("hostile", "absolute", "main", map[string][]byte{"config.json": []byte("{}"), "evil-absolute.bin": fetchtest.Data(2002)})
	hub.AddRepo("hostile", "planted", "main", map[string][]byte{"model.bin": fetchtest.Data(2003)})
	hub.AddRepo("hostile", "nested", "main", map[string][]byte{"config.json": []byte("{}"), "sub/x.bin": fetchtest.Data(2004)})
	hub.AddRepo("hostile", "viaingest", "main", map[string][]byte{"model.bin": fetchtest.Data(2005)})
	hub.AddRepo("hostile", "viablobs", "main", map[string][]byte{"model.bin": fetchtest.Data(2006)})
	hub.AddRepo("hostile", "viagc", "main", map[string][]byte{"model.bin": fetchtest.Data(2007)})
	hub.AddRepo("hostile", "victim", "main", map[string][]byte{"model.bin": fetchtest.Data(2008)})
	target, err := url.Parse(hub.URL)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = hub.Client().Transport
	rewrite := strings.NewReplacer(`"path":"evil-dotdot.bin"`, `"path":"../evil.bin"`, `"path":"evil-absolute.bin"`, `"path":"/etc/evil.bin"`)
	rp.ModifyResponse = func(resp *http.Response) error {
		if !strings.Contains(resp.Request.URL.Path, "/tree/") {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		body = []byte(rewrite.Replace(string(body)))
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL, hub.CAFile
}

// hostileS3 stores the prefixes pre-dotdot/ and pre-abs/ in versitygw, each
// with a key that would escape the model directory, and returns the
// endpoint, the environment and how the keys were served. versitygw's posix
// store cannot hold keys with ".." or empty segments as given (Amazon S3
// can): it refuses or normalizes them. Then the objects are stored under
// harmless names and a proxy in front of versitygw rewrites its
// ListObjectsV2 answers to the hostile keys, reproducing what Amazon S3
// would list.
func hostileS3(t *testing.T) (string, []string, string) {
	srv := s3srv.Start(t)
	srv.CreateBucket(t, "models")
	env := []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey, "AWS_REGION=" + srv.Region}
	hostile := map[string]string{"pre-dotdot/evil.bin": "pre-dotdot/../escape.bin", "pre-abs/evil.bin": "pre-abs//etc/escape.bin"}
	stored := true
	for _, key := range hostile {
		if !s3StoresKey(t, srv, key) {
			stored = false
		}
	}
	srv.Put(t, "models", "pre-dotdot/config.json", []byte("{}"), nil)
	srv.Put(t, "models", "pre-abs/config.json", []byte("{}"), nil)
	if stored {
		return srv.Endpoint, env, "versitygw"
	}
	pairs := []string{}
	for plain, evil := range hostile {
		srv.Put(t, "models", plain, fetchtest.Data(1000), nil)
		pairs = append(pairs, "<Key>"+plain+"</Key>", "<Key>"+evil+"</Key>")
	}
	rewrite := strings.NewReplacer(pairs...)
	target, err := url.Parse(srv.Endpoint)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Query().Get("list-type") != "2" {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		body = []byte(rewrite.Replace(string(body)))
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	proxy := httptest.NewServer(rp)
	t.Cleanup(proxy.Close)
	return proxy.URL, env, "listing-rewrite(versitygw does not keep keys with '..' or empty segments as given)"
}

// s3StoresKey tries to store key and reports whether the server lists it
// back exactly.
func s3StoresKey(t *testing.T, srv *s3srv.Server, key string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	data := fetchtest.Data(999)
	if _, err := srv.Client.PutObject(ctx, "models", key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Logf("versitygw refuses key %q: %v", key, err)
		return false
	}
	prefix, _, _ := strings.Cut(key, "/")
	for o := range srv.Client.ListObjectsIter(ctx, "models", minio.ListObjectsOptions{Prefix: prefix + "/", Recursive: true}) {
		if o.Err == nil && o.Key == key {
			return true
		}
	}
	t.Logf("versitygw accepted key %q but does not list it as such", key)
	return false
}

// makeCanary builds a small tree outside the state directory that no
// hostile input may change.
func makeCanary(t *testing.T, dir string) {
	t.Helper()
	for rel, data := range map[string]string{
		"passwd":         "root:x:0:0:root:/root:/bin/sh\n",
		"model.bin":      "not a model\n",
		"sub/x.bin":      "canary sub file\n",
		"sub/deep/y.txt": "deep\n",
		"etc/evil.bin":   "pre-existing\n",
	} {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	}
}

// snapshotTree records every entry under root: type, permissions, size and
// content hash (or symlink target).
func snapshotTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%s %d", fi.Mode(), fi.Size())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			raw, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(raw)
			desc += " " + hex.EncodeToString(sum[:])
		case fi.IsDir():
			desc = fmt.Sprintf("%s dir", fi.Mode())
		}
		out[rel] = desc
		return nil
	}))
	return out
}

// peakRSS returns the VmHWM of process pid, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// billionLaughs is the classic exponential alias document: nine levels of
// nine aliases each, 9^9 strings if anything expanded them.
func billionLaughs() string {
	var b strings.Builder
	b.WriteString("model_ref: /srv/m.gguf\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		fmt.Fprintf(&b, "%s: &%s [%s]\n", n, n, strings.TrimSuffix(strings.Repeat("*"+prev+",", 9), ","))
		prev = n
	}
	return b.String()
}

// writeBigSpec writes a spec file of size bytes: a valid model line and
// then comment lines, so only its size is wrong.
func writeBigSpec(t *testing.T, path string, size int) {
	t.Helper()
	f, err := os.Create(path + ".tmp")
	require.NoError(t, err)
	line := "# " + strings.Repeat("x", 1021) + "\n"
	_, err = io.WriteString(f, "model_ref: /srv/m.gguf\n")
	require.NoError(t, err)
	buf := []byte(strings.Repeat(line, 1024))
	for n := 0; n < size; n += len(buf) {
		_, err = f.Write(buf)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	require.NoError(t, os.Rename(path+".tmp", path))
}
