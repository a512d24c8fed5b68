// Package content is the agent's content store for downloaded models, laid
// out under the state directory the way containerd and Ollama lay out theirs:
//
//	ingest/<key>/data, state.json   partial downloads and their resume state
//	blobs/sha256/<hex>              verified content, read-only, named by digest
//	models/<name>/<path>            what engines load: hard links into blobs/
//
// Bytes enter through an Ingest, are hashed while they are written, and are
// renamed into blobs/ by Commit only after their size and digest check out,
// so unverified bytes are never at a final path. A blob is immutable; a model
// tree is rebuilt by linking, never by copying, and a blob shared by several
// models is stored once.
package content
