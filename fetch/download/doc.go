// Package download moves one remote object into the content store: in
// parallel ranged parts when the source allows, each resumable on its own,
// hashed while it arrives, checkpointed so that a killed process resumes
// where it left off, and committed to blobs/ only once its size and sha256
// check out. Every remote scheme (https, hf, s3) reads through it by
// implementing Source.
package download
