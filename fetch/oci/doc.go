// Package oci is the fetcher for oci:// references: model artifacts stored
// in an OCI registry (distribution, Harbor, Zot, ECR, GHCR, ...), pulled with
// the registry's HTTP API through oras-go.
//
// A reference names a repository and either a tag or a manifest digest. A
// tag is resolved to the digest of the manifest it points at when fetched,
// and that digest is what the result records (Validators.OCIDigest), so the
// catalog always says exactly which artifact is on disk. The manifest's
// bytes are checked against that digest, and every layer against the digest
// the manifest gives it, so a registry or a mirror in between cannot change
// one byte unnoticed.
//
// Each layer is one file of the model. Its path inside models/<name>/ comes
// from the layer's org.opencontainers.image.title annotation (what
// `oras push` writes), or for ModelPack-style layers from
// org.cncf.model.filepath. Paths that would leave the model directory are
// refused. Layers that are archives (ModelPack and KitOps .tar layers,
// directories pushed by oras) are refused with ErrUnsupportedArtifact rather
// than stored unpacked under a wrong name. An artifact of one layer becomes
// a file model (models/<name>/<title>); one of several layers, or any
// artifact fetched with include patterns, a directory model.
//
// Layers download through the download engine: ranged, parallel and
// resumable, hashed while they arrive. Blobs are content-addressed, so a
// layer another model already brought into blobs/ is linked, not fetched
// again, and a partial layer resumes whichever repository it is pulled
// from next.
//
// Registry credentials come from Docker's config file format (auths,
// credHelpers, credsStore), read when a registry asks for them, so that
// rotated credentials are picked up without a restart. Plain HTTP is used
// only for registries on loopback addresses, as Docker does, and for those
// listed in Config.Insecure.
package oci
