package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHashFile_MappedEqualsRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.bin")
	data := make([]byte, 3*mapWindow+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	require.NoError(t, os.WriteFile(p, data, 0o644))
	sum := sha256.Sum256(data)
	d, n, err := HashFile(context.Background(), p)
	require.NoError(t, err)
	assert.Equal(t, hex.EncodeToString(sum[:]), d.Value)
	assert.Equal(t, int64(len(data)), n)

	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	d, n, err = HashFile(context.Background(), empty)
	require.NoError(t, err, "an empty file is read, not mapped")
	assert.Equal(t, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", d.Value)
	assert.Zero(t, n)
}

// TestHashMapped_FileShrinks maps a file for more bytes than it still has,
// as happens when it is truncated while hashed: the access fault becomes
// an error, not a crash.
func TestHashMapped_FileShrinks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.bin")
	require.NoError(t, os.WriteFile(p, make([]byte, 4*mapWindow), 0o644))
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, os.Truncate(p, mapWindow))
	_, _, err = hashMapped(context.Background(), f, 4*mapWindow)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "shrank")
}

func TestHashMapped_Cancelled(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.bin")
	require.NoError(t, os.WriteFile(p, make([]byte, 2*mapWindow), 0o644))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := HashFile(ctx, p)
	assert.ErrorIs(t, err, context.Canceled)
}
