//! `cascade new buildpack NAME`: a buildpack crate that builds and passes
//! its tests as generated.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use super::exit::InvalidInput;
use cascade_lifecycle::ids::BuildpackId;

#[derive(Debug, Subcommand)]
pub enum NewCommand {
    /// A buildpack crate: Cargo.toml, buildpack.toml, src/lib.rs (detect and
    /// build), a test that runs it with the cascade-test harness, and a
    /// fixture app. `cargo test` passes in it as generated;
    /// `cascade buildpack package` packages it.
    Buildpack(NewBuildpackArgs),
}

#[derive(Debug, Args)]
pub struct NewBuildpackArgs {
    /// The crate name (also the directory created).
    pub name: String,

    /// The buildpack id (CNB: `<namespace>/<name>`). Default: example/NAME.
    #[arg(long)]
    pub id: Option<String>,

    /// Where to create the crate. Default: the current directory.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,

    /// Take cascade-sdk and cascade-test from this Cascade source tree (a
    /// `[patch.crates-io]` section) instead of crates.io, and its
    /// Cargo.lock as the crate's. Without it the crate depends on them by
    /// version only.
    #[arg(long, value_name = "DIR")]
    pub cascade_path: Option<PathBuf>,
}

pub fn run(cmd: &NewCommand) -> anyhow::Result<()> {
    match cmd {
        NewCommand::Buildpack(args) => buildpack(args),
    }
}

fn buildpack(args: &NewBuildpackArgs) -> anyhow::Result<()> {
    let name = &args.name;
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid {
        return Err(InvalidInput(format!(
            "NAME {name:?}: use lowercase letters, digits, '-' and '_', starting with a letter"
        ))
        .into());
    }
    let id = args.id.clone().unwrap_or_else(|| format!("example/{name}"));
    BuildpackId::new(id.clone()).map_err(|e| InvalidInput(format!("--id: {e}")))?;
    let cascade = args
        .cascade_path
        .as_deref()
        .map(|dir| {
            if !dir.join("sdk/Cargo.toml").is_file() {
                return Err(InvalidInput(format!(
                    "--cascade-path {}: not a Cascade source tree (no sdk/Cargo.toml)",
                    dir.display()
                ))
                .into());
            }
            dir.canonicalize()
                .with_context(|| format!("resolving {}", dir.display()))
        })
        .transpose()?;
    let root = args.dir.join(name);
    if root.exists() {
        return Err(InvalidInput(format!("{}: already exists", root.display())).into());
    }
    let files = files(name, &id, cascade.as_deref());
    for (path, text) in &files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("under the crate"))
            .with_context(|| format!("creating {}", path.display()))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    // The versions Cascade itself is tested with.
    if let Some(lock) = cascade
        .map(|c| c.join("Cargo.lock"))
        .filter(|l| l.is_file())
    {
        std::fs::copy(&lock, root.join("Cargo.lock"))
            .with_context(|| format!("copying {}", lock.display()))?;
    }
    println!("Created buildpack {id} in {}", root.display());
    println!(
        "  cd {} && cargo test                # runs it in-process, no Docker",
        root.display()
    );
    println!(
        "  cascade buildpack package {}       # one portable .wasm",
        root.display()
    );
    Ok(())
}

/// The crate's files. `cascade`: a source tree to take Cascade's crates
/// from instead of crates.io.
fn files(name: &str, id: &str, cascade: Option<&Path>) -> Vec<(&'static str, String)> {
    let version = env!("CARGO_PKG_VERSION");
    let patch = cascade
        .map(|c| {
            format!(
                "\n# Cascade's crates from a source tree (cascade new --cascade-path).\n\
                 [patch.crates-io]\ncascade-sdk = {{ path = \"{}\" }}\ncascade-test = {{ path = \"{}\" }}\n",
                c.join("sdk").display(),
                c.join("sdk/test").display()
            )
        })
        .unwrap_or_default();
    vec![
        (
            "Cargo.toml",
            format!(
                r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the wasm component; rlib: so tests can link the crate natively.
crate-type = ["cdylib", "rlib"]

[dependencies]
cascade-sdk = "{version}"
serde = {{ version = "1", features = ["derive"] }}

[dev-dependencies]
cascade-test = "{version}"

# Its own workspace, even when created inside another one.
[workspace]

[profile.release]
opt-level = "s"
lto = true
strip = true

# The test harness links wasmtime: without debuginfo for dependencies its
# test binary is a tenth of the size and links much faster.
[profile.dev.package."*"]
debug = false

# The test harness compiles the buildpack with wasmtime's Cranelift:
# optimising Cranelift makes debug test runs much faster.
[profile.dev.package.cranelift-codegen]
opt-level = 2
[profile.dev.package.regalloc2]
opt-level = 2
[profile.dev.package.wasmtime-internal-cranelift]
opt-level = 2
{patch}"#
            ),
        ),
        (
            "buildpack.toml",
            format!(
                "api = \"0.12\"\n\n[buildpack]\nid = \"{id}\"\nversion = \"0.1.0\"\nname = \"{name}\"\n"
            ),
        ),
        ("src/lib.rs", LIB_RS.to_owned()),
        ("tests/buildpack.rs", TEST_RS.to_owned()),
        ("tests/fixtures/app/hello.txt", "hello, world\n".to_owned()),
        (".gitignore", "/target\n".to_owned()),
    ]
}

