package reconcile

import (
	"time"

	"github.com/model-provisioner/model-provisioner/modelinfo"

	"github.com/model-provisioner/model-provisioner/verify"
)

// Phase is where a declared model is in its way to being usable.
type Phase string

// Model phases, as shown in /status and the models metric.
const (
	PhasePending   Phase = "pending"
	PhaseFetching  Phase = "fetching"
	PhaseVerifying Phase = "verifying"
	PhaseActive    Phase = "active"
	PhaseFailed    Phase = "failed"
	PhaseRetired   Phase = "retired"
)

// Phases lists every phase, in display order.
var Phases = []Phase{PhasePending, PhaseFetching, PhaseVerifying, PhaseActive, PhaseFailed, PhaseRetired}

// ModelStatus is the reconcile status of one declared (or recently retired)
// model.
type ModelStatus struct {
	Name     string `json:"name"`
	ID       string `json:"id,omitempty"`
	SpecFile string `json:"spec_file,omitempty"`
	Phase    Phase  `json:"phase"`
	// Reason says why the model is in its phase, in words for an operator.
	Reason string `json:"reason,omitempty"`
	// LastError is the last failure, kept after recovery until the next one.
	LastError string `json:"last_error,omitempty"`
	// SpecError is set while the model's spec file fails to parse; the last
	// good version of the file stays in force meanwhile.
	SpecError string `json:"spec_error,omitempty"`
	// Attempts counts consecutive failed attempts; 0 once it succeeds.
	Attempts       int        `json:"attempts"`
	LastTransition time.Time  `json:"last_transition"`
	NextRetry      *time.Time `json:"next_retry,omitempty"`
	BytesDone      int64      `json:"bytes_done"`
	BytesTotal     int64      `json:"bytes_total"`
	// RateBytesPerSec is the smoothed download rate while fetching.
	RateBytesPerSec float64 `json:"rate_bytes_per_second,omitempty"`
	Path            string  `json:"path,omitempty"`
	Verification    string  `json:"verification,omitempty"`
	HandoffPath     string  `json:"handoff_path,omitempty"`
	// Engine and Metadata are what the handoff file tells the engine; the
	// catalog entry (catalog show) holds the same description.
	Engine   string          `json:"engine,omitempty"`
	Metadata *modelinfo.Info `json:"metadata,omitempty"`
}

// FileError is a spec file that fails to parse and has no last good version
// in force.
type FileError struct {
	File  string `json:"file"`
	Error string `json:"error"`
}

// Report is the whole status document served at /status.
type Report struct {
	Ready bool `json:"ready"`
	// LastResync is when the last pass over every declared model ended
	// with no model failing; zero before the first.
	LastResync time.Time     `json:"last_resync,omitzero"`
	ModelsDir  string        `json:"models_dir"`
	Models     []ModelStatus `json:"models"`
	SpecErrors []FileError   `json:"spec_errors"`
}

func verificationOf(r verify.Result) string { return string(r) }
