//! Runtime inventories: which releases of a language runtime a buildpack
//! installs, from where, pinned by which sha256. One format for every
//! buildpack (heroku/buildpacks-nodejs's shape):
//!
//! ```toml
//! [[artifacts]]
//! version = "3.12.6"
//! os = "linux"
//! arch = "amd64"
//! url = "https://example.org/python-3.12.6-linux-amd64.tar.gz"
//! checksum = "sha256:<64 hex digits>"
//! ```
//!
//! and one way for a platform to give its mirror, [`Inventory::load`]:
//! `BP_<NAME>_INVENTORY` is a URL (`http`, `https`, `file`), fetched with
//! the `fetch` capability and pinned by `BP_<NAME>_INVENTORY_SHA256`, or a
//! path inside the app. The pin is what makes a mirror safe to name: the
//! inventory decides which sha256 every runtime download is checked
//! against, so an unpinned inventory would let whoever serves it choose the
//! code that runs.

use std::path::{Component, Path};

use crate::{BuildContext, BuildpackError, Layer, Unpack};

/// One downloadable release. It serializes as a layer's metadata: a layer
/// holding it is kept while the release is the same.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Artifact {
    /// As the inventory writes it; each buildpack parses its own version
    /// scheme (semver for Node.js, PEP 440 for Python).
    pub version: String,
    pub os: String,
    pub arch: String,
    pub url: String,
    /// 64 lowercase hex digits.
    pub sha256: String,
}

impl Artifact {
    /// Install this release into `layer`: downloaded there with the fetch
    /// capability (checked against its sha256; the host caches by
    /// digest), unpacked with `strip` leading directories dropped (a
    /// release tarball's `node-v22.1.0-linux-x64/` or `python/`), the
    /// archive removed. `expect`, a path in the layer (`bin/node`), must
    /// then be a file: an inventory pointing at the wrong kind of archive
    /// fails here, naming it.
    pub fn install(
        &self,
        ctx: &BuildContext,
        layer: &Layer,
        strip: usize,
        expect: &str,
    ) -> Result<(), BuildpackError> {
        // The URL's last segment keeps the archive's extension, which says
        // how to unpack it.
        let path = self.url.split(['?', '#']).next().unwrap_or_default();
        let file = path
            .rsplit('/')
            .next()
            .map(|f| f.replace("%2B", "+").replace("%2b", "+"))
            .filter(|f| {
                let mut parts = Path::new(f).components();
                matches!(parts.next(), Some(Component::Normal(_))) && parts.next().is_none()
            })
            .ok_or_else(|| {
                BuildpackError::new(format!(
                    "{}: the URL names no archive file (its path must end in one: .tar.gz, .tar.xz, .zip...)",
                    self.url
                ))
            })?;
        layer.fetch(&self.url, &self.sha256, &file)?;
        let archive = layer.path().join(&file);
        let how = Unpack {
            strip_components: strip,
            ..Unpack::default()
        };
        ctx.unpack_with(&archive, layer.path(), how)?;
        crate::fs::remove_file(&archive)?;
        if !layer.path().join(expect).is_file() {
            return Err(BuildpackError::new(format!("{file}: no {expect} inside")));
        }
        Ok(())
    }

    /// A CycloneDX SBOM naming this release as component `name`, by its
    /// download and hash.
    pub fn sbom(&self, name: &str) -> String {
        serde_json::json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "version": 1,
            "components": [{
                "type": "application",
                "name": name,
                "version": self.version,
                "purl": format!(
                    "pkg:generic/{}@{}?download_url={}",
                    percent_encode(name),
                    percent_encode(&self.version),
                    percent_encode(&self.url)
                ),
                "hashes": [{"alg": "SHA-256", "content": self.sha256}],
            }],
        })
        .to_string()
    }
}

/// The artifacts of one inventory, and what it is called in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub artifacts: Vec<Artifact>,
    /// "the bundled inventory", the app path or the URL.
    pub source: String,
}

