//! Buildpacks in registries: a buildpack component published as a CNCF Wasm
//! OCI artifact (config `application/vnd.wasm.config.v0+json`, one layer
//! `application/wasm`: the component itself), pulled back by reference,
//! checked against its digests and cached by them.
//!
//! The artifact is reproducible: its config and manifest carry no time, so
//! publishing the same component twice gives the same manifest digest.

use std::path::{Path, PathBuf};

use crate::manifest::{API_VERSION, BuildpackManifest, ManifestError};
use crate::oci::document::{self, ImageManifest};
use crate::oci::registry::{Registry, RegistryError};
use crate::oci::{Digest, MEDIA_MANIFEST};

pub const MEDIA_WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
pub const MEDIA_WASM_LAYER: &str = "application/wasm";

#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{reference}: {source}")]
    Registry {
        reference: String,
        #[source]
        source: RegistryError,
    },
    #[error("{reference}: not a Wasm OCI artifact: {message}")]
    NotWasm { reference: String, message: String },
    #[error(
        "{reference}: the component's digest is {actual}, but {expected} was expected{}",
        locked.as_ref().map(|l| format!(" ({l})")).unwrap_or_default()
    )]
    Digest {
        reference: String,
        expected: Digest,
        actual: Digest,
        locked: Option<String>,
    },
    #[error("caching {path}: {source}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Config and manifest of the artifact for `wasm`.
pub struct Artifact {
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub component: Digest,
}

/// The artifact for a buildpack component (whose manifest was read from
/// it). Layer annotations name the buildpack for registry UIs.
pub fn artifact(wasm: &[u8], bp: &BuildpackManifest) -> Artifact {
    let component = Digest::of(wasm);
    let config = WasmConfig {
        architecture: "wasm",
        os: "wasip2",
        layer_digests: vec![component.clone()],
        component: WasmTarget {
            target: format!("cascade:buildpack/buildpack@{API_VERSION}"),
        },
    };
    let config = document::to_bytes(&config);
    let mut layer = document::descriptor(MEDIA_WASM_LAYER, &component, wasm.len() as u64);
    layer.set_annotations(Some(
        [(
            "org.opencontainers.image.title".to_owned(),
            format!("{}.wasm", bp.buildpack.id.escaped()),
        )]
        .into(),
    ));
    let mut manifest = document::manifest(
        document::descriptor(MEDIA_WASM_CONFIG, &Digest::of(&config), config.len() as u64),
        vec![layer],
    );
    manifest.set_annotations(Some(
        [
            ("org.opencontainers.image.title", bp.buildpack.id.as_str()),
            (
                "org.opencontainers.image.version",
                bp.buildpack.version.as_str(),
            ),
            ("io.buildpacks.buildpack.id", bp.buildpack.id.as_str()),
            ("dev.cascade.buildpack-api", API_VERSION),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    ));
    Artifact {
        config,
        manifest: document::to_bytes(&manifest),
        component,
    }
}

/// The config of a Wasm OCI artifact (the CNCF TAG-Runtime Wasm artifact
/// layout: `layerDigests` and the component's WIT target).
#[derive(serde::Serialize)]
struct WasmConfig {
    architecture: &'static str,
    os: &'static str,
    #[serde(rename = "layerDigests")]
    layer_digests: Vec<Digest>,
    component: WasmTarget,
}

#[derive(serde::Serialize)]
struct WasmTarget {
    target: String,
}

/// What publishing or pulling resolved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Resolved {
    /// `HOST/REPO@sha256:...` of the artifact manifest.
    pub reference: String,
    pub manifest: Digest,
    pub component: Digest,
}

fn registry_err(
    reference: &oci_client::Reference,
) -> impl FnOnce(RegistryError) -> DistributionError + '_ {
    move |source| DistributionError::Registry {
        reference: reference.whole(),
        source,
    }
}

fn pinned(reference: &oci_client::Reference, digest: &Digest) -> String {
    format!(
        "{}/{}@{digest}",
        reference.registry(),
        reference.repository()
    )
}

