//! `cascade inspect`: what an image is made of, read from its manifest,
//! config and CNB labels. Reads images made by Cascade and by the CNB
//! lifecycle (whose older platform APIs wrote a process `command` as a
//! string, newer ones as an array).

use serde::Serialize;
use serde_json::Value;

use crate::labels;
use crate::oci::document::{self, ImageConfig, ImageManifest};
use crate::oci::store::{BlobHome, Oci, StoreError};
use crate::oci::{Digest, ImageRef};
use crate::report::RunImageRef;
use crate::sbom;

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{image}: {source}")]
    Store {
        image: String,
        #[source]
        source: StoreError,
    },
    #[error("{image}: scratch is not an image to inspect")]
    Unsupported { image: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub image: String,
    pub digest: String,
    pub os: String,
    pub architecture: String,
    pub created: Option<String>,
    /// Whether the image carries CNB metadata at all.
    pub buildpacks_image: bool,
    pub run_image: Option<RunImageRef>,
    /// The build image its tools ran in (Cascade's `dev.cascade.build-image`
    /// label); `None` when the image records none.
    pub build_image: Option<crate::report::BuildImageRef>,
    pub rebasable: bool,
    pub buildpacks: Vec<BuildpackInfo>,
    pub processes: Vec<ProcessInfo>,
    pub default_process: Option<String>,
    pub env: Vec<String>,
    pub layers: Vec<LayerInfo>,
    /// What the image SBOM lists, when the image has one.
    pub sbom: Option<sbom::Summary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildpackInfo {
    pub id: String,
    pub version: String,
    pub homepage: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessInfo {
    #[serde(rename = "type")]
    pub kind: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub buildpack_id: String,
    pub working_dir: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    /// `run-image`, `<buildpack>:<layer>`, `app`, `sbom`, or `unknown`.
    pub source: String,
}

/// A label holding JSON, parsed; `Null` when absent or malformed.
fn json_label(labels: &std::collections::BTreeMap<String, String>, key: &str) -> Value {
    labels
        .get(key)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// A string or an array of strings (as `Entrypoint` may be), as strings.
pub(crate) fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

pub fn inspect(image: &ImageRef, oci: &Oci) -> Result<Inspection, InspectError> {
    if *image == ImageRef::Scratch {
        return Err(InspectError::Unsupported {
            image: image.to_string(),
        });
    }
    let read = oci
        .read(image, None)
        .map_err(|source| InspectError::Store {
            image: image.to_string(),
            source,
        })?;
    let mut inspection = from_parts(
        &image.to_string(),
        &read.digest,
        &read.manifest,
        &read.config,
    );
    inspection.sbom = image_sbom(oci, &read, &inspection)
        .ok()
        .flatten()
        .map(|doc| sbom::summarise(&doc));
    Ok(inspection)
}

/// The image SBOM (CycloneDX JSON) of an inspected image: the layer the
/// lifecycle label names as `sbom.sha`, read and searched for
/// `layers/sbom/launch/sbom.cdx.json`. `None` when the image has none.
pub fn image_sbom(
    oci: &Oci,
    read: &crate::oci::store::ReadImage,
    inspection: &Inspection,
) -> Result<Option<Value>, InspectError> {
    let Some(layer) = inspection.layers.iter().find(|l| l.source == "sbom") else {
        return Ok(None);
    };
    let store_err = |source: StoreError| InspectError::Store {
        image: inspection.image.clone(),
        source,
    };
    let digest: Digest = match layer.digest.parse() {
        Ok(d) => d,
        Err(_) => return Ok(None),
    };
    let bytes = match &read.home {
        BlobHome::Layout(l) => l.read_blob(&digest).map_err(|e| store_err(e.into()))?,
        BlobHome::Registry(r) => match &oci.registry {
            Some(client) => client
                .blob_bytes(r, &digest)
                .map_err(|e| store_err(e.into()))?,
            None => return Ok(None),
        },
        BlobHome::None => return Ok(None),
    };
    let media = read
        .manifest
        .layers()
        .iter()
        .find(|l| l.digest().to_string() == layer.digest)
        .map(document::media_type_of)
        .unwrap_or_default();
    let Ok(reader) = crate::oci::compress::decoder(&media, &bytes[..]) else {
        return Ok(None);
    };
    let mut archive = tar::Archive::new(reader);
    let Ok(entries) = archive.entries() else {
        return Ok(None);
    };
    for entry in entries.flatten() {
        let mut entry = entry;
        let is_doc = entry
            .path()
            .is_ok_and(|p| p.to_string_lossy().trim_start_matches("./") == sbom::IMAGE_SBOM_PATH);
        if is_doc {
            let mut text = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut text).ok();
            return Ok(serde_json::from_slice(&text).ok());
        }
    }
    Ok(None)
}

/// Everything `inspect` reports, from an image's manifest and config.
pub fn from_parts(
    name: &str,
    digest: &Digest,
    manifest: &ImageManifest,
    config: &ImageConfig,
) -> Inspection {
    let all_labels = config.labels();
    // A label Cascade cannot read makes the image one it cannot tell
    // about (rebase says why, naming the field).
    let lifecycle = labels::Lifecycle::of(config).ok().flatten();
    let build = json_label(all_labels, labels::BUILD_METADATA);
    // The CNB label's `reference` is `NAME@DIGEST` (lifecycle) or the
    // digest alone (Cascade): the digest is what follows any `@`.
    let run_image = lifecycle
        .as_ref()
        .and_then(|l| l.run_image.as_ref())
        .map(|r| RunImageRef {
            reference: r.image.clone(),
            digest: RunImageRef::non_empty(
                r.reference
                    .rsplit_once('@')
                    .map_or(r.reference.as_str(), |(_, d)| d),
            ),
            top_layer: RunImageRef::non_empty(&r.top_layer),
        });

    let top = run_image
        .as_ref()
        .and_then(|r| r.top_layer.clone())
        .unwrap_or_default();
    let layers = layer_infos(lifecycle.as_ref(), manifest, config, &top);

    let processes: Vec<ProcessInfo> = build["processes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| ProcessInfo {
            kind: p["type"].as_str().unwrap_or_default().into(),
            command: strings(&p["command"]),
            args: strings(&p["args"]),
            buildpack_id: p["buildpackID"].as_str().unwrap_or_default().into(),
            working_dir: p["working-dir"].as_str().map(str::to_owned),
        })
        .collect();
    // Cascade puts the default process in Entrypoint; lifecycle images name
    // it in the launcher's process-type entrypoint or CNB_PROCESS_TYPE.
    let run = config.config.as_ref();
    let entrypoint = run.and_then(|r| r.entrypoint.clone()).unwrap_or_default();
    let env = config.env().to_vec();
    let default_process = processes
        .iter()
        .find(|p| !p.command.is_empty() && p.command == entrypoint)
        .map(|p| p.kind.clone())
        .or_else(|| {
            entrypoint
                .first()
                .and_then(|e| e.strip_prefix("/cnb/process/"))
                .map(str::to_owned)
        })
        .or_else(|| {
            env.iter()
                .find_map(|e| e.strip_prefix("CNB_PROCESS_TYPE=").map(str::to_owned))
        });

    Inspection {
        image: name.into(),
        digest: digest.to_string(),
        os: config.os.clone(),
        architecture: config.architecture.clone(),
        created: config.created.clone(),
        buildpacks_image: lifecycle.is_some(),
        rebasable: config.label(labels::REBASABLE) != Some("false"),
        run_image,
        build_image: serde_json::from_value(json_label(all_labels, labels::BUILD_IMAGE)).ok(),
        buildpacks: build["buildpacks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| BuildpackInfo {
                id: b["id"].as_str().unwrap_or_default().into(),
                version: b["version"].as_str().unwrap_or_default().into(),
                homepage: b["homepage"].as_str().map(str::to_owned),
            })
            .collect(),
        processes,
        default_process,
        env,
        layers,
        sbom: None,
    }
}

