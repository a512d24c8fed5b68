package watch

import (
	"os"
	"strconv"
	"strings"
)

// queueLimit returns the kernel's limit on queued inotify events per
// watcher, so that an overflow warning can say which sysctl to raise.
func queueLimit() (int, bool) {
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	return n, true
}