/// The scratch layer a fetched inventory is written to: never declared,
/// so the host drops it with the build.
const SCRATCH: &str = ".inventory";

impl Inventory {
    /// Parse an inventory; `source` names it in errors, with the artifact
    /// and field (`inv.toml: artifacts[2].checksum ...`).
    pub fn parse(text: &str, source: &str) -> Result<Self, BuildpackError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e| BuildpackError::new(format!("{source}: {e}")))?;
        let Some(list) = table.get("artifacts").and_then(toml::Value::as_array) else {
            return Err(BuildpackError::new(format!("{source}: no [[artifacts]]")));
        };
        let artifacts = list
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let field = |name: &str| {
                    a.get(name).and_then(toml::Value::as_str).ok_or_else(|| {
                        BuildpackError::new(format!(
                            "{source}: artifacts[{i}].{name}: missing (a string)"
                        ))
                    })
                };
                let checksum = field("checksum")?;
                let sha256 = checksum
                    .strip_prefix("sha256:")
                    .filter(|h| is_sha256(h))
                    .ok_or_else(|| {
                        BuildpackError::new(format!(
                            "{source}: artifacts[{i}].checksum {checksum:?}: expected sha256:<64 hex digits>"
                        ))
                    })?;
                Ok(Artifact {
                    version: field("version")?.to_owned(),
                    os: field("os")?.to_owned(),
                    arch: field("arch")?.to_owned(),
                    url: field("url")?.to_owned(),
                    sha256: sha256.to_ascii_lowercase(),
                })
            })
            .collect::<Result<_, BuildpackError>>()?;
        Ok(Self {
            artifacts,
            source: source.to_owned(),
        })
    }

    /// The inventory the platform chose with `BP_<NAME>_INVENTORY`, else
    /// `bundled` (the buildpack's own). `name` is upper case: `NODE`,
    /// `PYTHON`, `GO`.
    pub fn load(ctx: &BuildContext, name: &str, bundled: &str) -> Result<Self, BuildpackError> {
        let var = format!("BP_{name}_INVENTORY");
        let env = ctx.platform_env();
        let Some(given) = env.get(&var) else {
            return Self::parse(bundled, "the bundled inventory");
        };
        if is_url(given) {
            let pin_var = format!("{var}_SHA256");
            let pin = env
                .get(&pin_var)
                .map(|p| p.trim().to_ascii_lowercase())
                .ok_or_else(|| {
                    BuildpackError::new(format!("{var}={given}: a URL needs {pin_var}"))
                        .hint(format!(
                            "pin the mirror's inventory by its sha256 (`--env {pin_var}=$(sha256sum inventory.toml | cut -c1-64)`): it decides which downloads are trusted"
                        ))
                })?;
            if !is_sha256(&pin) {
                return Err(BuildpackError::new(format!(
                    "{pin_var}={pin}: expected 64 hex digits"
                )));
            }
            let layer = Layer::create(ctx.layers_dir(), SCRATCH)?;
            let file = format!("{}.toml", name.to_ascii_lowercase());
            layer.fetch(given, &pin, &file)?;
            let text = std::fs::read_to_string(layer.path().join(&file))
                .map_err(|e| BuildpackError::new(format!("reading {given}: {e}")))?;
            return Self::parse(&text, given);
        }
        let path = Path::new(given);
        if !path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(BuildpackError::new(format!(
                "{var}={given}: must be a URL (http, https or file) or a path inside the app"
            )));
        }
        let text = std::fs::read_to_string(ctx.app_dir().join(path))
            .map_err(|e| BuildpackError::new(format!("reading {var}={given}: {e}")))?;
        Self::parse(&text, given)
    }

    /// What the inventory offers for `os`/`arch`, as an error names it: its
    /// versions in the inventory's order, each once (`3.12.6, 3.11.10`),
    /// or `none for this platform`.
    pub fn offered(&self, os: &str, arch: &str) -> String {
        let mut versions: Vec<&str> = Vec::new();
        for a in self.for_target(os, arch) {
            if !versions.contains(&a.version.as_str()) {
                versions.push(&a.version);
            }
        }
        if versions.is_empty() {
            "none for this platform".to_owned()
        } else {
            versions.join(", ")
        }
    }

    /// The artifacts for `os`/`arch`.
    pub fn for_target<'a>(
        &'a self,
        os: &'a str,
        arch: &'a str,
    ) -> impl Iterator<Item = &'a Artifact> + 'a {
        self.artifacts
            .iter()
            .filter(move |a| a.os == os && a.arch == arch)
    }
}

