//! The Node.js inventory: which release to install, from where, pinned by
//! which sha256; and npm's version ranges (`engines.node`), which are not
//! Cargo's (`20` and `1.2` are X-ranges, `1.2.3` is exact, comparators are
//! separated by spaces, alternatives by `||`).

use cascade_sdk::BuildpackError;
use cascade_sdk::inventory::{self, Inventory};
use semver::{Version, VersionReq};

/// The inventory shipped with the buildpack.
pub const BUNDLED: &str = include_str!("../inventory.toml");

/// One downloadable release, its version parsed as semver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub version: Version,
    /// As the inventory has it.
    pub release: inventory::Artifact,
}

/// The artifacts of `inventory`, with their versions parsed (errors name
/// the inventory, the artifact and the version).
pub fn artifacts(inventory: &Inventory) -> Result<Vec<Artifact>, BuildpackError> {
    inventory
        .artifacts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let version = Version::parse(&a.version).map_err(|e| {
                BuildpackError::new(format!(
                    "{}: artifacts[{i}].version {:?}: {e}",
                    inventory.source, a.version
                ))
            })?;
            Ok(Artifact {
                version,
                release: a.clone(),
            })
        })
        .collect()
}

/// Parse an inventory's text; `source` names it in errors.
pub fn parse(text: &str, source: &str) -> Result<Vec<Artifact>, BuildpackError> {
    artifacts(&Inventory::parse(text, source)?)
}

/// An npm range (`engines.node`, `BP_NODE_VERSION`) as alternatives of
/// Cargo-style requirements.
pub fn parse_range(range: &str) -> Result<Vec<VersionReq>, String> {
    range
        .split("||")
        .map(|alternative| {
            let alternative = alternative.trim();
            if let Some((low, high)) = alternative.split_once(" - ") {
                return VersionReq::parse(&format!(
                    ">={}, <={}",
                    bare(low.trim()),
                    bare(high.trim())
                ))
                .map_err(|e| format!("{range:?}: {e}"));
            }
            // Comparators are separated by spaces; an operator may stand
            // apart from its version (`>= 18`).
            let mut comparators: Vec<String> = Vec::new();
            let mut pending = String::new();
            for token in alternative.split_whitespace() {
                if token.chars().all(|c| "<>=^~".contains(c)) {
                    pending.push_str(token);
                    continue;
                }
                let op_len =
                    token.len() - token.trim_start_matches(['<', '>', '=', '^', '~']).len();
                let (op, version) = token.split_at(op_len);
                let op = format!("{pending}{op}");
                pending.clear();
                comparators.push(comparator(&op, version));
            }
            if comparators.is_empty() {
                return Ok(VersionReq::STAR);
            }
            VersionReq::parse(&comparators.join(", ")).map_err(|e| format!("{range:?}: {e}"))
        })
        .collect()
}

fn bare(version: &str) -> &str {
    version.trim_start_matches(['v', '='])
}

/// One comparator in Cargo's syntax. Without an operator npm means an
/// X-range (`20`, `20.1`, `20.x`) or, for a full version, exactly it.
fn comparator(op: &str, version: &str) -> String {
    let version = bare(version);
    if !op.is_empty() {
        return format!("{op}{version}");
    }
    let parts: Vec<&str> = version.split('.').collect();
    let wild = |p: &&str| matches!(*p, "x" | "X" | "*");
    if version == "*" || parts.iter().any(wild) || parts.len() < 3 {
        let fixed: Vec<&str> = parts.iter().take_while(|p| !wild(p)).copied().collect();
        if fixed.is_empty() {
            "*".to_owned()
        } else {
            format!("{}.*", fixed.join("."))
        }
    } else {
        format!("={version}")
    }
}

