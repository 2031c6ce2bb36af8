//! Which `go` builds the app: the build image's, unless go.mod asks for a
//! newer Go (its `go` or `toolchain` line) or `BP_GO_VERSION` names one,
//! or the build image has none; then a release from the inventory (the
//! bundled go.dev one, or the platform's mirror, `BP_GO_INVENTORY`),
//! fetched into a cached build-only layer and run by its path there.

use std::cmp::Ordering;

use cascade_sdk::inventory::{Artifact, Inventory};
use cascade_sdk::{BuildContext, BuildpackError, Layer, LayerTypes, Result, exec, log};

/// The inventory shipped with the buildpack.
pub const BUNDLED: &str = include_str!("../inventory.toml");

/// A Go version as go.mod and `go env GOVERSION` write it (`1.25`,
/// `1.25.0`, `go1.24.4`, `go1.21rc2`): numbers only, compared part by part
/// with missing parts as zero; a pre-release suffix sorts before its
/// release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoVersion {
    parts: Vec<u64>,
    pre: bool,
}

impl GoVersion {
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().trim_start_matches("go");
        let end = text
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len());
        let (numbers, rest) = text.split_at(end);
        let parts: Vec<u64> = numbers
            .split('.')
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .ok()?;
        (!parts.is_empty()).then_some(Self {
            parts,
            pre: !rest.is_empty(),
        })
    }
}

impl Ord for GoVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.parts.len().max(other.parts.len());
        let at = |v: &Self, i: usize| v.parts.get(i).copied().unwrap_or(0);
        (0..n)
            .map(|i| at(self, i).cmp(&at(other, i)))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| other.pre.cmp(&self.pre))
    }
}

impl PartialOrd for GoVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The Go that go.mod requires: the greater of its `go` and `toolchain`
/// lines.
pub fn required(go_mod: &str) -> Option<GoVersion> {
    go_mod
        .lines()
        .filter_map(|line| {
            let line = line.split("//").next().unwrap_or_default().trim();
            let (key, value) = line.split_once(char::is_whitespace)?;
            matches!(key, "go" | "toolchain")
                .then(|| GoVersion::parse(value))
                .flatten()
        })
        .max()
}

/// The `go` a build runs: a program name for the build image's, or the
/// path of a fetched one, with the layer that holds it.
pub struct Toolchain {
    pub program: String,
    pub layer: Option<Layer>,
}

/// Choose, and fetch when the build image's will not do.
pub fn choose(ctx: &BuildContext, required: Option<&GoVersion>) -> Result<Toolchain> {
    let asked = ctx.platform_env().get("BP_GO_VERSION");
    if asked.is_none() {
        match image_go() {
            Ok(have) if required.is_none_or(|r| have >= *r) => {
                log::info(format!("the build image's go ({})", version_text(&have)));
                return Ok(Toolchain {
                    program: "go".into(),
                    layer: None,
                });
            }
            Ok(have) => log::info(format!(
                "go.mod asks for Go {}; the build image has {}: installing one",
                required.map(version_text).unwrap_or_default(),
                version_text(&have)
            )),
            Err(e) if e.message().contains("denied") => return Err(e),
            Err(e) => log::info(format!(
                "no go in the build image ({}): installing one",
                e.message()
            )),
        }
    }
    let floor =
        match asked {
            Some(v) => Some(GoVersion::parse(v).ok_or_else(|| {
                BuildpackError::new(format!("BP_GO_VERSION={v}: not a Go version"))
            })?),
            None => required.cloned(),
        };
    let inventory = Inventory::load(ctx, "GO", BUNDLED)?;
    let target = ctx.target();
    let artifact = select(
        &inventory,
        floor.as_ref(),
        asked.is_some(),
        &target.os,
        &target.arch,
    )?;
    let layer = ctx.cached_layer("go", LayerTypes::BUILD | LayerTypes::CACHE, artifact)?;
    if layer.is_reused() {
        log::info(format!("Go {} unchanged: reusing it", artifact.version));
    } else {
        // go.dev tarballs hold one directory, go/.
        artifact.install(ctx, &layer, 1, "bin/go")?;
        log::info(format!("installed Go {}", artifact.version));
    }
    Ok(Toolchain {
        program: layer.path().join("bin/go").display().to_string(),
        layer: Some(layer),
    })
}

