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

// mapWindow is how much of a file is mapped at a time: the hash reads
// pages where they lie, and unmapping each window as it is done keeps the
// process's resident size from growing with the file (mapped pages count
// as resident, and towards the OOM killer's choice). A multiple of the page
// size.
const mapWindow = 16 << 20

// errNoMap says the file could not be mapped; the caller reads it instead.
var errNoMap = errors.New("file cannot be mapped")

// hashMapped hashes f (of the given size) through read-only shared
// mappings, one window at a time: the bytes are hashed where they lie in
// the page cache, with no copy into a buffer, which is most of what reading
// costs next to sha256 itself. A file truncated while it is hashed makes
// the kernel fault the access; the fault is turned into an error for this
// call instead of a crash of the process.
func hashMapped(ctx context.Context, f *os.File, size int64) (d Digest, n int64, err error) {
	if size <= 0 {
		return Digest{}, 0, errNoMap
	}
	var window []byte
	defer func() {
		if window != nil {
			_ = syscall.Munmap(window)
		}
	}()
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
		length := int(min(mapWindow, size-n))
		window, err = syscall.Mmap(int(f.Fd()), n, length, syscall.PROT_READ, syscall.MAP_SHARED)
		if err != nil {
			window = nil
			if n == 0 {
				return Digest{}, 0, errNoMap
			}
			return Digest{}, n, fmt.Errorf("map %d bytes at %d: %w", length, n, err)
		}
		_ = syscall.Madvise(window, syscall.MADV_SEQUENTIAL)
		h.Write(window)
		hashed.Add(int64(length))
		n += int64(length)
		if err := syscall.Munmap(window); err != nil {
			window = nil
			return Digest{}, n, fmt.Errorf("unmap: %w", err)
		}
		window = nil
	}
	return Digest{Algo: SHA256, Value: hex.EncodeToString(h.Sum(nil))}, n, nil
}
