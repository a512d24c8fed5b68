//go:build !linux

package watch

// queueLimit reports no limit: only Linux exposes one.
func queueLimit() (int, bool) { return 0, false }
