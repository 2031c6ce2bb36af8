//! The image SBOM: one CycloneDX 1.5 JSON document per image listing the
//! buildpacks (id, version, component sha256), every layer Cascade wrote
//! (with its diff_id and the components its buildpack declared in the
//! layer's own SBOM), and the run image's OS packages when it has a dpkg
//! status file.
//!
//! It is reproducible: no timestamp, no serial number, no random bom-refs,
//! keys sorted, lists in build order — the same inputs give the same bytes,
//! so the SBOM layer has the same digest in every rebuild. It is stored in
//! the image as CNB does (`/layers/sbom/launch/...`, its layer's diff_id in
//! `io.buildpacks.lifecycle.metadata` `sbom.sha`) and, when publishing, also
//! attached to the image as an OCI referrer artifact.

pub mod os;

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::oci::Digest;
pub use os::OsInfo;

pub const MEDIA_CYCLONEDX: &str = "application/vnd.cyclonedx+json";
/// Where the image SBOM is, under the SBOM layer's root.
pub const IMAGE_SBOM_PATH: &str = "layers/sbom/launch/sbom.cdx.json";

#[derive(Debug, Clone)]
pub struct BuildpackEntry {
    pub id: String,
    pub version: String,
    pub digest: Option<Digest>,
}

#[derive(Debug, Clone)]
pub struct LayerEntry {
    /// `app`, or the buildpack id.
    pub owner: String,
    /// `app`, or the layer name.
    pub name: String,
    /// Where it is in the image (`/layers/<bp>/<name>`, `/workspace`).
    pub path: String,
    pub diff_id: Digest,
    /// The buildpack's CycloneDX document for the layer.
    pub sbom: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct RunImageEntry {
    pub reference: String,
    pub digest: Option<Digest>,
    pub top_layer: Option<Digest>,
    /// `None`: the base layers were not on this machine to read.
    pub os: Option<OsInfo>,
}

fn prop(name: &str, value: impl Into<String>) -> Value {
    json!({"name": name, "value": value.into()})
}

fn sha256_hash(d: &Digest) -> Value {
    json!([{"alg": "SHA-256", "content": d.hex()}])
}

/// Percent-encode a purl segment (RFC 3986 unreserved characters stay).
fn purl_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The components a buildpack's layer SBOM lists, with their `bom-ref`s
/// dropped: refs are only unique within their own document, and two layers
/// may well use the same ones.
fn nested_components(doc: &Value) -> Vec<Value> {
    fn strip(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("bom-ref");
            if let Some(children) = o.get("components").and_then(Value::as_array) {
                let children: Vec<Value> = children.iter().map(strip).collect();
                o.insert("components".into(), Value::Array(children));
            }
        }
        v
    }
    doc["components"]
        .as_array()
        .map(|c| c.iter().map(strip).collect())
        .unwrap_or_default()
}

/// The image's CycloneDX document.
pub fn image_sbom(
    buildpacks: &[BuildpackEntry],
    layers: &[LayerEntry],
    run_image: &RunImageEntry,
) -> Value {
    let mut components = Vec::new();
    for bp in buildpacks {
        let mut c = json!({
            "type": "application",
            "bom-ref": format!("buildpack:{}", bp.id),
            "name": bp.id,
            "version": bp.version,
            "properties": [prop("cascade:role", "buildpack")],
        });
        if let Some(d) = &bp.digest {
            c["hashes"] = sha256_hash(d);
        }
        components.push(c);
    }
    for l in layers {
        let mut properties = vec![
            prop("cascade:role", "layer"),
            prop("cascade:diff-id", l.diff_id.to_string()),
        ];
        if l.owner != "app" {
            properties.push(prop("cascade:buildpack", l.owner.clone()));
        }
        let mut c = json!({
            "type": "file",
            "bom-ref": format!("layer:{}:{}", l.owner, l.name),
            "name": l.path,
            "hashes": sha256_hash(&l.diff_id),
            "properties": properties,
        });
        if let Some(doc) = &l.sbom {
            let nested = nested_components(doc);
            if !nested.is_empty() {
                c["components"] = Value::Array(nested);
            }
        }
        components.push(c);
    }
    components.push(run_image_component(run_image));
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "tools": {"components": [{
                "type": "application",
                "name": "cascade",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": {"type": "container", "bom-ref": "image", "name": "app image"},
        },
        "components": components,
    })
}

