// Package handoff writes the small JSON files that tell an inference engine
// where a model is and what it is, and the provenance log beside them.
//
// Handoff files are replaced atomically and only when their content changes,
// so an engine or launcher never reads a torn file and is never woken by a
// rewrite that changed nothing. The content is deterministic: no timestamps,
// keys in a fixed order.
//
// # Document
//
// Build makes the document from what the catalog knows about a model
// (Registration) and what modelinfo.Inspect found in its files, in the form
// one engine reads: llama.cpp gets the GGUF file (the first shard of a split
// model), vLLM the model directory (or GGUF file) and, when it lies
// elsewhere, the tokenizer directory, and generic the path as registered.
// Every form keeps the seed's fields model.id, model.path,
// metadata.size_bytes and metadata.ctx_max (null when unknown) and adds
// schema_version, engine and further metadata: format, architecture,
// quantization, parameter and tensor counts, tokenizer, chat template, GGUF
// version, shards and a memory estimate.
//
// schema.json, beside this file, is the JSON Schema (draft 2020-12) of the
// document; readers must ignore keys they do not know. SchemaVersion changes
// only when a key changes meaning or a required key is added.
package handoff