/// Each layer with where it came from: the run image (up to `top`), a
/// buildpack's layer, or the app, matched by diff_id.
fn layer_infos(
    lifecycle: Option<&labels::Lifecycle>,
    manifest: &ImageManifest,
    config: &ImageConfig,
    top: &str,
) -> Vec<LayerInfo> {
    // Which layer came from where, by diff_id.
    let mut sources: Vec<(String, String)> = Vec::new();
    if let Some(l) = lifecycle {
        for (key, layer, sha) in &l.layers {
            sources.push((sha.clone(), format!("{key}:{layer}")));
        }
        sources.extend(l.app_shas.iter().map(|sha| (sha.clone(), "app".into())));
        sources.extend(l.sbom_sha.iter().map(|sha| (sha.clone(), "sbom".into())));
    }
    let diff_ids: Vec<String> = config
        .rootfs
        .diff_ids
        .iter()
        .map(ToString::to_string)
        .collect();
    let base_count = diff_ids.iter().position(|d| *d == top).map_or(0, |i| i + 1);
    manifest
        .layers()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let diff_id = diff_ids.get(i).cloned().unwrap_or_default();
            let source = if i < base_count {
                "run-image".to_string()
            } else {
                sources
                    .iter()
                    .find(|(sha, _)| *sha == diff_id)
                    .map_or_else(|| "unknown".into(), |(_, s)| s.clone())
            };
            LayerInfo {
                digest: l.digest().to_string(),
                diff_id,
                size: l.size(),
                source,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A manifest of `n` layers, the i-th of size i.
    fn manifest_of(n: u64) -> ImageManifest {
        let layer = |i: u64| {
            document::descriptor(
                crate::oci::MEDIA_LAYER_GZIP,
                &Digest::of(i.to_string().as_bytes()),
                i,
            )
        };
        document::manifest(
            document::descriptor(crate::oci::MEDIA_CONFIG, &Digest::of(b"c"), 1),
            (0..n).map(layer).collect(),
        )
    }

    /// Labels as the CNB lifecycle writes them (platform API 0.9 and older:
    /// `command` a string; newer: an array), with a launcher entrypoint.
    #[test]
    fn reads_a_lifecycle_made_image_with_both_command_shapes() {
        let d = |s: &str| Digest::of(s.as_bytes()).to_string();
        let lifecycle = json!({
            "app": [{"sha": d("app")}],
            "buildpacks": [{"key": "paketo-buildpacks/node-engine", "version": "1.2.3",
                "layers": {"node": {"sha": d("node"), "launch": true, "data": {}}}}],
            "runImage": {"topLayer": d("base2"), "reference": "index.docker.io/paketobuildpacks/run@sha256:abc", "image": "paketobuildpacks/run:base"},
        });
        let build = json!({
            "buildpacks": [{"id": "paketo-buildpacks/node-engine", "version": "1.2.3", "homepage": "https://paketo.io"}],
            "processes": [
                {"type": "web", "command": "node server.js", "args": null, "direct": false, "buildpackID": "paketo-buildpacks/npm-start"},
                {"type": "worker", "command": ["node", "worker.js"], "args": ["--fast"], "direct": true, "buildpackID": "paketo-buildpacks/npm-start"},
            ],
            "launcher": {"version": "0.20.0"},
        });
        let config = json!({
            "os": "linux", "architecture": "amd64",
            "config": {
                "Entrypoint": ["/cnb/process/web"],
                "Env": ["PATH=/cnb/process:/usr/bin", "CNB_PLATFORM_API=0.12"],
                "Labels": {
                    "io.buildpacks.lifecycle.metadata": lifecycle.to_string(),
                    "io.buildpacks.build.metadata": build.to_string(),
                },
            },
            "rootfs": {"type": "layers", "diff_ids": [d("base1"), d("base2"), d("node"), d("launcher"), d("app")]},
        });
        let manifest = manifest_of(5);
        let config = document::parse(config.to_string().as_bytes(), "config").unwrap();
        let i = from_parts("x", &Digest::of(b"m"), &manifest, &config);
        assert!(i.buildpacks_image && i.rebasable);
        assert_eq!(i.run_image.unwrap().reference, "paketobuildpacks/run:base");
        assert_eq!(i.processes[0].command, ["node server.js"]);
        assert_eq!(i.processes[1].command, ["node", "worker.js"]);
        assert_eq!(i.processes[1].args, ["--fast"]);
        assert_eq!(i.default_process.as_deref(), Some("web"));
        let sources: Vec<&str> = i.layers.iter().map(|l| l.source.as_str()).collect();
        assert_eq!(
            sources,
            [
                "run-image",
                "run-image",
                "paketo-buildpacks/node-engine:node",
                "unknown",
                "app"
            ]
        );
    }

    #[test]
    fn an_image_without_cnb_labels_is_reported_as_such() {
        let config = br#"{"os": "linux", "architecture": "arm64", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}}"#;
        let config = document::parse(config, "config").unwrap();
        let i = from_parts("x", &Digest::of(b"m"), &manifest_of(0), &config);
        assert!(!i.buildpacks_image);
        assert!(i.run_image.is_none() && i.processes.is_empty());
    }
}
