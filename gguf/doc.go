// Package gguf reads the header of GGUF model files: the format version, the
// metadata key/value section and, on request, the tensor infos.
//
// Only the header region is read. A multi-gigabyte model costs a few kilobytes
// of I/O (plus at most one read-ahead buffer), so the agent can call ReadFile
// on every resync to learn, for example, the context length it puts in the
// handoff file (see Header.ContextLength).
//
// # Layout
//
// All integers are little-endian. A file starts with the magic "GGUF", a
// uint32 version, a uint64 tensor count and a uint64 metadata count, followed
// by the metadata pairs (a string key, a uint32 value type, the value) and
// then one info record per tensor (name, uint32 dimension count, uint64
// dimensions, uint32 ggml type, uint64 data offset). Strings are a uint64 byte
// length followed by the bytes; arrays are a uint32 element type, a uint64
// element count and the elements. Versions 2 and 3 share this layout and are
// supported; version 1 used 32-bit counts and lengths and is rejected with
// ErrUnsupportedVersion.
//
// # Hostile input
//
// Model files come from the network, so every length and count in a header
// is checked against a documented limit (MaxKeyLen, MaxStringLen, MaxKVCount,
// MaxHeaderBytes, ...) before anything is allocated or skipped on its behalf.
// Large values that are legitimate, such as chat templates or the 150,000
// entry token list of a tokenizer, are skipped rather than kept: the Value
// records their type and length, and Value.Retained reports false. Memory
// kept for a header is capped by MaxRetainedBytes and the bytes read are
// capped by MaxHeaderBytes, whatever the input says.
//
// # Errors
//
// A file that does not start with the GGUF magic yields an error matching
// ErrNotGGUF; callers treat it as "no GGUF metadata" rather than a failure. A
// GGUF file whose header is malformed or truncated yields a *FormatError that
// names the offset of the problem; a truncated header also matches
// io.ErrUnexpectedEOF. Errors from the underlying reader are returned wrapped,
// so errors.Is still sees them.
package gguf
