// Package verify holds what the rest of the agent needs to prove that bytes
// on disk are the bytes an operator asked for: content digests, the streaming
// hasher that computes them, the outcome recorded after a check, and the file
// fingerprint that lets an unchanged, already-verified file skip re-hashing.
//
// The package is pure apart from reading the file being hashed or stat'ed; it
// never writes.
package verify