fn run_image_component(run: &RunImageEntry) -> Value {
    let mut properties = vec![
        prop("cascade:role", "run-image"),
        prop("cascade:run-image", run.reference.clone()),
    ];
    if let Some(d) = &run.digest {
        properties.push(prop("cascade:run-image-digest", d.to_string()));
    }
    if let Some(d) = &run.top_layer {
        properties.push(prop("cascade:top-layer", d.to_string()));
    }
    let os = run.os.as_ref();
    properties.push(prop(
        "cascade:os-packages",
        match os {
            None => "not read: the run image's layers are not on this machine",
            Some(o) if !o.has_dpkg => "none: no dpkg status file",
            Some(_) => "dpkg",
        },
    ));
    let distro = os.and_then(|o| o.id.clone());
    let mut c = json!({
        "type": "operating-system",
        "bom-ref": "run-image",
        "name": distro.clone().unwrap_or_else(|| run.reference.clone()),
        "properties": properties,
    });
    if let Some(v) = os.and_then(|o| o.version_id.clone()) {
        c["version"] = json!(v);
    }
    if let Some(d) = &run.digest {
        c["hashes"] = sha256_hash(d);
    }
    let namespace = distro.unwrap_or_else(|| "debian".into());
    let packages: Vec<Value> = os
        .map(|o| o.packages.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let mut purl = format!(
                "pkg:deb/{}/{}@{}",
                purl_encode(&namespace),
                purl_encode(&p.name),
                purl_encode(&p.version)
            );
            if !p.arch.is_empty() {
                let _ = write!(purl, "?arch={}", purl_encode(&p.arch));
            }
            json!({
                "type": "library",
                "bom-ref": format!("deb:{}:{}", p.name, p.arch),
                "name": p.name,
                "version": p.version,
                "purl": purl,
            })
        })
        .collect();
    if !packages.is_empty() {
        c["components"] = Value::Array(packages);
    }
    c
}

/// Make `doc`, an image SBOM Cascade wrote, describe `run` as the image's
/// base in place of the one it was built on (what a rebase changes, and all
/// it changes). False when `doc` has no run-image component: not an SBOM
/// Cascade wrote, so nothing in it can be trusted to be the base's part.
pub fn replace_run_image(doc: &mut Value, run: &RunImageEntry) -> bool {
    let Some(slot) = doc["components"]
        .as_array_mut()
        .and_then(|c| c.iter_mut().find(|c| c["bom-ref"] == "run-image"))
    else {
        return false;
    };
    *slot = run_image_component(run);
    true
}

/// Whether `doc`'s run-image component lists the base's dpkg packages (a
/// rebase should then list the new base's too, not fewer).
pub fn lists_os_packages(doc: &Value) -> bool {
    doc["components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["bom-ref"] == "run-image")
        .flat_map(|c| c["properties"].as_array().into_iter().flatten())
        .any(|p| p["name"] == "cascade:os-packages" && p["value"] == "dpkg")
}

/// A short account of an image SBOM for `cascade inspect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub buildpacks: usize,
    pub layers: usize,
    /// Components the buildpacks declared in their layers' SBOMs.
    pub layer_components: usize,
    pub os: Option<String>,
    pub os_packages: usize,
}

pub fn summarise(doc: &Value) -> Summary {
    let mut s = Summary::default();
    for c in doc["components"].as_array().into_iter().flatten() {
        let role = c["properties"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "cascade:role")
            .and_then(|p| p["value"].as_str())
            .unwrap_or_default();
        let children = c["components"].as_array().map_or(0, Vec::len);
        match role {
            "buildpack" => s.buildpacks += 1,
            "layer" => {
                s.layers += 1;
                s.layer_components += children;
            }
            "run-image" => {
                let name = c["name"].as_str().unwrap_or_default();
                let version = c["version"].as_str().unwrap_or_default();
                s.os = Some(format!("{name} {version}").trim().to_owned());
                s.os_packages = children;
            }
            _ => {}
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_encode_epochs_and_pluses() {
        assert_eq!(purl_encode("1:2.3+deb12u1"), "1%3A2.3%2Bdeb12u1");
    }

    #[test]
    fn summary_counts_what_the_document_lists() {
        let d: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let doc = image_sbom(
            &[BuildpackEntry {
                id: "a/b".into(),
                version: "1".into(),
                digest: Some(d.clone()),
            }],
            &[LayerEntry {
                owner: "a/b".into(),
                name: "deps".into(),
                path: "/layers/a_b/deps".into(),
                diff_id: d.clone(),
                sbom: Some(
                    json!({"components": [{"bom-ref": "x", "name": "left-pad", "type": "library"}]}),
                ),
            }],
            &RunImageEntry {
                reference: "scratch".into(),
                digest: None,
                top_layer: None,
                os: Some(OsInfo {
                    id: Some("debian".into()),
                    version_id: Some("12".into()),
                    has_dpkg: true,
                    packages: vec![os::Package {
                        name: "bash".into(),
                        version: "5.2".into(),
                        arch: "amd64".into(),
                    }],
                    ..OsInfo::default()
                }),
            },
        );
        let s = summarise(&doc);
        assert_eq!(
            s,
            Summary {
                buildpacks: 1,
                layers: 1,
                layer_components: 1,
                os: Some("debian 12".into()),
                os_packages: 1
            }
        );
        assert!(
            doc.to_string()
                .contains("pkg:deb/debian/bash@5.2?arch=amd64")
        );
        assert!(
            !doc.to_string().contains("\"x\""),
            "nested bom-refs are dropped"
        );
    }
}
