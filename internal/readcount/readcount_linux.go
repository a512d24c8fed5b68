// Package readcount lets tests prove how much of a file the process read,
// with the kernel's own count: the rchar line of /proc/self/io, which counts
// bytes returned by read(2) and its kin, page-cache hits included.
package readcount

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Bytes returns the bytes this process has read so far. The test is skipped
// where /proc/self/io does not say.
func Bytes(t testing.TB) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "rchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("rchar in /proc/self/io: %v", err)
			}
			return n
		}
	}
	t.Skip("no rchar in /proc/self/io")
	return 0
}
