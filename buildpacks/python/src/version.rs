//! Which CPython: what the app asks for, and the newest release of the
//! inventory that satisfies it.
//!
//! Requests come, first found first, from `BP_PYTHON_VERSION`,
//! `.python-version` (pyenv, uv), `runtime.txt` (`python-3.12.6`, Heroku's),
//! `Pipfile.lock`'s `_meta.requires`, `pyproject.toml` `[project]
//! requires-python` or Poetry's
//! `[tool.poetry.dependencies] python`. A bare version means that release
//! line (`3.12` is `==3.12.*`, `3.12.6` exactly it); anything else is a PEP
//! 440 specifier set, or a Poetry constraint (`^3.10`, `~3.11`, `||`).

use std::path::Path;
use std::str::FromStr;

use cascade_sdk::BuildpackError;
use cascade_sdk::inventory::{Artifact, Inventory};
use pep440_rs::{Version, VersionSpecifiers};

/// What the app asked for, and where it said so.
#[derive(Debug, Clone)]
pub struct Request {
    /// Alternatives (Poetry's `||`); plain PEP 440 has one. Empty: any.
    alternatives: Vec<VersionSpecifiers>,
    /// The request names a pre-release (`3.13.0rc1`), so pre-releases
    /// may be chosen; otherwise they never are.
    prerelease: bool,
    /// As written.
    pub text: String,
    /// `BP_PYTHON_VERSION`, `.python-version`, ...
    pub source: &'static str,
}

impl Request {
    /// Parse `text` as found in `source`.
    pub fn parse(text: &str, source: &'static str) -> Result<Self, BuildpackError> {
        let text = text.trim();
        let bad = |e: String| {
            BuildpackError::new(format!("{source}: {text:?} is not a Python version: {e}"))
                .hint("write a version such as 3.12 or 3.12.6, or a range such as >=3.11,<3.13")
        };
        let alternatives = if text == "*" {
            Vec::new()
        } else {
            text.split("||")
                .map(|alt| one(alt.trim()).map_err(bad))
                .collect::<Result<_, _>>()?
        };
        let bytes = text.as_bytes();
        let prerelease = bytes
            .windows(2)
            .any(|w| w[0].is_ascii_digit() && matches!(w[1], b'a' | b'b' | b'r'));
        Ok(Self {
            alternatives,
            prerelease,
            text: text.to_owned(),
            source,
        })
    }

    pub fn allows(&self, version: &Version) -> bool {
        (self.prerelease || !version.any_prerelease())
            && (self.alternatives.is_empty()
                || self.alternatives.iter().any(|s| s.contains(version)))
    }
}

/// One alternative: a bare version (`3.12` is that release line, `3.12.6`
/// that release; `python-`/`cpython-` prefixes as pyenv and Heroku write
/// them), else PEP 440 as written (`>= 3.10`, `~=3.11`), else Poetry's
/// syntax.
fn one(alt: &str) -> Result<VersionSpecifiers, String> {
    let bare = alt
        .strip_prefix("python-")
        .or_else(|| alt.strip_prefix("cpython-"))
        .or_else(|| alt.strip_prefix("python"))
        .unwrap_or(alt);
    if !bare.is_empty() && bare.chars().all(|c| c.is_ascii_digit() || c == '.') {
        let parts = bare.split('.').filter(|p| !p.is_empty()).count();
        let spec = if parts >= 3 {
            format!("=={bare}")
        } else {
            format!("=={bare}.*")
        };
        return VersionSpecifiers::from_str(&spec).map_err(|e| e.to_string());
    }
    VersionSpecifiers::from_str(alt)
        .or_else(|_| VersionSpecifiers::from_str(&poetry_to_pep440(alt)))
        .map_err(|e| e.to_string())
}

/// Poetry's caret and tilde constraints (`^3.10`, `~3.11.2`) and
/// space-separated comparators as PEP 440; PEP 440 text passes unchanged.
fn poetry_to_pep440(constraint: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for part in constraint
        .split([',', ' '])
        .filter(|p| !p.trim().is_empty())
    {
        let part = part.trim();
        if let Some(v) = part.strip_prefix('^') {
            let nums: Vec<u64> = v.split('.').filter_map(|n| n.parse().ok()).collect();
            // ^3.10 < 4.0; ^0.3 < 0.4 (the first non-zero part is kept).
            let upper = match nums.as_slice() {
                [0, minor, ..] if *minor != 0 => format!("0.{}", minor + 1),
                [major, ..] => format!("{}", major + 1),
                [] => String::new(),
            };
            out.push(format!(">={v}"));
            if !upper.is_empty() {
                out.push(format!("<{upper}"));
            }
        } else if let Some(v) = part.strip_prefix('~').filter(|v| !v.starts_with('=')) {
            let nums: Vec<u64> = v.split('.').filter_map(|n| n.parse().ok()).collect();
            out.push(format!(">={v}"));
            match nums.as_slice() {
                [major] => out.push(format!("<{}", major + 1)),
                [major, minor, ..] => out.push(format!("<{major}.{}", minor + 1)),
                [] => {}
            }
        } else if part.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            out.push(format!("=={part}"));
        } else {
            out.push(part.to_owned());
        }
    }
    out.join(", ")
}

