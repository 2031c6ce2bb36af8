//! Run images: the base an app image is built on — `scratch` (built in,
//! empty), an image in an OCI layout, or one in a registry.

use crate::oci::document::{self, ImageConfig, RunConfig};
use crate::oci::store::{BlobHome, Oci, StoreError};
use crate::oci::{Digest, ImageRef, oci_layer_media_type};

/// A layer of the run image, as its manifest describes it.
#[derive(Debug, Clone)]
pub struct BaseLayer {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
}

#[derive(Debug, Clone)]
pub struct RunImage {
    pub reference: ImageRef,
    /// Manifest digest; `None` for scratch.
    pub manifest_digest: Option<Digest>,
    /// The image config (unknown fields kept).
    pub config: ImageConfig,
    pub layers: Vec<BaseLayer>,
    /// Where the layers' blobs are.
    pub home: BlobHome,
}

/// The run image resolved once per platform for many rebases (a fleet, an
/// audit): its manifest and config are fetched once, not once per image,
/// and every image of the run lands on the same digest even if the tag
/// moves meanwhile. It also remembers which repositories were given the
/// run image's layers in this run, so that the next image of the same
/// repository needs no mount.
#[derive(Debug, Default)]
pub struct RunImages {
    by_platform: std::sync::Mutex<std::collections::BTreeMap<(String, String, String), RunImage>>,
    /// References read ahead already: see [`Self::warm`].
    warmed: std::sync::Mutex<std::collections::HashSet<String>>,
    /// `(repository, layer)` pairs made present in this run.
    given: std::sync::Mutex<std::collections::HashSet<(String, Digest)>>,
    /// The filesystem of each run image read for a stack-contract check,
    /// by the diff_ids of its layers.
    files: std::sync::Mutex<
        std::collections::HashMap<Vec<Digest>, std::sync::Arc<crate::image_files::Files>>,
    >,
}

impl RunImages {
    /// Whether `repository` (`registry/name`) was given `layer` earlier in
    /// this run. Kept per run, not per process: a `--watch` round starts
    /// afresh, so a registry's garbage collection between rounds cannot
    /// leave a manifest naming a blob that is gone.
    pub fn given(&self, repository: &str, layer: &Digest) -> bool {
        self.given
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&(repository.to_owned(), layer.clone()))
    }

    /// Note that `repository` holds `layer` now.
    pub fn record_given(&self, repository: &str, layer: &Digest) {
        self.given
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((repository.to_owned(), layer.clone()));
    }

    /// Read `reference` ahead of need, for Linux on this machine's CPU
    /// (the platform nearly every image is for), once per reference: a
    /// rebase calls this while it reads the app image, whose config is what
    /// says which platform to load, so the two reads overlap. A failure
    /// or a platform guessed wrong is not kept and not repeated; the
    /// checked [`Self::load`] that follows reports its own.
    pub fn warm(&self, reference: &ImageRef, oci: &Oci) {
        let first = self
            .warmed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(reference.to_string());
        if first {
            let _ = self.load(
                reference,
                ("linux", crate::build_image::host_platform().1),
                oci,
            );
        }
    }

    /// The files of `run` (its layers' listings, from the blob cache;
    /// registry layers are pulled once), once per run.
    pub fn files(
        &self,
        run: &RunImage,
        oci: &Oci,
    ) -> Result<std::sync::Arc<crate::image_files::Files>, RunImageError> {
        let key: Vec<Digest> = run.layers.iter().map(|l| l.diff_id.clone()).collect();
        let mut known = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(f) = known.get(&key) {
            return Ok(f.clone());
        }
        let name = run.reference.to_string();
        let mut files = crate::image_files::Files::default();
        let mut t = crate::oci::store::Transfers::default();
        for l in &run.layers {
            let path = oci
                .local_blob(&l.digest, &run.home, true, &mut t)
                .map_err(|source| RunImageError::Store {
                    reference: name.clone(),
                    source,
                })?
                .ok_or_else(|| RunImageError::Invalid {
                    reference: name.clone(),
                    message: format!("layer {} is not on this machine", l.digest),
                })?;
            let listing = crate::image_files::list_cached(
                &path,
                &l.media_type,
                (&l.digest, &l.diff_id),
                &oci.cache_root,
            )
            .map_err(|e| RunImageError::Invalid {
                reference: name.clone(),
                message: format!("reading layer {}: {e}", l.digest),
            })?;
            files.apply(&listing);
        }
        let files = std::sync::Arc::new(files);
        known.insert(key, files.clone());
        Ok(files)
    }

    /// [`RunImage::load`], or what it gave for the same reference and
    /// platform before. A failure is not kept: the next image tries again.
    pub fn load(
        &self,
        reference: &ImageRef,
        platform: (&str, &str),
        oci: &Oci,
    ) -> Result<RunImage, RunImageError> {
        let key = (
            reference.to_string(),
            platform.0.to_owned(),
            platform.1.to_owned(),
        );
        // Held while loading: the images that need it wait for the one
        // fetch instead of each making their own.
        let mut loaded = self
            .by_platform
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(run) = loaded.get(&key) {
            return Ok(run.clone());
        }
        let run = RunImage::load(reference, platform, oci)?;
        loaded.insert(key, run.clone());
        Ok(run)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunImageError {
    #[error("run image {reference}: {source}")]
    Store {
        reference: String,
        #[source]
        source: StoreError,
    },
    #[error("run image {reference}: {message}")]
    Invalid { reference: String, message: String },
}

impl RunImage {
    /// Resolve `reference`; `platform` (os, arch) picks from an image index
    /// and is the platform of `scratch`. Only manifest and config are read.
    pub fn load(
        reference: &ImageRef,
        platform: (&str, &str),
        oci: &Oci,
    ) -> Result<Self, RunImageError> {
        let name = reference.to_string();
        let invalid = |message: String| RunImageError::Invalid {
            reference: name.clone(),
            message,
        };
        if *reference == ImageRef::Scratch {
            return Ok(Self {
                reference: reference.clone(),
                manifest_digest: None,
                config: ImageConfig {
                    architecture: platform.1.to_owned(),
                    os: platform.0.to_owned(),
                    config: Some(RunConfig::default()),
                    ..ImageConfig::default()
                },
                layers: Vec::new(),
                home: BlobHome::None,
            });
        }
        let image = oci
            .read(reference, Some(platform))
            .map_err(|source| RunImageError::Store {
                reference: name.clone(),
                source,
            })?;
        let diff_ids = &image.config.rootfs.diff_ids;
        let descs = image.layers().map_err(|e| invalid(e.to_string()))?;
        if diff_ids.len() != descs.len() {
            return Err(invalid(format!(
                "manifest has {} layers but config lists {} diff_ids",
                descs.len(),
                diff_ids.len()
            )));
        }
        let layers = descs
            .iter()
            .zip(diff_ids)
            .map(|((digest, d), diff_id)| BaseLayer {
                media_type: oci_layer_media_type(&document::media_type_of(d)).to_owned(),
                digest: digest.clone(),
                size: d.size(),
                diff_id: diff_id.clone(),
            })
            .collect();
        Ok(Self {
            reference: reference.clone(),
            manifest_digest: Some(image.digest),
            config: image.config,
            layers,
            home: image.home,
        })
    }

    pub fn os(&self) -> &str {
        Some(self.config.os.as_str())
            .filter(|s| !s.is_empty())
            .unwrap_or("linux")
    }

    pub fn arch(&self) -> &str {
        Some(self.config.architecture.as_str())
            .filter(|s| !s.is_empty())
            .unwrap_or("amd64")
    }

    /// diff_id of the last base layer (CNB `runImage.topLayer`).
    pub fn top_layer(&self) -> Option<&Digest> {
        self.layers.last().map(|l| &l.diff_id)
    }

    /// When this base was made, as the app image records it.
    pub fn age(&self) -> BaseAge {
        let text = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_owned);
        BaseAge {
            created: text(self.config.created.as_deref()),
            version: text(self.config.label(VERSION_LABEL)),
        }
    }
}

