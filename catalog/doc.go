// Package catalog is the agent's on-disk record of which models are present
// on this host: index.json under the state directory, one entry per model id.
//
// Every change rewrites the whole index atomically (see package atomicfile)
// while holding an exclusive advisory lock on index.lock, so several processes
// (the agent, and engine launchers running the one-shot ensure) can change it
// at once without losing each other's entries, and a reader that takes no lock
// still always sees one complete generation of the file.
//
// An index that does not parse, or that was written by a newer format
// version, is reported and left untouched: the catalog never replaces a file
// it cannot read, because that would silently forget every model in it.
package catalog
