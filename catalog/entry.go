package catalog

import (
	"reflect"

	"github.com/model-provisioner/model-provisioner/modelinfo"
	"github.com/model-provisioner/model-provisioner/verify"
)

// Lifecycle is the catalog state of a model. Work in flight and failures are
// reconcile status, not catalog states: an entry is Active only while its
// bytes are present and, when a digest was given, verified.
type Lifecycle string

// Catalog lifecycle states.
const (
	// Active: present, verified (or recorded unverified when no digest was
	// given), and handed to engines.
	Active Lifecycle = "Active"
	// Retired: no longer handed to engines, because its spec was removed or
	// its bytes failed verification (see Entry.Verification).
	Retired Lifecycle = "Retired"
)

// Entry is the catalog record of one model.
type Entry struct {
	// ID is the normalized model reference; see fetch.Ref.ID.
	ID string `json:"id"`
	// Name is the model's name from its spec (or derived from its reference).
	Name string `json:"name"`
	// Source is the reference scheme: file, https, hf, s3, oci.
	Source string `json:"source"`
	// LocalPath is the file or directory an engine is given.
	LocalPath string `json:"local_path"`
	// IsDir is true for directory models (e.g. a safetensors tree).
	IsDir bool `json:"is_dir,omitempty"`
	// SizeBytes is the file size, or the sum of file sizes for a directory.
	SizeBytes int64 `json:"size_bytes"`
	// Digest is the sha256 of the file as last hashed. Zero for directories.
	Digest verify.Digest `json:"digest,omitzero"`
	// Verification is the outcome of the last verification.
	Verification verify.Outcome `json:"verification"`
	// Lifecycle is Active or Retired.
	Lifecycle Lifecycle `json:"lifecycle"`
	// LastVerifiedMs is when the bytes were last hashed (Unix ms).
	LastVerifiedMs int64 `json:"last_verified_ms"`
	// Validators are the source's version markers, used to tell whether a
	// remote source changed.
	Validators Validators `json:"validators,omitzero"`
	// Fingerprint identifies the verified version of the file; an unchanged
	// fingerprint means the file need not be hashed again.
	Fingerprint verify.Fingerprint `json:"fingerprint,omitzero"`
	// Include is the spec's include patterns the files were selected with.
	Include []string `json:"include,omitempty"`
	// Files lists each file of a multi-file model with its digest and the
	// fingerprint it had when verified.
	Files []File `json:"files,omitempty"`
	// Metadata is what was learned from the model's headers.
	Metadata Metadata `json:"metadata,omitzero"`
	// Engine is the handoff form the spec asked for ("" = from the format).
	Engine string `json:"engine,omitempty"`
	// HandoffPath is the handoff file written for this model, if any.
	HandoffPath string `json:"handoff_path,omitempty"`
	// SpecFile is the models.d file that declares this model; empty for a
	// model registered by the one-shot ensure command. Only models with a
	// spec file are retired by the agent when their file goes away.
	SpecFile string `json:"spec_file,omitempty"`
	// Aliases are the other names that declare the same model (the same
	// id), each with its own spec file and handoff file. Name, SpecFile,
	// HandoffPath and Engine above belong to the first of them; Uses lists
	// all. The entry is retired only when no name declares it any more.
	Aliases []Use `json:"aliases,omitempty"`
	// Owned is true when the agent created the bytes (a download) and may
	// delete them; false for a user's file, which is never deleted.
	Owned bool `json:"owned,omitempty"`
	// CreatedMs, UpdatedMs and RetiredMs are Unix ms timestamps.
	CreatedMs int64 `json:"created_ms"`
	UpdatedMs int64 `json:"updated_ms"`
	RetiredMs int64 `json:"retired_ms,omitempty"`
}

// File is one verified file of a multi-file model.
type File struct {
	Path        string             `json:"path"`
	SizeBytes   int64              `json:"size_bytes"`
	Digest      verify.Digest      `json:"digest"`
	Fingerprint verify.Fingerprint `json:"fingerprint"`
}

// Use is one name under which a model is declared: its spec file (empty
// for a one-shot ensure), its handoff file and the handoff form it asked
// for.
type Use struct {
	Name        string `json:"name"`
	SpecFile    string `json:"spec_file,omitempty"`
	HandoffPath string `json:"handoff_path,omitempty"`
	Engine      string `json:"engine,omitempty"`
}

// Uses returns every name the entry is declared under, the first one
// first.
func (e Entry) Uses() []Use {
	out := make([]Use, 0, 1+len(e.Aliases))
	out = append(out, Use{Name: e.Name, SpecFile: e.SpecFile, HandoffPath: e.HandoffPath, Engine: e.Engine})
	return append(out, e.Aliases...)
}

// Use returns the use named name.
func (e Entry) Use(name string) (Use, bool) {
	if e.Name == name {
		return Use{Name: e.Name, SpecFile: e.SpecFile, HandoffPath: e.HandoffPath, Engine: e.Engine}, true
	}
	for _, u := range e.Aliases {
		if u.Name == name {
			return u, true
		}
	}
	return Use{}, false
}

// WithUses returns e declared under uses: the first becomes the entry's
// own name, spec file, handoff and engine, the rest its aliases. uses must
// not be empty.
func (e Entry) WithUses(uses []Use) Entry {
	first := uses[0]
	e.Name, e.SpecFile, e.HandoffPath, e.Engine = first.Name, first.SpecFile, first.HandoffPath, first.Engine
	e.Aliases = nil
	if len(uses) > 1 {
		e.Aliases = append([]Use(nil), uses[1:]...)
	}
	return e
}

// Equal reports whether two entries are identical.
func (e Entry) Equal(o Entry) bool { return reflect.DeepEqual(e, o) }

// Validators are a source's markers of which version was fetched.
type Validators struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	Revision     string `json:"revision,omitempty"`
	VersionID    string `json:"version_id,omitempty"`
	OCIDigest    string `json:"oci_digest,omitempty"`
}

// Metadata describes the model's content as read from its headers.
type Metadata struct {
	// Format is "gguf", or empty when unknown.
	Format string `json:"format,omitempty"`
	// Architecture is e.g. "llama" (GGUF general.architecture).
	Architecture string `json:"architecture,omitempty"`
	// CtxMax is the trained context length; 0 when unknown.
	CtxMax int64 `json:"ctx_max,omitempty"`
	// Info is everything modelinfo.Inspect reported; nil in entries
	// written before it was recorded.
	Info *modelinfo.Info `json:"info,omitempty"`
}

// Usable reports whether e may be handed to an engine: Active, and not
// failed verification.
func (e Entry) Usable() bool {
	return e.Lifecycle == Active && e.Verification.Result != verify.Fail
}
