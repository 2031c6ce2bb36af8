//! OCI images: digests, canonical JSON, reproducible layer tars, the image
//! layout on disk and registries.
//!
//! A crate of its own so that Cargo holds the arrow: the OCI side knows no
//! wasm engine (`cargo tree -p cascade-oci` has no wasmtime), and the engine
//! no OCI. Trees a guest wrote are read through [`cascade_fs`] only.

pub mod canonical;
pub mod compress;
pub mod credentials;
pub mod digest;
pub mod document;
pub mod layer;
pub mod layout;
pub mod paginate;
pub mod reference;
pub mod referrers;
pub mod registry;
pub mod store;

pub use digest::{Digest, DigestReader, DigestWriter, chain_id};
pub use layout::{Layout, LayoutError};
pub use reference::ImageRef;

pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Seconds since the epoch of 1980-01-01T00:00:01Z, the CNB normalised time
/// used for file mtimes and, without SOURCE_DATE_EPOCH, image `created`.
pub const NORMALIZED_EPOCH: u64 = 315_532_801;

/// The entry of an index's `manifests` for `platform` (os, arch); the first
/// without one.
pub(crate) fn platform_entry<'a>(
    children: &'a [document::Descriptor],
    platform: Option<(&str, &str)>,
) -> Option<&'a document::Descriptor> {
    match platform {
        Some((os, arch)) => children.iter().find(|m| {
            m.platform()
                .as_ref()
                .is_some_and(|p| p.os().to_string() == os && p.architecture().to_string() == arch)
        }),
        None => children.first(),
    }
}

/// The digests an index's `manifests` name, one per platform.
pub(crate) fn entry_digests(children: &[document::Descriptor]) -> Vec<Digest> {
    children
        .iter()
        .filter_map(|m| document::digest_of(m, "index entry").ok())
        .collect()
}

/// The OCI media type for a layer given in an OCI or Docker manifest: the
/// bytes are the same, only the name differs.
pub fn oci_layer_media_type(media_type: &str) -> &str {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => MEDIA_LAYER_GZIP,
        "application/vnd.docker.image.rootfs.diff.tar" => MEDIA_LAYER_TAR,
        other => other,
    }
}
