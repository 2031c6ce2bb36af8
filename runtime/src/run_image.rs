//! Run images: the base an app image is built on — `scratch` (built in,
//! empty) or an image in an OCI layout.

use serde_json::{Value, json};

use crate::oci::layout::Layout;
use crate::oci::{Digest, ImageRef, LayoutError, oci_layer_media_type};

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
    /// The image config, kept as JSON so unknown fields survive.
    pub config: Value,
    pub layers: Vec<BaseLayer>,
    /// Where the layers' blobs are; `None` for scratch.
    pub layout: Option<Layout>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunImageError {
    #[error("run image {reference}: {source}")]
    Layout {
        reference: String,
        #[source]
        source: LayoutError,
    },
    #[error("run image {reference}: {message}")]
    Invalid { reference: String, message: String },
}

impl RunImage {
    /// Resolve `reference`; `platform` (os, arch) picks from an image index
    /// and is the platform of `scratch`.
    pub fn load(reference: &ImageRef, platform: (&str, &str)) -> Result<Self, RunImageError> {
        let name = reference.to_string();
        let invalid = |message: String| RunImageError::Invalid {
            reference: name.clone(),
            message,
        };
        match reference {
            ImageRef::Scratch => Ok(Self {
                reference: reference.clone(),
                manifest_digest: None,
                config: json!({
                    "architecture": platform.1,
                    "os": platform.0,
                    "config": {},
                    "rootfs": {"type": "layers", "diff_ids": []},
                }),
                layers: Vec::new(),
                layout: None,
            }),
            ImageRef::Layout { dir, tag } => {
                let wrap = |source| RunImageError::Layout {
                    reference: name.clone(),
                    source,
                };
                let layout = Layout::open(dir).map_err(wrap)?;
                let found = layout
                    .resolve(tag.as_deref(), Some(platform))
                    .map_err(wrap)?;
                let manifest: Value =
                    serde_json::from_slice(&found.bytes).map_err(|e| invalid(e.to_string()))?;
                let config_digest: Digest = manifest["config"]["digest"]
                    .as_str()
                    .ok_or_else(|| invalid("manifest has no config".into()))?
                    .parse()
                    .map_err(|e: crate::oci::digest::DigestError| invalid(e.to_string()))?;
                let config_bytes = layout.read_blob(&config_digest).map_err(wrap)?;
                let config: Value = serde_json::from_slice(&config_bytes)
                    .map_err(|e| invalid(format!("config: {e}")))?;
                let diff_ids = config["rootfs"]["diff_ids"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let descs = manifest["layers"].as_array().cloned().unwrap_or_default();
                if diff_ids.len() != descs.len() {
                    return Err(invalid(format!(
                        "manifest has {} layers but config lists {} diff_ids",
                        descs.len(),
                        diff_ids.len()
                    )));
                }
                let layers = descs
                    .iter()
                    .zip(&diff_ids)
                    .map(|(d, diff_id)| {
                        let parse = |v: &Value, what: &str| -> Result<Digest, RunImageError> {
                            v.as_str()
                                .ok_or_else(|| invalid(format!("layer without {what}")))?
                                .parse()
                                .map_err(|e: crate::oci::digest::DigestError| {
                                    invalid(e.to_string())
                                })
                        };
                        Ok(BaseLayer {
                            media_type: oci_layer_media_type(
                                d["mediaType"].as_str().unwrap_or_default(),
                            )
                            .to_owned(),
                            digest: parse(&d["digest"], "digest")?,
                            size: d["size"]
                                .as_u64()
                                .ok_or_else(|| invalid("layer without size".into()))?,
                            diff_id: parse(diff_id, "diff_id")?,
                        })
                    })
                    .collect::<Result<_, RunImageError>>()?;
                Ok(Self {
                    reference: reference.clone(),
                    manifest_digest: Some(found.digest),
                    config,
                    layers,
                    layout: Some(layout),
                })
            }
        }
    }

    pub fn os(&self) -> &str {
        self.config["os"].as_str().unwrap_or("linux")
    }

    pub fn arch(&self) -> &str {
        self.config["architecture"].as_str().unwrap_or("amd64")
    }

    /// diff_id of the last base layer (CNB `runImage.topLayer`).
    pub fn top_layer(&self) -> Option<&Digest> {
        self.layers.last().map(|l| &l.diff_id)
    }
}
