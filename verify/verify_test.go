package verify

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const abcSHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

func TestHashReader_ABC(t *testing.T) {
	d, n, err := HashReader(context.Background(), strings.NewReader("abc"))
	require.NoError(t, err)
	assert.Equal(t, int64(3), n)
	assert.Equal(t, Digest{Algo: SHA256, Value: abcSHA256}, d)
	assert.Equal(t, "sha256:"+abcSHA256, d.String())
}

func TestHashFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.bin")
	require.NoError(t, os.WriteFile(p, []byte("abc"), 0o644))
	d, n, err := HashFile(context.Background(), p)
	require.NoError(t, err)
	assert.Equal(t, int64(3), n)
	assert.Equal(t, abcSHA256, d.Value)
}

func TestHashReader_Cancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := HashReader(ctx, strings.NewReader("abc"))
	assert.ErrorIs(t, err, context.Canceled)
}

func TestParseDigest(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error
	}{
		{"lower", "sha256:" + abcSHA256, abcSHA256, nil},
		{"upper hex and algo", "SHA256:" + strings.ToUpper(abcSHA256), abcSHA256, nil},
		{"unknown algo", "md5:900150983cd24fb0d6963f7d28e17f72", "", ErrUnknownAlgo},
		{"empty algo", ":" + abcSHA256, "", ErrUnknownAlgo},
		{"63 chars", "sha256:" + abcSHA256[:63], "", ErrMalformedDigest},
		{"65 chars", "sha256:" + abcSHA256 + "0", "", ErrMalformedDigest},
		{"not hex", "sha256:" + strings.Repeat("z", 64), "", ErrMalformedDigest},
		{"no colon", abcSHA256, "", ErrMalformedDigest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ParseDigest(tc.in)
			if tc.wantErr != nil {
				require.Error(t, err)
				assert.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, SHA256, d.Algo)
			assert.Equal(t, tc.want, d.Value)
		})
	}
}

func TestDigest_LengthInMessage(t *testing.T) {
	_, err := NewDigest("sha256", abcSHA256[:63])
	require.Error(t, err)
	assert.Contains(t, err.Error(), "63 characters")
}

func TestMismatchError(t *testing.T) {
	exp := Digest{Algo: SHA256, Value: strings.Repeat("0", 64)}
	act := Digest{Algo: SHA256, Value: abcSHA256}
	err := error(&MismatchError{Path: "/m.gguf", Expected: exp, Actual: act})
	assert.True(t, errors.Is(err, ErrDigestMismatch))
	assert.Contains(t, err.Error(), exp.String())
	assert.Contains(t, err.Error(), act.String())
	assert.Contains(t, err.Error(), "/m.gguf")
}

func TestFingerprintOf(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m")
	require.NoError(t, os.WriteFile(p, []byte("abc"), 0o644))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	fp := FingerprintOf(fi)
	assert.NotZero(t, fp.Ino)
	assert.Equal(t, int64(3), fp.Size)

	// Same content, new mtime: a different fingerprint.
	later := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(p, later, later))
	fi, err = os.Stat(p)
	require.NoError(t, err)
	assert.NotEqual(t, fp, FingerprintOf(fi))

	// Replaced by rename (how editors save): a different inode.
	q := filepath.Join(dir, "m.new")
	require.NoError(t, os.WriteFile(q, []byte("abc"), 0o644))
	require.NoError(t, os.Chtimes(q, later, later))
	require.NoError(t, os.Rename(q, p))
	fi2, err := os.Stat(p)
	require.NoError(t, err)
	assert.NotEqual(t, FingerprintOf(fi), FingerprintOf(fi2))
}

func BenchmarkHashReader(b *testing.B) {
	data := make([]byte, 64<<20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := HashReader(context.Background(), bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