/// The newest artifact for `os`/`arch` that `range` allows (any, when
/// `None`).
pub fn select<'a>(
    artifacts: &'a [Artifact],
    range: Option<&str>,
    os: &str,
    arch: &str,
) -> Result<&'a Artifact, String> {
    let reqs = match range {
        Some(r) => parse_range(r)?,
        None => vec![VersionReq::STAR],
    };
    artifacts
        .iter()
        .filter(|a| a.release.os == os && a.release.arch == arch)
        .filter(|a| reqs.iter().any(|r| r.matches(&a.version)))
        .max_by(|a, b| a.version.cmp(&b.version))
        .ok_or_else(|| {
            let mut offered: Vec<String> = artifacts
                .iter()
                .filter(|a| a.release.os == os && a.release.arch == arch)
                .map(|a| a.version.to_string())
                .collect();
            offered.dedup();
            format!(
                "no Node.js {} for {os}/{arch} in the inventory (it has: {})",
                range.unwrap_or("release"),
                if offered.is_empty() {
                    "none for this platform".to_owned()
                } else {
                    offered.join(", ")
                }
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(range: &str, version: &str) -> bool {
        let v = Version::parse(version).unwrap();
        parse_range(range).unwrap().iter().any(|r| r.matches(&v))
    }

    #[test]
    fn npm_ranges() {
        assert!(matches("20.x", "20.20.2"));
        assert!(matches("20", "20.1.0"));
        assert!(!matches("20", "21.0.0"));
        assert!(matches("1.2", "1.2.9") && !matches("1.2", "1.3.0"));
        assert!(matches("20.20.2", "20.20.2") && !matches("20.20.2", "20.20.3"));
        assert!(matches(">=18 <21", "20.0.0") && !matches(">=18 <21", "22.0.0"));
        assert!(matches(">= 18", "24.16.0"));
        assert!(matches("^20.1.0", "20.9.0") && !matches("^20.1.0", "21.0.0"));
        assert!(matches("~20.1", "20.1.5"));
        assert!(matches("18 || 22", "22.1.0") && !matches("18 || 22", "20.0.0"));
        assert!(matches("18.0.0 - 20.20.2", "20.20.2"));
        assert!(matches("*", "26.3.0") && matches("", "26.3.0"));
        assert!(matches("v20.20.2", "20.20.2"));
        assert!(parse_range(">=abc").is_err());
    }

    #[test]
    fn the_bundled_inventory_parses_and_selects() {
        let all = parse(BUNDLED, "inventory.toml").unwrap();
        assert!(
            all.iter()
                .all(|a| a.release.url.starts_with("https://nodejs.org/"))
        );
        let newest = select(&all, None, "linux", "amd64").unwrap();
        assert_eq!(newest.version, Version::new(26, 3, 0));
        let lts20 = select(&all, Some("20.x"), "linux", "arm64").unwrap();
        assert!(
            lts20
                .release
                .url
                .ends_with("node-v20.20.2-linux-arm64.tar.gz")
        );
        let e = select(&all, Some("16"), "linux", "amd64").unwrap_err();
        assert!(e.contains("it has: 26.3.0, 24.16.0, 20.20.2"), "{e}");
        assert!(select(&all, None, "linux", "s390x").is_err());
    }

    #[test]
    fn bad_inventories_name_the_field() {
        let e = parse(
            &format!(
                "[[artifacts]]\nversion = \"20\"\nos = \"linux\"\narch = \"amd64\"\nurl = \"u\"\nchecksum = \"sha256:{}\"\n",
                "0".repeat(64)
            ),
            "inv.toml",
        )
        .unwrap_err();
        assert!(
            e.message().contains("inv.toml: artifacts[0].version"),
            "{}",
            e.message()
        );
        let e = parse(
            "[[artifacts]]\nversion = \"20.0.0\"\nos = \"linux\"\narch = \"amd64\"\nurl = \"u\"\nchecksum = \"md5:00\"\n",
            "inv.toml",
        )
        .unwrap_err();
        assert!(
            e.message().contains("artifacts[0].checksum"),
            "{}",
            e.message()
        );
    }
}
