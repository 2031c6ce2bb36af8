//! Where images and blobs live, with one vocabulary for layouts and
//! registries: read an image (manifest + config, index resolved by
//! platform), make a blob present in a destination (hard link, copy, HEAD,
//! mount, or upload — cheapest first), and store config and manifest,
//! moving a tag last.

use std::path::Path;
use std::sync::Arc;

use super::document::{self, ImageConfig, ImageIndex, ImageManifest};
use super::layout::{Layout, LayoutError};
use super::registry::{Registry, RegistryError};
use super::{Digest, ImageRef, MEDIA_DOCKER_LIST, MEDIA_INDEX, MEDIA_MANIFEST};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{image}: {message}")]
    Invalid { image: String, message: String },
    #[error("{image}: a registry reference needs the registry client (internal error)")]
    NoClient { image: String },
}

/// Where an image's blobs can be fetched from.
#[derive(Debug, Clone)]
pub enum BlobHome {
    None,
    Layout(Layout),
    Registry(oci_client::Reference),
}

/// An image read from a layout or registry.
#[derive(Debug, Clone)]
pub struct ReadImage {
    /// The manifest's digest (for `platform`, when the reference names an
    /// index).
    pub digest: Digest,
    /// What the reference names: `digest`, or the index it was picked from.
    pub named: Digest,
    /// The manifests of that index, one per platform (empty without one).
    pub platforms: Vec<Digest>,
    pub manifest: ImageManifest,
    pub config: ImageConfig,
    pub home: BlobHome,
}

impl ReadImage {
    /// The layers' descriptors with their digests, base first.
    pub fn layers(&self) -> Result<Vec<(Digest, &document::Descriptor)>, document::DocumentError> {
        self.manifest
            .layers()
            .iter()
            .enumerate()
            .map(|(i, d)| Ok((document::digest_of(d, &format!("manifest layers[{i}]"))?, d)))
            .collect()
    }
}

/// Counts of what making blobs present cost, for reports and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Transfers {
    /// Already there (HEAD or file present).
    pub present: u32,
    /// Linked or copied between layouts.
    pub linked: u32,
    /// Mounted from another repository of the same registry.
    pub mounted: u32,
    /// Downloaded from a registry.
    pub downloaded: u32,
    /// Uploaded to a registry.
    pub uploaded: u32,
    /// Written new into a layout (layers a build made, configs, manifests).
    pub written: u32,
}

impl Transfers {
    /// One line for progress output: every count, zeros included.
    pub fn summary(&self) -> String {
        format!(
            "blobs: {} written, {} present, {} linked, {} mounted, {} downloaded, {} uploaded",
            self.written, self.present, self.linked, self.mounted, self.downloaded, self.uploaded
        )
    }

    pub fn add(&mut self, other: &Transfers) {
        self.present += other.present;
        self.linked += other.linked;
        self.mounted += other.mounted;
        self.downloaded += other.downloaded;
        self.uploaded += other.uploaded;
        self.written += other.written;
    }
}

/// The registry client (when any reference is a registry) and the blob
/// cache pulled blobs and staged exports live in.
pub struct Oci {
    pub registry: Option<Arc<Registry>>,
    /// A layout under the cache dir: blobs by digest, shared by builds.
    pub cache: Layout,
    /// The cache dir itself (build caches live under `images/`).
    pub cache_root: std::path::PathBuf,
}

impl Oci {
    pub fn new(cache_dir: &Path, registry: Option<Arc<Registry>>) -> Result<Self, StoreError> {
        Ok(Self {
            registry,
            cache: Layout::open_or_create(&cache_dir.join("blobs"))?,
            cache_root: cache_dir.to_path_buf(),
        })
    }

    fn client(&self, image: &str) -> Result<&Registry, StoreError> {
        self.registry
            .as_deref()
            .ok_or_else(|| StoreError::NoClient {
                image: image.into(),
            })
    }

