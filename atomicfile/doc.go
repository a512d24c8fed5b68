// Package atomicfile replaces files so that a reader, or a process that
// starts after a crash, sees either the old content or the new content in
// full, never a mix or a prefix. The catalog index and the engine handoff
// files are written only through it.
package atomicfile
