// Package registry runs the real OCI distribution registry (Debian's
// docker-registry package, the CNCF distribution server) for tests that pull
// model artifacts as users meet them: manifests by tag and by digest, blobs
// with byte ranges and digest ETags, basic authentication from an htpasswd
// file, and 404s with the registry's own error codes.
//
// Every server is a child process of the test with its own configuration
// and filesystem storage in a temporary directory; nothing under /etc/docker
// or /var/lib/docker-registry is read or written, and the package's system
// service is never needed.
//
// Clients talk to the registry through a small reverse proxy on another
// loopback port. The bytes still come from the registry; the proxy only
// counts them per blob (so a test can tell how much a resumed download
// really transferred), slows chosen repositories down (so a download can be
// interrupted mid-way) and, on request, drops a connection after a number of
// bytes. Artifacts are pushed straight to the registry with oras-go, so
// pushes are not counted.
package registry
