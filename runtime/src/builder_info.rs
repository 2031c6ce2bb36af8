//! What a builder holds, as `pack builder inspect` shows it: each
//! buildpack's id, version, source and component digest, then the order.
//! Components are read, not compiled; registry buildpacks are described
//! from `builder.lock` (their pinned digest), never pulled to be listed.

use serde::Serialize;

use crate::builder::{Builder, BuildpackSource, GroupMember};
use crate::config_file::ConfigFileError;
use crate::lock::BuilderLock;
use crate::manifest::{BuildpackManifest, ManifestError};
use crate::oci::Digest;

#[derive(Debug, thiserror::Error)]
pub enum BuilderInfoError {
    #[error("{path}: {source}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Lock(#[from] ConfigFileError),
}

#[derive(Debug, Clone, Serialize)]
pub struct BuilderInfo {
    /// The builder file, or `built-in`.
    pub builder: String,
    pub run_image: Option<String>,
    /// `[build] image`, and the digest builder.lock pins it to.
    pub build_image: Option<PinnedImage>,
    pub buildpacks: Vec<BuildpackRow>,
    pub order: Vec<Vec<OrderMember>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PinnedImage {
    pub reference: String,
    /// `None` until a build has pinned it in builder.lock.
    pub digest: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildpackRow {
    /// The id the component declares (for an unresolved registry entry,
    /// the id builder.toml gives, if any).
    pub id: Option<String>,
    pub version: Option<String>,
    /// `builtin:ID`, the `.wasm` path, or the `docker://` uri.
    pub source: String,
    /// sha256 of the component; `None` for a registry buildpack not yet
    /// pinned in builder.lock.
    pub digest: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderMember {
    pub id: String,
    pub version: Option<String>,
    pub optional: bool,
}

fn row(bytes: &[u8], source: String) -> Result<BuildpackRow, BuilderInfoError> {
    let manifest = BuildpackManifest::from_component(bytes, &source)?;
    Ok(BuildpackRow {
        id: Some(manifest.buildpack.id.to_string()),
        version: Some(manifest.buildpack.version),
        source,
        digest: Some(Digest::of(bytes).to_string()),
    })
}

fn builtin(id: &str) -> Result<BuildpackRow, BuilderInfoError> {
    let bytes = crate::embedded::component(id).expect("a built-in id");
    row(bytes, format!("{}{id}", crate::embedded::URI_SCHEME))
}

fn order(groups: &[Vec<GroupMember>]) -> Vec<Vec<OrderMember>> {
    groups
        .iter()
        .map(|g| {
            g.iter()
                .map(|m| OrderMember {
                    id: m.id.to_string(),
                    version: m.version.clone(),
                    optional: m.optional,
                })
                .collect()
        })
        .collect()
}

/// Describe `builder`, or the built-in builder when `None`.
pub fn describe(builder: Option<&Builder>) -> Result<BuilderInfo, BuilderInfoError> {
    let Some(b) = builder else {
        let buildpacks = crate::embedded::BUILDPACKS
            .iter()
            .map(|(name, _)| builtin(name.trim_start_matches("embedded:")))
            .collect::<Result<_, _>>()?;
        return Ok(BuilderInfo {
            builder: "built-in".into(),
            run_image: Some("scratch".into()),
            build_image: None,
            buildpacks,
            order: order(&crate::embedded::order()),
        });
    };
    let lock = BuilderLock::load(&BuilderLock::path_for(&b.path))?;
    let mut buildpacks = Vec::new();
    for (declared, source) in &b.buildpacks {
        buildpacks.push(match source {
            BuildpackSource::Builtin(id) => builtin(id.as_str())?,
            BuildpackSource::File(path) => {
                let bytes = std::fs::read(path).map_err(|source| BuilderInfoError::Read {
                    path: path.clone(),
                    source,
                })?;
                row(&bytes, path.display().to_string())?
            }
            BuildpackSource::Registry { uri, .. } => BuildpackRow {
                id: declared.as_ref().map(ToString::to_string),
                version: None,
                source: uri.clone(),
                digest: lock.get(uri).map(|l| l.component.to_string()),
            },
        });
    }
    Ok(BuilderInfo {
        builder: b.path.display().to_string(),
        run_image: b.run_image.clone(),
        build_image: b.build_image.as_ref().map(|(reference, _)| PinnedImage {
            reference: reference.clone(),
            digest: lock
                .build_image
                .as_ref()
                .filter(|l| l.reference == *reference)
                .map(|l| l.digest.to_string()),
        }),
        buildpacks,
        order: order(&b.order),
    })
}
