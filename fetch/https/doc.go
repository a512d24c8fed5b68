// Package https is the fetcher for https:// (and, when allowed, http://)
// model references, and the HTTP source that the Hugging Face fetcher
// reuses. Downloads resume with Range and If-Range, run in parallel ranged
// parts, detect stalls instead of imposing a whole-request timeout, and land
// in the content store through package download.
package https
