//! `cascade/rust`: builds a Cargo project with the build host's `cargo`
//! (the `exec` capability) and puts its binaries in a launch layer.
//!
//! - `cargo build --release` runs in the app dir with `CARGO_HOME` (the
//!   crate registry cache) and `CARGO_TARGET_DIR` in cache layers, so a
//!   rebuild recompiles only what changed.
//! - Binaries are linked statically (`-C target-feature=+crt-static`) so
//!   they run on any run image, `scratch` included; `BP_RUST_STATIC=false`
//!   turns that off.
//! - One process per binary target, named after it; the package's own
//!   binary (else the first) is `web` and the default.
//! - The `bin` layer is reused, blob and all, when the binaries' bytes did
//!   not change.

use cascade_sdk::toml::{Table, Value};
use cascade_sdk::{
    BuildContext, BuildResult, Buildpack, BuildpackError, DetectContext, DetectResult, LayerTypes,
    Result, ResultExt, exec,
};

#[derive(Default)]
pub struct Rust;

/// The binary targets of a Cargo.toml: `[[bin]]` names, else the package
/// name when `src/main.rs` exists.
pub fn binaries(manifest: &Table, has_main: bool) -> Vec<String> {
    let mut bins: Vec<String> = manifest
        .get("bin")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let package = manifest
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str);
    if bins.is_empty()
        && has_main
        && let Some(p) = package
    {
        bins.push(p.to_owned());
    }
    bins
}

impl Buildpack for Rust {
    fn detect(&self, ctx: &DetectContext) -> Result<DetectResult> {
        Ok(if ctx.app_dir().join("Cargo.toml").is_file() {
            DetectResult::pass()
        } else {
            DetectResult::fail("no Cargo.toml")
        })
    }

    fn build(&self, ctx: &BuildContext) -> Result<BuildResult> {
        let manifest: Table = std::fs::read_to_string(ctx.app_dir().join("Cargo.toml"))?
            .parse()
            .map_err(|e| BuildpackError::new(format!("Cargo.toml: {e}")))?;
        let bins = binaries(&manifest, ctx.app_dir().join("src/main.rs").is_file());
        if bins.is_empty() {
            return Err(BuildpackError::new("Cargo.toml: no binary target")
                .hint("add src/main.rs or a [[bin]] section"));
        }
        // Caches: kept between builds, never in the image.
        let cargo_home = ctx.cached_layer("cargo-home", LayerTypes::CACHE, &Table::new())?;
        let target = ctx.cached_layer("target", LayerTypes::CACHE, &Table::new())?;
        let static_link =
            ctx.platform_env().get("BP_RUST_STATIC").map(String::as_str) != Some("false");
        let mut cargo = exec::Command::new("cargo")
            .args(["build", "--release"])
            .env("CARGO_HOME", cargo_home.path().display().to_string())
            .env("CARGO_TARGET_DIR", target.path().display().to_string())
            .env("CARGO_TERM_COLOR", "never")
            .current_dir(ctx.app_dir());
        if manifest.get("package").is_some() && ctx.app_dir().join("Cargo.lock").is_file() {
            cargo = cargo.arg("--locked");
        }
        if static_link {
            cargo = cargo.env("RUSTFLAGS", "-C target-feature=+crt-static");
        }
        cargo.run_ok()?;

        let built: Vec<(String, Vec<u8>)> = bins
            .iter()
            .map(|b| {
                std::fs::read(target.path().join("release").join(b))
                    .map(|bytes| (b.clone(), bytes))
                    .context(format!("reading the built binary {b}"))
            })
            .collect::<Result<_>>()?;
        let package = manifest
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (bin, processes) = cascade_sdk::launch_executables(ctx, &built, package)?;
        let mut result = BuildResult::new()
            .layer(cargo_home)
            .layer(target)
            .layer(bin);
        for p in processes {
            result = result.process(p);
        }
        Ok(result)
    }
}

cascade_sdk::export_buildpack!(Rust);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_from_bin_sections_or_the_package() {
        let m: Table = "[package]\nname = \"web-app\"\n".parse().unwrap();
        assert_eq!(binaries(&m, true), ["web-app"]);
        assert!(binaries(&m, false).is_empty());
        let m: Table = "[package]\nname = \"x\"\n[[bin]]\nname = \"a\"\n[[bin]]\nname = \"b\"\n"
            .parse()
            .unwrap();
        assert_eq!(binaries(&m, true), ["a", "b"]);
    }
}
