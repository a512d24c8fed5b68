package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// bufSize is the read size used when hashing. Large reads keep the number of
// syscalls per GiB low; 1 MiB is past the point where a bigger buffer still
// measurably helps on page-cached files.
const bufSize = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// hashed counts the bytes this process has hashed.
var hashed atomic.Int64

// HashedBytes returns how many bytes this process has hashed with HashFile
// and HashReader, read or mapped.
func HashedBytes() int64 { return hashed.Load() }

// HashFile streams the file at path through sha256 and returns its digest and
// the number of bytes read. It checks ctx every few MiB, so a cancelled
// context stops a multi-GB hash promptly. A regular file is hashed from a
// read-only mapping where the system allows one, else read in 1 MiB blocks.
func HashFile(ctx context.Context, path string) (Digest, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return Digest{}, 0, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		d, n, err := hashMapped(ctx, f, fi.Size())
		if !errors.Is(err, errNoMap) {
			return d, n, err
		}
	}
	return HashReader(ctx, f)
}

// HashReader streams r through sha256 and returns its digest and length.
func HashReader(ctx context.Context, r io.Reader) (Digest, int64, error) {
	h := sha256.New()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return Digest{}, n, err
		}
		m, err := r.Read(buf)
		if m > 0 {
			h.Write(buf[:m])
			n += int64(m)
			hashed.Add(int64(m))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return Digest{}, n, fmt.Errorf("read after %d bytes: %w", n, err)
		}
	}
	return Digest{Algo: SHA256, Value: hex.EncodeToString(h.Sum(nil))}, n, nil
}
