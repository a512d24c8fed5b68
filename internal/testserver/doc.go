// Package testserver holds what the loopback test servers share: a
// throwaway certificate authority and the leaf certificates it issues, so a
// test can trust an nginx, a Hub fixture and its storage host through one
// CertPool or one PEM file (SSL_CERT_FILE for subprocesses).
//
// The servers themselves live in subpackages: nginx runs the real nginx
// binary over a directory, hubtest reproduces the Hugging Face Hub's HTTP
// API and its redirect to a storage host.
package testserver
