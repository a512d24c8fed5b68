package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"syscall"
)

// mapWindow is how much of a mapped file is hashed between two checks of
// the context.
const mapWindow = 8 << 20

// errNoMap says the file could not be mapped; the caller reads it instead.
var errNoMap = errors.New("file cannot be mapped")

// hashMapped hashes f (of the given size) through a read-only shared
// mapping: the bytes are hashed where they lie in the page cache, with no
// copy into a buffer, which is most of what reading costs next to sha256
// itself. A file truncated while it is hashed makes the kernel fault the
// access; the fault is turned into an error for this call instead of a
// crash of the process.
func hashMapped(ctx context.Context, f *os.File, size int64) (d Digest, n int64, err error) {
	if size <= 0 || int64(int(size)) != size {
		return Digest{}, 0, errNoMap
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return Digest{}, 0, errNoMap
	}
	defer syscall.Munmap(data)
	_ = syscall.Madvise(data, syscall.MADV_SEQUENTIAL)

	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			d, err = Digest{}, fmt.Errorf("read after %d bytes: the file shrank while it was hashed (%v)", n, r)
		}
	}()
	h := sha256.New()
	for n < size {
		if err := ctx.Err(); err != nil {
			return Digest{}, n, err
		}
		end := min(n+mapWindow, size)
		h.Write(data[n:end])
		hashed.Add(end - n)
		n = end
	}
	return Digest{Algo: SHA256, Value: hex.EncodeToString(h.Sum(nil))}, n, nil
}
