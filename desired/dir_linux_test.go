package desired

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadDir_FIFO checks that a named pipe with a spec name is reported
// rather than opened: opening it for reading would block until a writer
// appeared.
func TestReadDir_FIFO(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "model_ref: x\n")
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "pipe.yaml"), 0o644))

	done := make(chan *Result, 1)
	go func() {
		res, err := ReadDir(dir)
		assert.NoError(t, err)
		done <- res
	}()
	select {
	case res := <-done:
		require.NotNil(t, res)
		assert.Equal(t, []string{"a"}, modelNames(res.Models))
		require.Len(t, res.Errors, 1)
		assert.ErrorIs(t, res.Errors[0], ErrWrongType)
		assert.Contains(t, res.Errors[0].Error(), "not a regular file")
	case <-time.After(5 * time.Second):
		t.Fatal("ReadDir blocked on a FIFO")
	}
}