/// The OCI annotation/label a base's publisher versions it by.
pub const VERSION_LABEL: &str = "org.opencontainers.image.version";

/// How old a base is: its config's `created` time and its
/// `org.opencontainers.image.version` label. Recorded in the app image
/// (label `dev.cascade.run-image`) so a rebase can tell a downgrade without
/// reading the old base again.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BaseAge {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl BaseAge {
    /// Why `self` is older than `than`, or `None` when it is not or nothing
    /// tells. The `created` times decide when both parse and differ; when
    /// they are equal or missing (reproducible bases often pin `created` to
    /// the epoch), the version labels decide, compared piece by piece with
    /// numbers as numbers (`1.10` > `1.9`).
    pub fn older_than(&self, than: &BaseAge) -> Option<String> {
        let parse = |s: &Option<String>| {
            s.as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        };
        if let (Some(new), Some(old)) = (parse(&self.created), parse(&than.created))
            && new != old
        {
            return (new < old).then(|| {
                format!(
                    "created {} before the base it sits on ({})",
                    self.created.as_deref().unwrap_or_default(),
                    than.created.as_deref().unwrap_or_default()
                )
            });
        }
        let (Some(new), Some(old)) = (&self.version, &than.version) else {
            return None;
        };
        (compare_versions(new, old) == std::cmp::Ordering::Less)
            .then(|| format!("{VERSION_LABEL} {new} is below {old}, the base it sits on"))
    }
}

/// Versions compared by their runs of digits (as numbers) and of other
/// characters (as text), in order.
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn pieces(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (pa, pb) = (pieces(a), pieces(b));
    for (x, y) in pa.iter().zip(&pb) {
        let o = match (x, y) {
            ((true, x), (true, y)) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            ((_, x), (_, y)) => x.cmp(y),
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(created: Option<&str>, version: Option<&str>) -> BaseAge {
        BaseAge {
            created: created.map(Into::into),
            version: version.map(Into::into),
        }
    }

    #[test]
    fn created_decides_then_the_version_label() {
        let old = age(Some("2026-01-02T00:00:00Z"), Some("1.10"));
        let new = age(Some("2026-03-01T10:00:00+02:00"), Some("1.9"));
        assert!(
            new.older_than(&old).is_none(),
            "later created wins over the label"
        );
        assert!(old.older_than(&new).unwrap().contains("created 2026-01-02"));
        let epoch = Some("1970-01-01T00:00:00Z");
        let (v9, v10) = (age(epoch, Some("1.9")), age(epoch, Some("1.10")));
        assert!(v9.older_than(&v10).unwrap().contains("1.9 is below 1.10"));
        assert!(v10.older_than(&v9).is_none());
        assert!(age(None, None).older_than(&v10).is_none(), "nothing tells");
        assert!(
            age(None, Some("2024.05"))
                .older_than(&age(None, Some("2024.05")))
                .is_none()
        );
        assert_eq!(
            compare_versions("1.2.3", "1.2"),
            std::cmp::Ordering::Greater
        );
        assert_eq!(
            compare_versions("jammy-20240101", "jammy-20231201"),
            std::cmp::Ordering::Greater
        );
        assert_eq!(compare_versions("007", "7"), std::cmp::Ordering::Equal);
    }
}
