// Package hf is the fetcher for hf: references: files and repositories of
// the Hugging Face Hub, through the Hub's HTTP API, with no Python tooling.
//
// A file is resolved with a HEAD of /{repo}/resolve/{revision}/{path}: the
// Hub answers with the commit the revision points at (X-Repo-Commit), which
// pins the download and is recorded, and for LFS files the sha256 of the
// content (X-Linked-Etag), which the download is verified against, and a
// redirect to its storage host, which is followed without the token. A
// repository (hf:ORG/REPO with include patterns) is listed through the tree
// API at the pinned commit and its files fetched in parallel, each verified.
package hf