    /// Read the image `reference` names; `platform` picks from an index.
    pub fn read(
        &self,
        reference: &ImageRef,
        platform: Option<(&str, &str)>,
    ) -> Result<ReadImage, StoreError> {
        let name = reference.to_string();
        let invalid = |message: String| StoreError::Invalid {
            image: name.clone(),
            message,
        };
        match reference {
            ImageRef::Scratch => Err(invalid("scratch has no manifest".into())),
            ImageRef::Layout { dir, tag } => {
                let layout = Layout::open(dir)?;
                let found = layout.resolve(tag.as_deref(), platform)?;
                let manifest: ImageManifest = document::parse(&found.bytes, "manifest")
                    .map_err(|e| invalid(e.to_string()))?;
                let config = layout.read_blob(&config_digest(&manifest).map_err(invalid)?)?;
                let config =
                    document::parse(&config, "config").map_err(|e| invalid(e.to_string()))?;
                Ok(ReadImage {
                    digest: found.digest,
                    named: found.named,
                    platforms: found.platforms,
                    manifest,
                    config,
                    home: BlobHome::Layout(layout),
                })
            }
            ImageRef::Registry(r) => {
                let client = self.client(&name)?;
                let (mut bytes, mut digest) = client.manifest(r)?;
                let named = digest.clone();
                let mut platforms = Vec::new();
                if is_index(&bytes) {
                    let index: ImageIndex = document::parse(&bytes, "image index")
                        .map_err(|e| invalid(e.to_string()))?;
                    let child =
                        super::platform_entry(index.manifests(), platform).ok_or_else(|| {
                            invalid("image index has no image for the requested platform".into())
                        })?;
                    let child_digest = document::digest_of(child, "image index entry")
                        .map_err(|e| invalid(e.to_string()))?;
                    let child_ref = r.clone_with_digest(child_digest.to_string());
                    platforms = super::entry_digests(index.manifests());
                    (bytes, digest) = client.manifest(&child_ref)?;
                }
                let manifest: ImageManifest =
                    document::parse(&bytes, "manifest").map_err(|e| invalid(e.to_string()))?;
                let config = client.blob_bytes(r, &config_digest(&manifest).map_err(invalid)?)?;
                let config =
                    document::parse(&config, "config").map_err(|e| invalid(e.to_string()))?;
                let repo = oci_client::Reference::with_tag(
                    r.registry().into(),
                    r.repository().into(),
                    "latest".into(),
                );
                Ok(ReadImage {
                    digest,
                    named,
                    platforms,
                    manifest,
                    config,
                    home: BlobHome::Registry(repo),
                })
            }
        }
    }

    /// A small blob of an image (an SBOM layer), checked against its digest:
    /// from the blob cache when it is there, else from `home`.
    pub fn blob_bytes(&self, digest: &Digest, home: &BlobHome) -> Result<Vec<u8>, StoreError> {
        if self.cache.blob_path(digest).is_file() {
            return Ok(self.cache.read_blob(digest)?);
        }
        match home {
            BlobHome::Layout(l) => Ok(l.read_blob(digest)?),
            BlobHome::Registry(r) => Ok(self.client(&r.whole())?.blob_bytes(r, digest)?),
            BlobHome::None => Err(LayoutError::MissingBlob {
                dir: self.cache.dir().into(),
                digest: digest.clone(),
            }
            .into()),
        }
    }

    /// Where blob `digest` of `home` is on this machine (its layout or the
    /// blob cache); with `pull`, a registry blob is downloaded into the
    /// cache first. `None` when it is not here and `pull` is false.
    pub fn local_blob(
        &self,
        digest: &Digest,
        home: &BlobHome,
        pull: bool,
        t: &mut Transfers,
    ) -> Result<Option<std::path::PathBuf>, StoreError> {
        let cached = self.cache.blob_path(digest);
        if cached.is_file() {
            return Ok(Some(cached));
        }
        match home {
            BlobHome::Layout(l) if l.blob_path(digest).is_file() => Ok(Some(l.blob_path(digest))),
            BlobHome::Registry(r) if pull => {
                let path =
                    self.client(&r.whole())?
                        .blob_to_dir(r, digest, &self.cache.blobs_dir())?;
                t.downloaded += 1;
                Ok(Some(path))
            }
            _ => Ok(None),
        }
    }

    /// Make blob `digest` present in `layout`, from `home` (through the
    /// blob cache when it comes from a registry).
    pub fn ensure_in_layout(
        &self,
        layout: &Layout,
        digest: &Digest,
        home: &BlobHome,
        t: &mut Transfers,
    ) -> Result<(), StoreError> {
        if layout.blob_path(digest).is_file() {
            t.present += 1;
            return Ok(());
        }
        match home {
            BlobHome::Layout(from) => layout.copy_blob_from(from, digest)?,
            BlobHome::Registry(r) => {
                if !self.cache.blob_path(digest).is_file() {
                    self.client(&r.whole())?
                        .blob_to_dir(r, digest, &self.cache.blobs_dir())?;
                    t.downloaded += 1;
                }
                layout.copy_blob_from(&self.cache, digest)?;
            }
            BlobHome::None => {
                return Err(LayoutError::MissingBlob {
                    dir: layout.dir().into(),
                    digest: digest.clone(),
                }
                .into());
            }
        }
        t.linked += 1;
        Ok(())
    }

