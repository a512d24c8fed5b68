// Package fetchtest is the conformance suite every remote fetcher passes:
// a model is fetched whole and verified; a missing one is reported as not
// found; a digest mismatch fails without leaving bytes behind; a truncated
// body is resumed; a cancelled download stops and later resumes rather than
// starting over; and concurrent ensures of one model download it once.
package fetchtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/catalog"
	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/reconcile"
	"github.com/model-provisioner/model-provisioner/verify"
)

// Target describes the fetcher under test and the server it talks to.
type Target struct {
	// Scheme is the reference scheme the fetcher serves.
	Scheme fetch.Scheme
	// NewFetcher returns the fetcher under test, writing into store.
	NewFetcher func(t *testing.T, store *content.Store) fetch.Fetcher
	// Publish makes data available and returns a model reference to it.
	Publish func(t *testing.T, data []byte) string
	// Missing returns a reference to a model that does not exist.
	Missing func(t *testing.T) string
	// PublishTruncated is Publish, except that the first response for the
	// object ends, with the connection dropped, after n bytes. Nil skips
	// the case (a real server cannot be made to do it).
	PublishTruncated func(t *testing.T, data []byte, n int64) string
	// PublishSlow is Publish with the body served at about bytesPerSec, so
	// that a download can be interrupted mid-way. Nil skips the case.
	PublishSlow func(t *testing.T, data []byte, bytesPerSec int) string
	// BytesServed returns the body bytes the server has sent for ref.
	BytesServed func(t *testing.T, ref string) int64
}