/// Push `wasm` (a buildpack component, checked first) to `target`.
pub fn publish(
    client: &Registry,
    target: &oci_client::Reference,
    wasm: &[u8],
    source_name: &str,
) -> Result<Resolved, DistributionError> {
    let bp = BuildpackManifest::from_component(wasm, source_name)?;
    let a = artifact(wasm, &bp);
    let err = registry_err(target);
    for (digest, bytes) in [
        (&a.component, wasm),
        (&Digest::of(&a.config), &a.config[..]),
    ] {
        if !client
            .has_blob(target, digest)
            .map_err(registry_err(target))?
        {
            client
                .push_blob_bytes(target, digest, bytes)
                .map_err(registry_err(target))?;
        }
    }
    client
        .push_manifest(target, &a.manifest, MEDIA_MANIFEST)
        .map_err(err)?;
    let manifest = Digest::of(&a.manifest);
    Ok(Resolved {
        reference: pinned(target, &manifest),
        manifest,
        component: a.component,
    })
}

/// Pull the buildpack `reference` names into `cache_dir/buildpacks/`
/// (named by component digest, so a second build downloads nothing) and
/// return its bytes. `expect` pins the component digest (from a lock); a
/// reference by digest is checked by the registry client.
pub fn pull(
    client: &Registry,
    reference: &oci_client::Reference,
    expect: Option<(&Digest, &str)>,
    cache_dir: &Path,
) -> Result<(Vec<u8>, Resolved), DistributionError> {
    let name = reference.whole();
    let not_wasm = |message: String| DistributionError::NotWasm {
        reference: name.clone(),
        message,
    };
    let (bytes, manifest_digest) = client
        .manifest(reference)
        .map_err(registry_err(reference))?;
    let manifest: ImageManifest =
        document::parse(&bytes, "manifest").map_err(|e| not_wasm(e.to_string()))?;
    let config_type = document::media_type_of(manifest.config());
    if config_type != MEDIA_WASM_CONFIG {
        return Err(not_wasm(format!(
            "config media type is {config_type:?}, not {MEDIA_WASM_CONFIG}"
        )));
    }
    let [layer] = manifest.layers().as_slice() else {
        return Err(not_wasm(format!(
            "{} layers, not one",
            manifest.layers().len()
        )));
    };
    let layer_type = document::media_type_of(layer);
    if layer_type != MEDIA_WASM_LAYER {
        return Err(not_wasm(format!(
            "layer media type is {layer_type:?}, not {MEDIA_WASM_LAYER}"
        )));
    }
    let component =
        document::digest_of(layer, "manifest layers[0]").map_err(|e| not_wasm(e.to_string()))?;
    if let Some((expected, why)) = expect
        && *expected != component
    {
        return Err(DistributionError::Digest {
            reference: name,
            expected: expected.clone(),
            actual: component,
            locked: Some(why.to_owned()),
        });
    }
    let dir = cache_dir.join("buildpacks");
    let path = dir.join(format!("{}.wasm", component.hex()));
    let cached = std::fs::read(&path)
        .ok()
        .filter(|b| Digest::of(b) == component);
    let wasm = if let Some(b) = cached {
        b
    } else {
        let b = client
            .blob_bytes(reference, &component)
            .map_err(registry_err(reference))?;
        let cache_err = |source| DistributionError::Cache {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(cache_err)?;
        crate::oci::layout::write_atomic(&path, &b).map_err(|e| DistributionError::Cache {
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        b
    };
    Ok((
        wasm,
        Resolved {
            reference: pinned(reference, &manifest_digest),
            manifest: manifest_digest,
            component,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_artifact_is_reproducible_and_names_the_component() {
        let bp = BuildpackManifest::parse(
            "api = \"0.12\"\n[buildpack]\nid = \"a/b\"\nversion = \"1.2\"\n",
            "t",
        )
        .unwrap();
        let one = artifact(b"\0asm-component", &bp);
        let two = artifact(b"\0asm-component", &bp);
        assert_eq!(one.manifest, two.manifest);
        let m: serde_json::Value = serde_json::from_slice(&one.manifest).unwrap();
        assert_eq!(m["config"]["mediaType"], MEDIA_WASM_CONFIG);
        assert_eq!(m["layers"][0]["mediaType"], MEDIA_WASM_LAYER);
        assert_eq!(m["layers"][0]["digest"], one.component.to_string());
        assert_eq!(m["annotations"]["org.opencontainers.image.version"], "1.2");
        let c: serde_json::Value = serde_json::from_slice(&one.config).unwrap();
        assert_eq!(c["layerDigests"][0], one.component.to_string());
    }
}