    /// Make blob `digest` present in the repository of `target`: nothing if
    /// it is there, a mount when `home` is another repository of the same
    /// registry, else an upload from `local` (or from the cache, after a
    /// download).
    pub fn ensure_in_registry(
        &self,
        target: &oci_client::Reference,
        digest: &Digest,
        home: &BlobHome,
        local: Option<&Layout>,
        t: &mut Transfers,
    ) -> Result<(), StoreError> {
        let client = self.client(&target.whole())?;
        let mount_from = match home {
            BlobHome::Registry(from)
                if from.resolve_registry() == target.resolve_registry()
                    && from.repository() != target.repository() =>
            {
                Some(from)
            }
            _ => None,
        };
        // A mount is asked for straight away while the registry takes them
        // ([`Registry::mounts_first`]), else after a HEAD says it is needed.
        let first = mount_from.filter(|_| client.mounts_first(target));
        if let Some(from) = first
            && client.mount(target, from, digest)
        {
            t.mounted += 1;
            return Ok(());
        }
        if client.has_blob(target, digest)? {
            t.present += 1;
            return Ok(());
        }
        if let Some(from) = mount_from.filter(|_| first.is_none())
            && client.mount(target, from, digest)
        {
            t.mounted += 1;
            return Ok(());
        }
        let file = [local, Some(&self.cache)]
            .into_iter()
            .flatten()
            .map(|l| l.blob_path(digest))
            .find(|p| p.is_file());
        let file = match (file, home) {
            (Some(f), _) => f,
            (None, BlobHome::Layout(l)) if l.blob_path(digest).is_file() => l.blob_path(digest),
            (None, BlobHome::Registry(from)) => {
                t.downloaded += 1;
                self.client(&from.whole())?
                    .blob_to_dir(from, digest, &self.cache.blobs_dir())?
            }
            _ => {
                return Err(LayoutError::MissingBlob {
                    dir: self.cache.dir().into(),
                    digest: digest.clone(),
                }
                .into());
            }
        };
        client.push_blob_file(target, digest, &file)?;
        t.uploaded += 1;
        Ok(())
    }

    /// Whether the registry of `target` answers for its repository.
    pub fn check_reachable(&self, target: &oci_client::Reference) -> Result<(), StoreError> {
        Ok(self.client(&target.whole())?.check_reachable(target)?)
    }

    /// Run `write` as this process's only writer to `image`'s repository
    /// (see [`Registry::writing`]); layouts lock their own index.
    pub fn writing<T>(&self, image: &ImageRef, write: impl FnOnce() -> T) -> T {
        match (image, self.registry.as_deref()) {
            (ImageRef::Registry(r), Some(client)) => client.writing(r, write),
            _ => write(),
        }
    }

    /// Store config bytes and a manifest as `output`'s image. Every blob the
    /// manifest names must be present already; the tag moves last.
    pub fn put_image(
        &self,
        output: &ImageRef,
        config: &[u8],
        manifest: &[u8],
        platform: (&str, &str),
        t: &mut Transfers,
    ) -> Result<Digest, StoreError> {
        let digest = Digest::of(manifest);
        match output {
            ImageRef::Scratch => Err(StoreError::Invalid {
                image: "scratch".into(),
                message: "cannot be written".into(),
            }),
            ImageRef::Layout { dir, tag } => {
                let layout = Layout::open_or_create(dir)?;
                for bytes in [config, manifest] {
                    if layout.blob_path(&Digest::of(bytes)).is_file() {
                        t.present += 1;
                    } else {
                        layout.write_blob(bytes)?;
                        t.written += 1;
                    }
                }
                let mut descriptor =
                    document::descriptor(MEDIA_MANIFEST, &digest, manifest.len() as u64);
                descriptor.set_platform(Some(document::platform(platform.0, platform.1)));
                layout.set_tag(tag.as_deref().unwrap_or("latest"), descriptor)?;
                Ok(digest)
            }
            ImageRef::Registry(r) => {
                let client = self.client(&r.whole())?;
                client.push_blob_bytes(r, &Digest::of(config), config)?;
                t.uploaded += 1;
                client.push_manifest(r, manifest, MEDIA_MANIFEST)?;
                Ok(digest)
            }
        }
    }
}

/// Whether a manifest document is an image index (OCI or Docker's list),
/// by its media type or, lacking one, by its `manifests`.
pub(crate) fn is_index(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(bytes).is_ok_and(|p| {
        matches!(
            p.media_type.as_deref(),
            Some(MEDIA_INDEX | MEDIA_DOCKER_LIST)
        ) || p.manifests.is_some()
    })
}

fn config_digest(manifest: &ImageManifest) -> Result<Digest, String> {
    document::digest_of(manifest.config(), "manifest config").map_err(|e| e.to_string())
}

/// The registry hosts among `refs`, for [`Registry::new`].
pub fn registry_hosts<'a>(refs: impl IntoIterator<Item = &'a ImageRef>) -> Vec<String> {
    refs.into_iter()
        .filter_map(|r| match r {
            ImageRef::Registry(r) => Some(r.resolve_registry().to_owned()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn indexes_are_told_from_manifests() {
        assert!(super::is_index(
            br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#
        ));
        assert!(super::is_index(br#"{"schemaVersion":2,"manifests":[]}"#));
        assert!(!super::is_index(br#"{"schemaVersion":2,"layers":[]}"#));
        assert!(!super::is_index(b"[]"));
    }
}
