//! The buildpack manifest: CNB `buildpack.toml`, carried inside the component
//! as the custom section [`SECTION`] so one `.wasm` file is a whole buildpack.

use serde::{Deserialize, Serialize};

use crate::ids::BuildpackId;

/// Name of the custom section the SDK writes.
pub const SECTION: &str = "cascade:buildpack";

/// The custom section holding the buildpack API version — the version of
/// the `cascade:buildpack` WIT package — the component was built against.
/// The host reads it before instantiating anything (as Zed reads its
/// extensions' `zed:api-version`).
pub const API_SECTION: &str = "cascade:api-version";

/// The buildpack API this host implements (`wit/buildpack.wit`'s package
/// version). See docs/compatibility.md for what a host accepts.
pub const API_VERSION: &str = "0.2.0";

/// Whether a component built against API `found` runs on a host of API
/// `host`: before 1.0 every minor version is its own API (the WIT records
/// change shape), so major and minor must match; from 1.0 a host runs every
/// component of its major version up to its own minor.
pub fn api_compatible(found: &str, host: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.trim().split('.');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    match (parse(found), parse(host)) {
        (Some((0, f)), Some((0, h))) => f == h,
        (Some((fm, fi)), Some((hm, hi))) => fm == hm && fi <= hi,
        _ => false,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildpackManifest {
    /// Buildpack API version (CNB).
    pub api: String,
    pub buildpack: BuildpackInfo,
    #[serde(default)]
    pub targets: Vec<TargetSpec>,
    /// Deprecated CNB `[[stacks]]`; accepted, not used.
    #[serde(default)]
    pub stacks: Vec<toml::Table>,
    /// Free-form CNB `[metadata]`.
    #[serde(default)]
    pub metadata: Option<toml::Table>,
    /// Cascade's `[capabilities]`: what the buildpack needs beyond its
    /// sandbox (see [`crate::capabilities`]).
    #[serde(default)]
    pub capabilities: crate::capabilities::Declared,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildpackInfo {
    pub id: BuildpackId,
    pub version: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub homepage: Option<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub licenses: Vec<toml::Table>,
    #[serde(default, rename = "clear-env")]
    pub clear_env: bool,
    #[serde(default, rename = "sbom-formats")]
    pub sbom_formats: Vec<String>,
}

/// CNB `[[targets]]`: run images this buildpack's output works on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub arch: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "{source_name}: not a WebAssembly component (a core module or another file?); build buildpacks with `cargo build --target wasm32-wasip2`"
    )]
    NotAComponent { source_name: String },
    #[error("{source_name}: malformed WebAssembly: {message}")]
    Malformed {
        source_name: String,
        message: String,
    },
    #[error(
        "{source_name}: no `{SECTION}` manifest section; export the buildpack with `cascade_sdk::export_buildpack!`"
    )]
    Missing { source_name: String },
    #[error("{source_name}: invalid embedded buildpack.toml: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
    #[error(
        "{source_name}: built for Cascade buildpack API {found}, but this cascade runs buildpack API {API_VERSION}; rebuild the buildpack with a cascade-sdk for API {API_VERSION} (see docs/compatibility.md)"
    )]
    ApiVersion { source_name: String, found: String },
}

impl BuildpackManifest {
    /// Read the manifest from a component's bytes without instantiating it.
    /// The section sits in the component's core module, so nested modules are
    /// searched too.
    pub fn from_component(bytes: &[u8], source_name: &str) -> Result<Self, ManifestError> {
        if !wasmparser::Parser::is_component(bytes) {
            return Err(ManifestError::NotAComponent {
                source_name: source_name.into(),
            });
        }
        let malformed = |e: wasmparser::BinaryReaderError| ManifestError::Malformed {
            source_name: source_name.into(),
            message: e.to_string(),
        };
        let mut manifest = None;
        let mut api = None;
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            if let wasmparser::Payload::CustomSection(section) = payload.map_err(malformed)? {
                let text = || {
                    std::str::from_utf8(section.data()).map_err(|e| ManifestError::Invalid {
                        source_name: source_name.into(),
                        message: e.to_string(),
                    })
                };
                if section.name() == SECTION && manifest.is_none() {
                    manifest = Some(Self::parse(text()?, source_name)?);
                } else if section.name() == API_SECTION && api.is_none() {
                    api = Some(text()?.to_owned());
                }
            }
        }
        let manifest = manifest.ok_or_else(|| ManifestError::Missing {
            source_name: source_name.into(),
        })?;
        // Components from before the section existed were built for 0.1.0.
        let found = api.unwrap_or_else(|| "0.1.0".into());
        if !api_compatible(&found, API_VERSION) {
            return Err(ManifestError::ApiVersion {
                source_name: source_name.into(),
                found,
            });
        }
        Ok(manifest)
    }

    pub fn parse(text: &str, source_name: &str) -> Result<Self, ManifestError> {
        toml::from_str(text).map_err(|e| ManifestError::Invalid {
            source_name: source_name.into(),
            message: e.to_string(),
        })
    }

    /// Whether this buildpack supports a run image of `os`/`arch`. No
    /// `[[targets]]` means any.
    pub fn supports(&self, os: &str, arch: &str) -> bool {
        self.targets.is_empty()
            || self.targets.iter().any(|t| {
                t.os.as_deref().is_none_or(|o| o == os)
                    && t.arch.as_deref().is_none_or(|a| a == arch)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_module_is_not_a_component() {
        let core = b"\0asm\x01\0\0\0";
        assert!(matches!(
            BuildpackManifest::from_component(core, "x.wasm"),
            Err(ManifestError::NotAComponent { .. })
        ));
    }

    #[test]
    fn the_api_version_is_the_wit_package_version() {
        let wit = include_str!("../wit/buildpack.wit");
        assert!(
            wit.contains(&format!("package cascade:buildpack@{API_VERSION};")),
            "bump API_VERSION with the WIT package"
        );
    }

    #[test]
    fn api_compatibility_follows_the_policy() {
        assert!(api_compatible("0.2.0", "0.2.0"));
        assert!(api_compatible("0.2.3", "0.2.0"), "patches never break");
        assert!(!api_compatible("0.1.0", "0.2.0"));
        assert!(!api_compatible("0.3.0", "0.2.0"));
        assert!(api_compatible("1.1.0", "1.3.0"));
        assert!(!api_compatible("1.4.0", "1.3.0"));
        assert!(!api_compatible("2.0.0", "1.3.0"));
        assert!(!api_compatible("garbage", "0.2.0"));
    }

    #[test]
    fn targets_restrict_support() {
        let m = BuildpackManifest::parse(
            "api = \"0.12\"\n[buildpack]\nid = \"a/b\"\nversion = \"1\"\n[[targets]]\nos = \"linux\"\n",
            "t",
        )
        .unwrap();
        assert!(m.supports("linux", "arm64"));
        assert!(!m.supports("windows", "amd64"));
    }

    #[test]
    fn unknown_fields_are_named() {
        let err = BuildpackManifest::parse("api = \"0.12\"\nbogus = 1\n", "bp.wasm").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
