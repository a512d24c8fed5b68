package handoff

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A process started after a crash removes the killed writer's temp file
// even when the handoff it writes is already up to date.
func TestWrite_UnchangedSweepsKilledWritersTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.json")
	f := File{Model: Model{ID: "file:/m", Path: "/m"}}
	_, err := Write(p, f)
	require.NoError(t, err)
	stale := filepath.Join(dir, ".m.json.tmp-12345")
	require.NoError(t, os.WriteFile(stale, []byte(`{"model":`), 0o600))

	lastSweep.Delete(dir) // as in a new process
	changed, err := Write(p, f)
	require.NoError(t, err)
	assert.False(t, changed)
	assert.NoFileExists(t, stale)

	// Within sweepInterval an unchanged write takes no lock and looks at
	// nothing.
	require.NoError(t, os.WriteFile(stale, []byte(`{"model":`), 0o600))
	changed, err = Write(p, f)
	require.NoError(t, err)
	assert.False(t, changed)
	assert.FileExists(t, stale)
}

// A line left without its newline by a killed appender is cut away by the
// next append, which then starts a line of its own.
func TestAppendProvenance_DropsTornTail(t *testing.T) {
	for _, tc := range []struct{ name, before, kept string }{
		{"after whole lines", "{\"event\":\"active\"}\n{\"time\":\"2026", "{\"event\":\"active\"}\n"},
		{"only a fragment", strings.Repeat("x", 10000), ""},
		{"whole lines only", "{\"event\":\"active\"}\n", "{\"event\":\"active\"}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, ProvenanceFile)
			require.NoError(t, os.WriteFile(p, []byte(tc.before), 0o644))
			require.NoError(t, AppendProvenance(dir, Record{Event: EventRetired, ModelID: "file:/m"}))
			got, err := os.ReadFile(p)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(string(got), tc.kept), "%q", got)
			assert.Equal(t, `{"time":"0001-01-01T00:00:00Z","event":"retired","model_id":"file:/m","size_bytes":0}`+"\n", string(got[len(tc.kept):]))
		})
	}
}
