package reconcile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/verify"
)

// TestMetrics_Golden pins the metric names, types, help texts and labels
// that dashboards and alerts depend on. Run with -update to rewrite
// testdata/metrics.golden.
func TestMetrics_Golden(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	m.setPhaseSource(func() map[Phase]int { return map[Phase]int{PhaseActive: 3, PhaseFailed: 1} })
	m.passes.Add(4)
	m.passDuration.Observe(0.002)
	m.Fetched("file", 3*time.Millisecond, 4096, nil)
	m.Fetched("file", 200*time.Microsecond, 0, nil)
	m.Verified(verify.Pass)
	m.Verified(verify.Warn)
	m.errors.WithLabelValues("not_found").Inc()
	m.WatcherRestarted()
	m.WatcherOverflowed()
	m.lastResync.Set(1.7e9)

	mfs, err := reg.Gather()
	require.NoError(t, err)
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		require.NoError(t, enc.Encode(mf))
	}
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, buf.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), buf.String())
}

// TestMetrics_Lint runs the same checks as "promtool check metrics".
func TestMetrics_Lint(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := NewMetrics(reg)
	require.NoError(t, err)
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}
