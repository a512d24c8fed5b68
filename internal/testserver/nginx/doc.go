// Package nginx runs the real nginx binary over a directory for tests that
// download from a web server as users meet one: static files with strong
// ETags, Last-Modified, single and multiple byte ranges, sendfile, and an
// optional per-connection rate limit that keeps a transfer in flight long
// enough to kill a client in the middle of it.
//
// Every server is a child process of the test with its own configuration,
// logs and temporary directories under one prefix directory; nothing under
// /etc/nginx or /var is read or written. The access log records each
// request's path, status, Range header and body bytes, so a test can check
// how much a resumed download really transferred.
package nginx
