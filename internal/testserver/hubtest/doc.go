// Package hubtest is an in-process stand-in for the Hugging Face Hub: the
// parts of its HTTP API a download client uses, the redirect of large files
// to a separate storage host, and the faults tests need on demand.
//
// Two TLS servers run per Hub. The Hub itself answers on 127.0.0.1; the
// storage host (the CDN) answers on localhost, so the two differ by host
// name exactly as huggingface.co and its CDN do, which is what logic that
// must not forward a token across hosts compares. Both certificates come
// from one CA, trusted by Hub.CertPool and written to Hub.CAFile.
//
// Served endpoints (repository ids are always org/name):
//
//	GET|HEAD /{org}/{name}/resolve/{revision}/{path}
//	GET|HEAD /api/resolve-cache/models/{org}/{name}/{commit}/{path}   (with WithResolveCache)
//	GET      /api/models/{org}/{name}[?revision=...]
//	GET      /api/models/{org}/{name}/revision/{revision}[?blobs=true]
//	GET      /api/models/{org}/{name}/tree/{revision}[/{path}][?recursive=true][&cursor=...]
//
// A revision is a branch name or a full 40-hex commit id, either as one
// escaped segment ("refs%2Fpr%2F1") or spelled out over several.
//
// What the fixture reproduces, and what it assumes, is listed on Hub.
package hubtest
