package reconcile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/verify"
)

// BenchmarkLoop_IdleResync times one full pass over 2,000 spec files that
// declare 5 already verified local models under 2,000 names: the pass
// every resync makes when nothing changed.
func BenchmarkLoop_IdleResync(b *testing.B) {
	const nspecs, nmodels = 2000, 5
	t := &testing.T{}
	e := startLoop(t, nil, 2, nil)
	b.Cleanup(e.stop)
	var paths, sums []string
	for i := range nmodels {
		content := fmt.Sprintf("model %d", i)
		paths = append(paths, e.model(t, fmt.Sprintf("m%d", i), content))
		d, _, err := verify.HashReader(context.Background(), strings.NewReader(content))
		require.NoError(b, err)
		sums = append(sums, d.Value)
	}
	for i := range nspecs {
		k := i % nmodels
		body := fmt.Sprintf("model_ref: %s\nexpected_digest:\n  algo: sha256\n  value: %s\n", paths[k], sums[k])
		require.NoError(b, os.WriteFile(filepath.Join(e.modelsDir, fmt.Sprintf("spec-%d.yaml", i)), []byte(body), 0o644))
	}
	waitResync := func() {
		t0 := time.Now()
		e.resync()
		for !e.loop.LastResync().After(t0) {
			time.Sleep(200 * time.Microsecond)
		}
	}
	waitResync() // the first pass verifies and records everything
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		waitResync()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*nspecs), "µs/spec")
}
