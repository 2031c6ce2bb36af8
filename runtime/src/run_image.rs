//! Run images: the base an app image is built on — `scratch` (built in,
//! empty), an image in an OCI layout, or one in a registry.

use serde_json::{Value, json};

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
    /// The image config, kept as JSON so unknown fields survive.
    pub config: Value,
    pub layers: Vec<BaseLayer>,
    /// Where the layers' blobs are.
    pub home: BlobHome,
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
                config: json!({
                    "architecture": platform.1,
                    "os": platform.0,
                    "config": {},
                    "rootfs": {"type": "layers", "diff_ids": []},
                }),
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
        let diff_ids = image.config["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let descs = image.manifest["layers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if diff_ids.len() != descs.len() {
            return Err(invalid(format!(
                "manifest has {} layers but config lists {} diff_ids",
                descs.len(),
                diff_ids.len()
            )));
        }
        let parse = |v: &Value, what: &str| -> Result<Digest, RunImageError> {
            v.as_str()
                .ok_or_else(|| invalid(format!("layer without {what}")))?
                .parse()
                .map_err(|e: crate::oci::digest::DigestError| invalid(e.to_string()))
        };
        let layers = descs
            .iter()
            .zip(&diff_ids)
            .map(|(d, diff_id)| {
                Ok(BaseLayer {
                    media_type: oci_layer_media_type(d["mediaType"].as_str().unwrap_or_default())
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
            manifest_digest: Some(image.digest),
            config: image.config,
            layers,
            home: image.home,
        })
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
