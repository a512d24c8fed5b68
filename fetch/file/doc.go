// Package file is the fetcher for local models: file:/abs/path, /abs/path and
// relative paths. A local model is registered where it lies and never copied
// or modified; the agent only stats and, when needed, hashes it.
package file