fn version_text(v: &GoVersion) -> String {
    v.parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// The build image's `go env GOVERSION`.
fn image_go() -> Result<GoVersion> {
    let out = exec::Command::new("go")
        .args(["env", "GOVERSION"])
        .env("GOENV", "off")
        .env("GOTOOLCHAIN", "local")
        .run_ok()?;
    let text = out.stdout_text();
    GoVersion::parse(&text)
        .ok_or_else(|| BuildpackError::new(format!("go env GOVERSION said {text:?}")))
}

/// `BP_GO_VERSION`'s release exactly (`exact`), or the newest release at
/// least `floor`, for `os`/`arch`.
fn select<'a>(
    inventory: &'a Inventory,
    floor: Option<&GoVersion>,
    exact: bool,
    os: &str,
    arch: &str,
) -> Result<&'a Artifact> {
    let mut found: Option<(&Artifact, GoVersion)> = None;
    for (i, a) in inventory.artifacts.iter().enumerate() {
        let v = GoVersion::parse(&a.version).ok_or_else(|| {
            BuildpackError::new(format!(
                "{}: artifacts[{i}].version {:?}: not a Go version",
                inventory.source, a.version
            ))
        })?;
        let fits = a.os == os
            && a.arch == arch
            && match floor {
                Some(f) if exact => v == *f,
                Some(f) => v >= *f && !v.pre,
                None => !v.pre,
            };
        if fits && found.as_ref().is_none_or(|(_, best)| v > *best) {
            found = Some((a, v));
        }
    }
    found.map(|(a, _)| a).ok_or_else(|| {
        BuildpackError::new(format!(
            "no Go {}{} for {os}/{arch} in {} (it has: {})",
            if exact { "" } else { ">= " },
            floor.map_or_else(|| "release".into(), version_text),
            inventory.source,
            inventory.offered(os, arch)
        ))
        .hint("give a mirror's inventory with BP_GO_INVENTORY, or a build image with a newer go")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> GoVersion {
        GoVersion::parse(s).unwrap()
    }

    #[test]
    fn go_versions_compare_as_go_does() {
        assert!(v("1.25") > v("1.24.11"));
        assert_eq!(v("1.25").cmp(&v("1.25.0")), Ordering::Equal);
        assert!(v("go1.21rc2") < v("1.21.0"));
        assert!(v("go1.19.8") < v("1.25"));
        assert_eq!(GoVersion::parse("banana"), None);
    }

    #[test]
    fn go_mod_requires_the_greater_of_go_and_toolchain() {
        assert_eq!(
            required("module x\n\ngo 1.22\ntoolchain go1.24.4\n"),
            Some(v("1.24.4"))
        );
        assert_eq!(required("module x\ngo 1.25 // comment\n"), Some(v("1.25")));
        assert_eq!(required("module x\n"), None);
        assert_eq!(required("module x\ngopher 9\n"), None);
    }

    #[test]
    fn the_inventory_gives_the_newest_release_at_least_asked() {
        let inv = Inventory::parse(BUNDLED, "inventory.toml").unwrap();
        let newest = select(&inv, None, false, "linux", "amd64").unwrap();
        assert_eq!(newest.version, "1.25.5");
        let at_least = select(&inv, Some(&v("1.24")), false, "linux", "arm64").unwrap();
        assert_eq!(at_least.version, "1.25.5");
        let exact = select(&inv, Some(&v("1.24.11")), true, "linux", "amd64").unwrap();
        assert!(exact.url.ends_with("go1.24.11.linux-amd64.tar.gz"));
        let e = select(&inv, Some(&v("1.99")), false, "linux", "amd64").unwrap_err();
        assert!(
            e.message().contains(
                "no Go >= 1.99 for linux/amd64 in inventory.toml (it has: 1.25.5, 1.24.11, 1.24.4)"
            ),
            "{}",
            e.message()
        );
    }
}
