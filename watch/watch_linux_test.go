package watch

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWatcher_KernelQueueOverflow overflows the real inotify queue: the
// event loop is held up inside Relevant while far more events than
// fs.inotify.max_queued_events are produced.
func TestWatcher_KernelQueueOverflow(t *testing.T) {
	t.Parallel()
	limit, ok := queueLimit()
	if !ok {
		t.Skip("fs.inotify.max_queued_events is not readable")
	}
	if limit > 100_000 {
		t.Skipf("fs.inotify.max_queued_events is %d; too many files to create for an overflow test", limit)
	}

	dir := t.TempDir()
	release := make(chan struct{})
	var overflows atomic.Int32
	w := startWatcher(t, Config{
		Dir:      dir,
		Relevant: func(string) bool { <-release; return true },
		Hooks:    Hooks{OnOverflow: func() { overflows.Add(1) }},
	})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()

	// Renaming one file back and forth queues two events (moved from, moved
	// to) per system call. On top of the queue limit, allow for the batch
	// fsnotify's reader took out of the kernel before it blocked handing
	// events to the stalled loop.
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	require.NoError(t, os.WriteFile(a, nil, 0o644))
	for range (limit+8192)/2 + 1 {
		require.NoError(t, syscall.Rename(a, b))
		a, b = b, a
	}
	close(release)
	released = true

	waitSignal(t, w.C(), 5*time.Second, "rescan after the overflow", func(s Signal) bool {
		return s.Rescan && s.Reason == ReasonOverflow
	})
	require.GreaterOrEqual(t, overflows.Load(), int32(1))
}
