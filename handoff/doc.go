// Package handoff writes the small JSON files that tell an inference engine
// where a model is and what it is, and the provenance log beside them.
//
// Handoff files are replaced atomically and only when their content changes,
// so an engine or launcher never reads a torn file and is never woken by a
// rewrite that changed nothing. The content is deterministic: no timestamps,
// keys in a fixed order.
package handoff
