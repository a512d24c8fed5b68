//go:build faults

package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// The fault suites (scripts/faults) build this package with the "faults"
// tag. Each suite ends with one summary line that the script collects:
//
//	FAULT-SUMMARY suite=<name> tried=<n> failed=<n> detail=<text>

// faultSummary prints a suite's summary line. failed counts the trials
// whose checks did not hold; the test itself fails through its assertions.
func faultSummary(t *testing.T, suite string, tried, failed int, detail string) {
	t.Helper()
	if t.Failed() && failed == 0 {
		failed = 1
	}
	detail = strings.Join(strings.Fields(detail), " ")
	fmt.Fprintf(os.Stdout, "FAULT-SUMMARY suite=%s tried=%d failed=%d detail=%s\n", suite, tried, failed, detail)
}