/// `s` with every byte but the unreserved ones (RFC 3986) percent-encoded,
/// as a purl's components and qualifier values are written.
fn percent_encode(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn is_url(s: &str) -> bool {
    ["http://", "https://", "file://"]
        .iter()
        .any(|scheme| s.len() > scheme.len() && s[..scheme.len()].eq_ignore_ascii_case(scheme))
}

fn is_sha256(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "[[artifacts]]\nversion = \"3.12.6\"\nos = \"linux\"\narch = \"amd64\"\nurl = \"https://m/p.tar.gz\"\nchecksum = \"sha256:ABCDEF0000000000000000000000000000000000000000000000000000000000\"\n";

    #[test]
    fn parses_and_filters_by_target() {
        let inv = Inventory::parse(ONE, "inv.toml").unwrap();
        assert_eq!(inv.artifacts.len(), 1);
        let a = &inv.artifacts[0];
        assert_eq!(a.version, "3.12.6");
        assert!(a.sha256.starts_with("abcdef"), "lowercased");
        assert_eq!(inv.for_target("linux", "amd64").count(), 1);
        assert_eq!(inv.for_target("linux", "arm64").count(), 0);
    }

    #[test]
    fn what_is_offered_is_listed_once_in_order() {
        let two = format!("{ONE}{}{ONE}", ONE.replace("3.12.6", "3.11.10"));
        let inv = Inventory::parse(&two, "inv.toml").unwrap();
        assert_eq!(inv.offered("linux", "amd64"), "3.12.6, 3.11.10");
        assert_eq!(inv.offered("linux", "arm64"), "none for this platform");
    }

    #[test]
    fn errors_name_the_source_artifact_and_field() {
        let e =
            Inventory::parse(&ONE.replace("sha256:ABCDEF", "md5:ABCDEF"), "inv.toml").unwrap_err();
        assert!(
            e.message().starts_with("inv.toml: artifacts[0].checksum"),
            "{}",
            e.message()
        );
        let e = Inventory::parse(&ONE.replace("os = \"linux\"\n", ""), "inv.toml").unwrap_err();
        assert!(
            e.message().contains("artifacts[0].os: missing"),
            "{}",
            e.message()
        );
        let e = Inventory::parse("artifacts = 1", "inv.toml").unwrap_err();
        assert!(e.message().contains("no [[artifacts]]"), "{}", e.message());
        let e = Inventory::parse("[[artifacts]", "inv.toml").unwrap_err();
        assert!(e.message().starts_with("inv.toml: "), "{}", e.message());
    }

    #[test]
    fn purls_encode_what_is_not_unreserved() {
        assert_eq!(
            percent_encode("https://h/p?a=1&b=2#x%y"),
            "https%3A%2F%2Fh%2Fp%3Fa%3D1%26b%3D2%23x%25y"
        );
        let inv = Inventory::parse(ONE, "inv.toml").unwrap();
        let sbom = inv.artifacts[0].sbom("cpython");
        assert!(
            sbom.contains("pkg:generic/cpython@3.12.6?download_url=https%3A%2F%2Fm%2Fp.tar.gz"),
            "{sbom}"
        );
    }

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_url("https://mirror.example/python.toml"));
        assert!(is_url("FILE:///etc/cascade/node.toml"));
        assert!(!is_url("https://"));
        assert!(!is_url("inventories/node.toml"));
    }
}