// Data returns n deterministic pseudo-random bytes.
func Data(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for k := 0; k < 8 && i+k < n; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// DigestOf returns the sha256 digest of data.
func DigestOf(data []byte) verify.Digest {
	sum := sha256.Sum256(data)
	return verify.Digest{Algo: verify.SHA256, Value: hex.EncodeToString(sum[:])}
}

type env struct {
	dir   string
	store *content.Store
	f     fetch.Fetcher
}

func newEnv(t *testing.T, tg Target) *env {
	dir := t.TempDir()
	store, err := content.Open(filepath.Join(dir, "state"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	return &env{dir: dir, store: store, f: tg.NewFetcher(t, store)}
}

func parse(t *testing.T, ref string) fetch.Ref {
	t.Helper()
	r, err := fetch.ParseRef(ref, "/")
	require.NoError(t, err)
	return r
}

// noPartial asserts that nothing but verified blobs is in the store: no
// blob whose bytes differ from its name.
func noPartial(t *testing.T, store *content.Store) {
	t.Helper()
	dir := filepath.Join(store.Dir(), content.BlobsDir, "sha256")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		assert.Equal(t, e.Name(), DigestOf(data).Value, "blob %s holds other bytes", e.Name())
	}
}

// Run runs the suite against tg.
func Run(t *testing.T, tg Target) {
	t.Run("Fetch", func(t *testing.T) {
		e := newEnv(t, tg)
		data := Data(3<<20 + 17)
		ref := tg.Publish(t, data)
		res, err := e.f.Fetch(context.Background(), fetch.Request{Ref: parse(t, ref), Name: "m", Expected: DigestOf(data)})
		require.NoError(t, err)
		got, err := os.ReadFile(res.LocalPath)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(data, got), "bytes differ")
		assert.Equal(t, DigestOf(data), res.Digest)
		assert.Equal(t, int64(len(data)), res.SizeBytes)
		assert.True(t, res.Owned)
		assert.True(t, strings.HasPrefix(res.LocalPath, filepath.Join(e.store.Dir(), content.ModelsDir, "m")+string(filepath.Separator)), "engines see models/<name>/...: %s", res.LocalPath)
		noPartial(t, e.store)

		// Without an expected digest the sha256 is still computed.
		e2 := newEnv(t, tg)
		res, err = e2.f.Fetch(context.Background(), fetch.Request{Ref: parse(t, ref), Name: "m"})
		require.NoError(t, err)
		assert.Equal(t, DigestOf(data), res.Digest)
	})

	t.Run("NotFound", func(t *testing.T) {
		e := newEnv(t, tg)
		_, err := e.f.Fetch(context.Background(), fetch.Request{Ref: parse(t, tg.Missing(t)), Name: "m"})
		require.Error(t, err)
		assert.ErrorIs(t, err, fetch.ErrNotFound)
		assert.False(t, isRetryable(err), "not found is permanent: %v", err)
	})

	t.Run("DigestMismatch", func(t *testing.T) {
		e := newEnv(t, tg)
		data := Data(1 << 20)
		wrong := DigestOf([]byte("something else"))
		_, err := e.f.Fetch(context.Background(), fetch.Request{Ref: parse(t, tg.Publish(t, data)), Name: "m", Expected: wrong})
		require.Error(t, err)
		assert.ErrorIs(t, err, fetch.ErrDigestMismatch)
		assert.Contains(t, err.Error(), wrong.Value)
		assert.Contains(t, err.Error(), DigestOf(data).Value)
		assert.True(t, fetch.IsPermanent(err))
		noPartial(t, e.store)
		assert.False(t, e.store.Has(DigestOf(data), -1), "mismatching bytes are not committed")
		ingest, err := os.ReadDir(filepath.Join(e.store.Dir(), content.IngestDir))
		require.NoError(t, err)
		assert.Empty(t, ingest, "the ingest of a mismatch is deleted")
	})

	t.Run("TruncatedBody", func(t *testing.T) {
		if tg.PublishTruncated == nil {
			t.Skip("the server under test cannot truncate a body on demand")
		}
		e := newEnv(t, tg)
		data := Data(2<<20 + 3)
		ref := tg.PublishTruncated(t, data, 700_000)
		before := tg.BytesServed(t, ref)
		res, err := e.f.Fetch(context.Background(), fetch.Request{Ref: parse(t, ref), Name: "m", Expected: DigestOf(data)})
		require.NoError(t, err, "a dropped connection is resumed")
		assert.Equal(t, DigestOf(data), res.Digest)
		assert.Less(t, tg.BytesServed(t, ref)-before, int64(len(data))+700_000+1, "resumed, not restarted")
		noPartial(t, e.store)
	})

	t.Run("CancelThenResume", func(t *testing.T) {
		if tg.PublishSlow == nil {
			t.Skip("the server under test cannot slow a body down")
		}
		e := newEnv(t, tg)
		data := Data(4<<20 + 7)
		ref := tg.PublishSlow(t, data, 4<<20)
		base := tg.BytesServed(t, ref)
		ctx, cancel := context.WithCancel(context.Background())
		var once sync.Once
		req := fetch.Request{Ref: parse(t, ref), Name: "m", Expected: DigestOf(data), Progress: func(done, total int64) {
			if done > int64(len(data))/2 {
				once.Do(cancel)
			}
		}}
		start := time.Now()
		_, err := e.f.Fetch(ctx, req)
		require.Error(t, err)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Less(t, time.Since(start), 10*time.Second, "cancellation stops the download promptly")
		noPartial(t, e.store)
		assert.False(t, e.store.Has(DigestOf(data), -1))

		served := tg.BytesServed(t, ref) - base
		req.Progress = nil
		res, err := e.f.Fetch(context.Background(), req)
		require.NoError(t, err)
		assert.Equal(t, DigestOf(data), res.Digest)
		total := tg.BytesServed(t, ref) - base
		assert.Less(t, total-served, int64(len(data))*9/10, "the second fetch resumed instead of starting over (first %d, second %d)", served, total-served)
		noPartial(t, e.store)
	})

	t.Run("ConcurrentEnsureDownloadsOnce", func(t *testing.T) {
		e := newEnv(t, tg)
		data := Data(2<<20 + 5)
		ref := tg.Publish(t, data)
		start := tg.BytesServed(t, ref)
		cat, err := catalog.Open(e.store.Dir())
		require.NoError(t, err)
		reg := fetch.NewRegistry()
		reg.Register(tg.Scheme, e.f)
		p, err := reconcile.NewProvisioner(reconcile.ProvisionerConfig{Catalog: cat, Fetchers: reg, HandoffDir: filepath.Join(e.dir, "handoff")})
		require.NoError(t, err)
		r := parse(t, ref)
		var wg sync.WaitGroup
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := p.EnsurePresent(context.Background(), r, verify.Digest{})
				assert.NoError(t, err)
			}()
		}
		wg.Wait()
		assert.LessOrEqual(t, tg.BytesServed(t, ref)-start, int64(len(data))+64<<10, "one download for concurrent ensures")
		// And again, now present: no network at all.
		before := tg.BytesServed(t, ref)
		m, err := p.EnsurePresent(context.Background(), r, verify.Digest{})
		require.NoError(t, err)
		assert.False(t, m.Hashed)
		assert.Equal(t, before, tg.BytesServed(t, ref), "a present, verified model needs no network")
	})
}

func isRetryable(err error) bool {
	return !fetch.IsPermanent(err) && !errors.Is(err, context.Canceled)
}