/// The app's request, first found first; `None` means "the newest".
pub fn requested(env: Option<&str>, app: &Path) -> Result<Option<Request>, BuildpackError> {
    if let Some(v) = env {
        return Request::parse(v, "BP_PYTHON_VERSION").map(Some);
    }
    let read = |name: &str| std::fs::read_to_string(app.join(name)).ok();
    if let Some(text) = read(".python-version") {
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'));
        if let Some(line) = first {
            return Request::parse(line, ".python-version").map(Some);
        }
    }
    if let Some(text) = read("runtime.txt") {
        return Request::parse(text.trim(), "runtime.txt").map(Some);
    }
    if let Some(v) = read("Pipfile.lock").and_then(|t| crate::pipfile::python(&t)) {
        return Request::parse(&v, "Pipfile.lock _meta.requires").map(Some);
    }
    if let Some(text) = read("pyproject.toml") {
        let doc: cascade_sdk::toml::Table = text
            .parse()
            .map_err(|e| BuildpackError::new(format!("pyproject.toml: {e}")))?;
        let project = doc
            .get("project")
            .and_then(|p| p.get("requires-python"))
            .and_then(|v| v.as_str());
        if let Some(spec) = project {
            return Request::parse(spec, "pyproject.toml [project] requires-python").map(Some);
        }
        let poetry = doc
            .get("tool")
            .and_then(|t| t.get("poetry"))
            .and_then(|p| p.get("dependencies"))
            .and_then(|d| d.get("python"))
            .and_then(|v| v.as_str());
        if let Some(spec) = poetry {
            return Request::parse(spec, "pyproject.toml [tool.poetry.dependencies] python")
                .map(Some);
        }
    }
    Ok(None)
}

