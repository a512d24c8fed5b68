package desired

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors that classify what is wrong with a spec file. They reach
// callers wrapped in a *SpecError; check them with errors.Is. Digest problems
// are classified by verify.ErrUnknownAlgo and verify.ErrMalformedDigest
// instead.
var (
	// ErrUnknownField means the file sets a field that does not exist, most
	// often a typo. The message suggests the closest known field.
	ErrUnknownField = errors.New("unknown field")
	// ErrMissingField means a required field is absent or empty, or the file
	// holds no model at all.
	ErrMissingField = errors.New("missing required field")
	// ErrWrongType means a value has the wrong YAML type, such as a quoted
	// "true" where a boolean is expected or a mapping where a string is.
	ErrWrongType = errors.New("wrong type")
	// ErrDuplicateName means two spec files declare the same model name.
	// ReadDir reports every file involved and returns none of their models.
	ErrDuplicateName = errors.New("duplicate model name")
	// ErrTooLarge means the file is larger than MaxSpecSize.
	ErrTooLarge = errors.New("spec file too large")
	// ErrInvalidName means the model name, given or taken from the file name,
	// is not usable as a file name for the handoff file.
	ErrInvalidName = errors.New("invalid model name")
	// ErrSyntax means the file is not a single valid YAML or JSON document
	// this package accepts: a parse error, invalid UTF-8, NUL bytes, duplicate
	// keys, anchors or aliases, or several documents.
	ErrSyntax = errors.New("syntax error")
)

// SpecError describes one problem with one spec file. Every error this package
// returns about a file is a *SpecError; Unwrap gives the underlying cause,
// which matches one of the package's sentinels, a verify digest error, or an
// fs error (fs.ErrNotExist, fs.ErrPermission) when the file could not be read.
type SpecError struct {
	// File is the spec file's path as it was passed to Parse or ParseFile.
	// ReadDir passes absolute paths, so there it equals Model.File.
	File string
	// Line is the 1-based line of the offending text, or 0 when the problem
	// is not tied to a line (an empty or oversized file, a missing field).
	Line int
	// Field is the dotted path of the offending field, such as
	// "expected_digest.value", or "" when the problem is not about a field.
	Field string
	// Err is the cause; its message says what to do about it.
	Err error
}

// Error formats the problem as FILE:LINE: FIELD: CAUSE, leaving out the
// parts that are unknown, so that editors and terminals can jump to it.
func (e *SpecError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid spec")
	}
	return b.String()
}

// Unwrap returns the cause so that errors.Is and errors.As see through the
// SpecError.
func (e *SpecError) Unwrap() error { return e.Err }
