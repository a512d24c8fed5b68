package verify

// Result is the verdict of one verification.
type Result string

// Verification results recorded in the catalog.
const (
	// Pass: an expected digest was given and the bytes match it.
	Pass Result = "pass"
	// Warn: no expected digest was given; the computed digest (if any) is
	// recorded but nothing was proven.
	Warn Result = "warn"
	// Fail: the bytes do not match the expected digest.
	Fail Result = "fail"
)

// Outcome is a Result with the reason an operator reads in status output.
type Outcome struct {
	Result Result `json:"result"`
	Reason string `json:"reason,omitempty"`
}
