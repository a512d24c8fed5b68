// Package fetch turns a model reference into verified bytes on local disk.
//
// ParseRef reads the reference forms an operator writes (file paths, hf:,
// https://, s3://, oci://) into a typed Ref whose ID is the same however the
// reference was spelled. Each scheme has one Fetcher in its own subpackage;
// cmd/agent registers them explicitly in a Registry. Asking for a scheme no
// Fetcher is registered for returns ErrUnsupportedScheme.
package fetch
