package verify

import (
	"io/fs"
	"syscall"
)

// FingerprintOf returns the fingerprint of a file from its os.Stat result.
func FingerprintOf(fi fs.FileInfo) Fingerprint {
	fp := Fingerprint{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		fp.Dev = uint64(st.Dev)
		fp.Ino = uint64(st.Ino)
	}
	return fp
}
