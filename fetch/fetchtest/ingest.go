package fetchtest

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/model-provisioner/model-provisioner/content"
)

// IngestProgress returns the durable fraction of the download in progress
// under the state directory, as its checkpoint records it; 0 when there is
// none. Tests that kill a download part way use it to pick the moment.
func IngestProgress(state string) float64 {
	matches, _ := filepath.Glob(filepath.Join(state, content.IngestDir, "*", "state.json"))
	for _, m := range matches {
		raw, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		var st content.IngestState
		if json.Unmarshal(raw, &st) != nil || st.Size <= 0 {
			continue
		}
		var done int64
		for _, p := range st.Parts {
			done += p.Done
		}
		return float64(done) / float64(st.Size)
	}
	return 0
}