/// The newest release for `os`/`arch` that `request` allows (any, when
/// `None`), with its version parsed.
pub fn select<'a>(
    inventory: &'a Inventory,
    request: Option<&Request>,
    os: &str,
    arch: &str,
) -> Result<(&'a Artifact, Version), BuildpackError> {
    let mut offered: Vec<(&Artifact, Version)> = Vec::new();
    for (i, a) in inventory.artifacts.iter().enumerate() {
        if a.os != os || a.arch != arch {
            continue;
        }
        let v = Version::from_str(&a.version).map_err(|e| {
            BuildpackError::new(format!(
                "{}: artifacts[{i}].version {:?}: {e}",
                inventory.source, a.version
            ))
        })?;
        offered.push((a, v));
    }
    offered.sort_by(|a, b| b.1.cmp(&a.1));
    if let Some(found) = offered
        .iter()
        .find(|(_, v)| request.map_or(!v.any_prerelease(), |r| r.allows(v)))
    {
        return Ok((found.0, found.1.clone()));
    }
    let asked = request.map_or_else(
        || "a release".to_owned(),
        |r| format!("{} ({})", r.text, r.source),
    );
    Err(BuildpackError::new(format!(
        "no CPython {asked} for {os}/{arch} in {} (it has: {})",
        inventory.source,
        inventory.offered(os, arch)
    ))
    .hint("ask for a version the inventory has (.python-version, or BP_PYTHON_VERSION), or give a mirror's inventory with BP_PYTHON_INVENTORY"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(text: &str, version: &str) -> bool {
        Request::parse(text, "test")
            .unwrap()
            .allows(&Version::from_str(version).unwrap())
    }

    #[test]
    fn bare_versions_mean_a_release_line_or_a_release() {
        assert!(allows("3.12", "3.12.6") && !allows("3.12", "3.13.0"));
        assert!(allows("3.12.6", "3.12.6") && !allows("3.12.6", "3.12.5"));
        assert!(allows("python-3.11.9", "3.11.9"));
        assert!(allows("cpython-3.11", "3.11.10"));
        assert!(allows("3", "3.13.1"));
    }

    #[test]
    fn pep440_and_poetry_constraints() {
        assert!(allows(">=3.10", "3.12.6"));
        assert!(allows(">=3.9,<3.12", "3.11.10") && !allows(">=3.9,<3.12", "3.12.0"));
        assert!(allows("~=3.11.0", "3.11.9") && !allows("~=3.11.0", "3.12.0"));
        assert!(allows("==3.12.*", "3.12.5"));
        assert!(allows("^3.10", "3.12.6") && !allows("^3.10", "4.0.0"));
        assert!(allows("~3.11", "3.11.2") && !allows("~3.11", "3.12.0"));
        assert!(allows(">=3.9 <3.12", "3.11.1"));
        // PEP 440 with spaces, as pyproject files often write it.
        assert!(allows(">= 3.10", "3.12.6") && allows("~= 3.11", "3.11.9"));
        assert!(allows("== 3.12.*", "3.12.6"));
        assert!(allows("*", "3.12.6"));
        // Bare versions mean the same inside alternatives.
        assert!(allows("3.12 || 3.13", "3.12.6") && !allows("3.12 || 3.13", "3.11.9"));
        // Pre-releases only when asked for.
        assert!(!allows(">=3.12", "3.14.0rc1") && allows("3.14.0rc1", "3.14.0rc1"));
        assert!(allows("3.8 || ^3.11", "3.12.1") && !allows("3.8 || ^3.11", "3.10.0"));
        assert!(Request::parse("three", "test").is_err());
        assert!(Request::parse(">=banana", "test").is_err());
    }

    fn inventory() -> Inventory {
        use std::fmt::Write as _;
        let mut text = String::new();
        for (v, arch) in [
            ("3.12.6", "amd64"),
            ("3.11.10", "amd64"),
            ("3.12.6", "arm64"),
        ] {
            let _ = write!(
                text,
                "[[artifacts]]\nversion = \"{v}\"\nos = \"linux\"\narch = \"{arch}\"\nurl = \"https://m/{v}-{arch}.tar.gz\"\nchecksum = \"sha256:{}\"\n",
                "a".repeat(64)
            );
        }
        Inventory::parse(&text, "inv.toml").unwrap()
    }

    #[test]
    fn the_newest_allowed_release_for_the_platform() {
        let inv = inventory();
        let (a, v) = select(&inv, None, "linux", "amd64").unwrap();
        assert_eq!(
            (a.version.as_str(), v.to_string()),
            ("3.12.6", "3.12.6".into())
        );
        let req = Request::parse("3.11", ".python-version").unwrap();
        let (a, _) = select(&inv, Some(&req), "linux", "amd64").unwrap();
        assert!(a.url.ends_with("3.11.10-amd64.tar.gz"));
        let req = Request::parse("3.10", ".python-version").unwrap();
        let e = select(&inv, Some(&req), "linux", "amd64").unwrap_err();
        assert!(
            e.message()
                .contains("no CPython 3.10 (.python-version) for linux/amd64 in inv.toml (it has: 3.12.6, 3.11.10)"),
            "{}",
            e.message()
        );
        assert!(select(&inv, None, "linux", "s390x").is_err());
    }

    #[test]
    fn the_bundled_inventory_parses() {
        let inv = Inventory::parse(crate::BUNDLED_INVENTORY, "inventory.toml").unwrap();
        for arch in ["amd64", "arm64"] {
            let (a, _) = select(&inv, None, "linux", arch).unwrap();
            assert!(a.url.contains("install_only"), "{}", a.url);
        }
    }

    #[test]
    fn requests_are_read_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path();
        assert!(requested(None, app).unwrap().is_none());
        std::fs::write(
            app.join("pyproject.toml"),
            "[tool.poetry.dependencies]\npython = \"^3.11\"\n",
        )
        .unwrap();
        assert_eq!(requested(None, app).unwrap().unwrap().text, "^3.11");
        std::fs::write(
            app.join("pyproject.toml"),
            "[project]\nname = \"a\"\nrequires-python = \">=3.10\"\n",
        )
        .unwrap();
        assert_eq!(requested(None, app).unwrap().unwrap().text, ">=3.10");
        std::fs::write(app.join("runtime.txt"), "python-3.11.9\n").unwrap();
        assert_eq!(requested(None, app).unwrap().unwrap().source, "runtime.txt");
        std::fs::write(app.join(".python-version"), "# pinned\n3.12\n").unwrap();
        let r = requested(None, app).unwrap().unwrap();
        assert_eq!((r.text.as_str(), r.source), ("3.12", ".python-version"));
        let r = requested(Some("3.11"), app).unwrap().unwrap();
        assert_eq!(r.source, "BP_PYTHON_VERSION");
        std::fs::write(app.join("pyproject.toml"), "[project\n").unwrap();
        std::fs::remove_file(app.join(".python-version")).unwrap();
        std::fs::remove_file(app.join("runtime.txt")).unwrap();
        let e = requested(None, app).unwrap_err();
        assert!(
            e.message().starts_with("pyproject.toml: "),
            "{}",
            e.message()
        );
    }
}
