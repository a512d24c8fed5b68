// Package desired reads the operator's desired state: one spec file per
// model in the models directory (by default /etc/model-provisioner/models.d),
// each naming a model reference, an optional expected digest, whether
// verification is strict, and where the engine handoff file goes.
//
// The package is pure. It reads files and nothing else: no writes, no
// network, no state kept between calls. Deciding what to do about the result
// (keeping the last good version of a file that no longer parses, fetching,
// retiring) belongs to the reconcile loop.
//
// Spec files are strict on purpose. A typo in a file that an operator, a
// configuration-management run or a ConfigMap drops on a GPU host must be
// reported with the file, the line and the field, never guessed at: unknown
// fields, wrong types, duplicate keys, YAML anchors and aliases, several
// documents in one file, and oversized or binary files are all errors. JSON
// files are read by the same parser, so a JSON spec and the equivalent YAML
// spec give the same Model.
//
// Every error about a file is a *SpecError carrying the file, line and field;
// its kind is one of the sentinel errors (ErrUnknownField, ErrWrongType, ...)
// or one of verify's digest errors, checked with errors.Is.
//
// Credentials are never read from spec files. No field for them exists, and an
// unknown field whose name looks like one is reported with a pointer to the
// environment, credential files or systemd credentials, without echoing its
// value.
package desired
