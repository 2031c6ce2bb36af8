//! Building a buildpack crate into its component with cargo, for
//! `cascade buildpack package`, the test harness and scaffolded crates.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum CargoError {
    #[error("{dir}: no buildpack.toml (a buildpack crate has one next to Cargo.toml)")]
    NotABuildpack { dir: PathBuf },
    #[error("{dir}: running cargo: {source}")]
    Spawn {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{dir}: cargo build --target wasm32-wasip2 failed (is the target installed? rustup target add wasm32-wasip2)"
    )]
    Failed { dir: PathBuf },
    #[error("{dir}: cargo built no .wasm (set crate-type = [\"cdylib\"] in [lib])")]
    NoComponent { dir: PathBuf },
}

/// Variables an outer cargo (a `cargo test` running this) sets that must not
/// leak into the nested build.
const SCRUB: &[&str] = &[
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
];

/// `cargo build --release --target wasm32-wasip2` of the crate in `dir`
/// (into `target_dir` when given: a cargo that is already running, such as
/// the `cargo test` calling this, holds its own target dir's lock); returns
/// the component cargo reports having built. Diagnostics go to stderr.
pub fn build_component(dir: &Path, target_dir: Option<&Path>) -> Result<PathBuf, CargoError> {
    if !dir.join("buildpack.toml").is_file() {
        return Err(CargoError::NotABuildpack { dir: dir.into() });
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .args(["--message-format", "json-render-diagnostics"])
        .stderr(Stdio::inherit());
    if let Some(t) = target_dir {
        cmd.arg("--target-dir").arg(t);
    }
    for var in SCRUB {
        cmd.env_remove(var);
    }
    let out = cmd.output().map_err(|source| CargoError::Spawn {
        dir: dir.into(),
        source,
    })?;
    if !out.status.success() {
        return Err(CargoError::Failed { dir: dir.into() });
    }
    let mut found = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact" {
            for f in msg["filenames"].as_array().into_iter().flatten() {
                if let Some(f) = f
                    .as_str()
                    .filter(|f| Path::new(f).extension().is_some_and(|e| e == "wasm"))
                {
                    found = Some(PathBuf::from(f));
                }
            }
        }
    }
    found.ok_or_else(|| CargoError::NoComponent { dir: dir.into() })
}
