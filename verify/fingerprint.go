package verify

// Fingerprint identifies one version of a file cheaply, from a single stat.
// When a file's fingerprint equals the one recorded after it was last
// verified, its bytes are taken as unchanged and it is not hashed again.
//
// Device and inode catch a file replaced by rename (how editors, package
// managers and config-management tools write); size and mtime in nanoseconds
// catch writes in place.
type Fingerprint struct {
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
}

// IsZero reports whether fp is the zero Fingerprint (nothing recorded).
func (fp Fingerprint) IsZero() bool { return fp == Fingerprint{} }