/// The scaffold's `src/lib.rs`: the whole of a buildpack in under 35 lines
/// (a test below holds it there).
const LIB_RS: &str = r#"//! A Cascade buildpack: `detect` says whether it applies, `build` adds layers and processes.

use cascade_sdk::{BuildContext, BuildResult, Buildpack, DetectContext, DetectResult};
use cascade_sdk::{LayerTypes, Process, Result, fs, log};

#[derive(Default)]
pub struct Hello;

#[derive(serde::Serialize)] // what the layer depends on: rebuilt when it changes
struct Greeting {
    sha256: String,
}

impl Buildpack for Hello {
    fn detect(&self, ctx: &DetectContext) -> Result<DetectResult> {
        let found = ctx.app_dir().join("hello.txt").is_file();
        Ok(DetectResult::pass_if(found, "no hello.txt"))
    }

    fn build(&self, ctx: &BuildContext) -> Result<BuildResult> {
        let hello = ctx.app_dir().join("hello.txt");
        let sha256 = fs::sha256_file(&hello)?;
        let meta = Greeting { sha256 };
        let layer = ctx.cached_layer("greeting", LayerTypes::LAUNCH | LayerTypes::CACHE, &meta)?;
        if !layer.is_reused() {
            fs::copy(&hello, layer.path().join("motd"))?;
            log::info("wrote the greeting");
        }
        let web = Process::new("web", ["/bin/cat", "/workspace/hello.txt"]).default(true);
        Ok(BuildResult::new().layer(layer).process(web))
    }
}

cascade_sdk::export_buildpack!(Hello);
"#;

/// The scaffold's `tests/buildpack.rs`.
const TEST_RS: &str = r#"//! Runs the buildpack in-process against tests/fixtures/app: milliseconds,
//! no Docker.

use cascade_test::BuildpackTest;

const APP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/app");

#[test]
fn detects_an_app_with_hello_txt() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
    bp.detect(APP).assert_pass();
    bp.detect(env!("CARGO_MANIFEST_DIR")).assert_fail("hello.txt");
}

#[test]
fn builds_a_greeting_layer_and_a_web_process() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
    let out = bp.build(APP);
    out.layer("greeting")
        .assert_launch()
        .assert_cache()
        .assert_file("motd", "hello, world\n");
    out.process("web")
        .assert_default()
        .assert_command(&["/bin/cat", "/workspace/hello.txt"]);
    assert!(out.logs().iter().any(|l| l.contains("wrote the greeting")));
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hello_buildpack_stays_under_35_lines() {
        assert!(LIB_RS.lines().count() < 35, "{}", LIB_RS.lines().count());
    }

    #[test]
    fn cascade_crates_come_by_version_and_from_a_tree_only_when_asked() {
        let manifest = |cascade: Option<&Path>| {
            files("hello", "example/hello", cascade)
                .into_iter()
                .find(|(name, _)| *name == "Cargo.toml")
                .unwrap()
                .1
        };
        let plain = manifest(None);
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            plain.contains(&format!("cascade-sdk = \"{version}\"")),
            "{plain}"
        );
        assert!(
            plain.contains(&format!("cascade-test = \"{version}\"")),
            "{plain}"
        );
        assert!(!plain.contains("path ="), "{plain}");
        let patched = manifest(Some(Path::new("/src/cascade")));
        assert!(patched.contains("[patch.crates-io]"), "{patched}");
        assert!(
            patched.contains("cascade-sdk = { path = \"/src/cascade/sdk\" }"),
            "{patched}"
        );
        assert!(
            patched.contains("cascade-test = { path = \"/src/cascade/sdk/test\" }"),
            "{patched}"
        );
    }
}
