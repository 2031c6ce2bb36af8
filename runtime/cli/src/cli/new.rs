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

    /// A Cascade source tree to take cascade-sdk and cascade-test from (they
    /// are not on crates.io yet). Default: the tree this cascade was built
    /// from.
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
        .clone()
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")));
    if !cascade.join("sdk/Cargo.toml").is_file() {
        return Err(InvalidInput(format!(
            "{}: not a Cascade source tree (no sdk/Cargo.toml); pass --cascade-path",
            cascade.display()
        ))
        .into());
    }
    let cascade = cascade
        .canonicalize()
        .with_context(|| format!("resolving {}", cascade.display()))?;
    let root = args.dir.join(name);
    if root.exists() {
        return Err(InvalidInput(format!("{}: already exists", root.display())).into());
    }
    let files = files(name, &id, &cascade);
    for (path, text) in &files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("under the crate"))
            .with_context(|| format!("creating {}", path.display()))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    // The versions Cascade itself is tested with.
    let lock = cascade.join("Cargo.lock");
    if lock.is_file() {
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

fn files(name: &str, id: &str, cascade: &Path) -> Vec<(&'static str, String)> {
    let sdk = cascade.join("sdk");
    let test = cascade.join("sdk/test");
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
cascade-sdk = {{ path = "{sdk}" }}

[dev-dependencies]
cascade-test = {{ path = "{test}" }}

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
"#,
                sdk = sdk.display(),
                test = test.display()
            ),
        ),
        (
            "buildpack.toml",
            format!(
                "api = \"0.12\"\n\n[buildpack]\nid = \"{id}\"\nversion = \"0.1.0\"\nname = \"{name}\"\n"
            ),
        ),
        (
            "src/lib.rs",
            LIB_RS.replace("GREETING_DIR", &id.replace('/', "_")),
        ),
        ("tests/buildpack.rs", TEST_RS.to_owned()),
        ("tests/fixtures/app/hello.txt", "hello, world\n".to_owned()),
        (".gitignore", "/target\n".to_owned()),
    ]
}

/// The scaffold's `src/lib.rs` (`GREETING_DIR`: the escaped buildpack id).
const LIB_RS: &str = r#"//! A Cascade buildpack. `detect` decides whether it applies to an app;
//! `build` contributes layers and processes. Both run in Cascade's sandbox:
//! the app is at `ctx.app_dir()`, this buildpack's layers under
//! `ctx.layers_dir()`, and nothing else of the host is visible.

use cascade_sdk::{
    BuildContext, BuildResult, Buildpack, DetectContext, DetectResult, LayerTypes, Process, Result,
    log, toml,
};

#[derive(Default)]
pub struct Hello;

impl Buildpack for Hello {
    fn detect(&self, ctx: &DetectContext) -> Result<DetectResult> {
        Ok(if ctx.app_dir().join("hello.txt").is_file() {
            DetectResult::pass()
        } else {
            DetectResult::fail("no hello.txt")
        })
    }

    fn build(&self, ctx: &BuildContext) -> Result<BuildResult> {
        let greeting = std::fs::read_to_string(ctx.app_dir().join("hello.txt"))?;
        // Rebuilt only when hello.txt changes; reused as it was otherwise.
        let mut metadata = toml::Table::new();
        metadata.insert("greeting".into(), greeting.clone().into());
        let layer = ctx.cached_layer("greeting", LayerTypes::LAUNCH | LayerTypes::CACHE, metadata)?;
        if layer.is_reused() {
            log::info("greeting unchanged");
        } else {
            std::fs::create_dir_all(layer.path().join("bin"))?;
            std::fs::write(layer.path().join("motd"), &greeting)?;
            log::info("wrote the greeting");
        }
        let layer = layer.env_default("GREETING_FILE", "/layers/GREETING_DIR/greeting/motd");
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
