// Package s3srv runs a real S3 server, versitygw over a temporary directory
// (its posix backend, with bucket versioning available), for tests that
// fetch from S3 as users meet it: SigV4 authentication, HEAD with checksum
// mode, ranged GETs with If-Match, versioned objects and paginated
// listings.
//
// The fetcher under test talks to a small reverse proxy in front of the
// server. The proxy passes requests through unchanged (the Host header
// included, so signatures stay valid) and only counts the body bytes it
// relays per object, so a test can check how much a resumed download
// really transferred; on request it slows a response down or cuts it
// short, the faults a real network produces. The bytes themselves always
// come from the real server.
package s3srv
