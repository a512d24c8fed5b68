// Package s3 is the fetcher for s3:// references: Amazon S3 and any
// S3-compatible store (MinIO, Ceph RGW, versitygw, R2, ...), through the
// minio-go client.
//
// s3://BUCKET/KEY is one object, laid out as models/<name>/<base name of
// KEY>. s3://BUCKET/PREFIX/ (a trailing slash) is a multi-file model such
// as a safetensors directory: every object below the prefix, optionally
// filtered by include patterns, laid out under models/<name>/ with its
// path relative to the prefix. Keys that would land outside the model
// directory are refused.
//
// Objects are read through package download: in parallel byte ranges,
// each guarded by the ETag seen when the download began (If-Match), so a
// replaced object restarts the download rather than splicing two versions;
// resumed after a crash from the ingest checkpoint. A version_id in the
// spec pins the object version. When the object carries a sha256 — its S3
// full-object ChecksumSHA256, or x-amz-meta-sha256 user metadata — the
// bytes are verified against it as well as against expected_digest.
//
// Endpoint, region and addressing style come from Config, which
// ConfigFromEnv fills from the standard AWS variables. Credentials are
// looked up in a fixed order (see New) and never come from a spec file.
package s3
