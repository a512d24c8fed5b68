package reconcile

import (
	"time"

	"github.com/model-provisioner/model-provisioner/verify"
)

// Observer receives measurements from a Provisioner, for metrics. Its
// methods are called from many goroutines and must be cheap.
type Observer interface {
	// Fetched reports one fetcher call: its scheme, how long it took, and
	// how many bytes it hashed (0 on the fingerprint fast path).
	Fetched(scheme string, d time.Duration, hashedBytes int64, err error)
	// Verified reports a verification outcome, when bytes were checked.
	Verified(result verify.Result)
}

type nopObserver struct{}

func (nopObserver) Fetched(string, time.Duration, int64, error) {}
func (nopObserver) Verified(verify.Result)                      {}
