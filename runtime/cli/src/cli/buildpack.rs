//! `cascade buildpack package` and `cascade buildpack publish`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use super::Format;
use super::exit::InvalidInput;
use cascade_lifecycle::distribution;
use cascade_lifecycle::manifest::{API_VERSION, BuildpackManifest};
use cascade_lifecycle::oci::registry::Registry;
use cascade_lifecycle::oci::{Digest, ImageRef};

#[derive(Debug, Subcommand)]
pub enum BuildpackCommand {
    /// Build a buildpack crate for wasm32-wasip2 (or take a built .wasm),
    /// check it as the host will (component, embedded buildpack.toml, API
    /// version) and write it as `<id>-<version>.wasm`: the whole buildpack in
    /// one portable file.
    Package(PackageArgs),

    /// Push a buildpack .wasm to a registry as a CNCF Wasm OCI artifact
    /// (config application/vnd.wasm.config.v0+json, one application/wasm
    /// layer). Prints the reference by digest to put in builder.toml as
    /// `uri = "docker://HOST/REPO@sha256:..."`.
    Publish(PublishArgs),
}

#[derive(Debug, Args)]
pub struct PackageArgs {
    /// A buildpack crate (a directory with Cargo.toml and buildpack.toml) or
    /// a built .wasm component.
    #[arg(default_value = ".")]
    pub path: PathBuf,

    /// Where to write the packaged buildpack. Default: <crate>/target/buildpack.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: Option<PathBuf>,

    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The buildpack component (.wasm).
    pub wasm: PathBuf,

    /// Where to push it: HOST[:PORT]/REPO[:TAG].
    pub reference: String,

    /// A registry host that may be reached over plain HTTP (loopback always
    /// may). Repeatable.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,

    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(cmd: &BuildpackCommand) -> anyhow::Result<()> {
    match cmd {
        BuildpackCommand::Package(args) => package(args),
        BuildpackCommand::Publish(args) => publish(args),
    }
}

#[derive(serde::Serialize)]
struct Packaged {
    id: String,
    version: String,
    api: &'static str,
    component: String,
    size: usize,
    path: PathBuf,
}

fn package(args: &PackageArgs) -> anyhow::Result<()> {
    let (wasm_path, default_out) = if args.path.is_dir() {
        eprintln!("===> building {} for wasm32-wasip2", args.path.display());
        let built = cascade_lifecycle::cargo::build_component(&args.path, None)
            .map_err(|e| InvalidInput(e.to_string()))?;
        (built, args.path.join("target/buildpack"))
    } else {
        (
            args.path.clone(),
            args.path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        )
    };
    let bytes = std::fs::read(&wasm_path)
        .map_err(|e| InvalidInput(format!("{}: {e}", wasm_path.display())))?;
    let name = wasm_path.display().to_string();
    let bp = BuildpackManifest::from_component(&bytes, &name)?;
    let out_dir = args.output.clone().unwrap_or(default_out);
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let out = out_dir.join(format!(
        "{}-{}.wasm",
        bp.buildpack.id.escaped(),
        bp.buildpack.version
    ));
    if out != wasm_path {
        std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    }
    let p = Packaged {
        id: bp.buildpack.id.to_string(),
        version: bp.buildpack.version.clone(),
        api: API_VERSION,
        component: Digest::of(&bytes).to_string(),
        size: bytes.len(),
        path: out,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&p)?),
        Format::Text => println!(
            "Packaged {}@{} (buildpack API {}) as {}\n  {}  {} bytes",
            p.id,
            p.version,
            p.api,
            p.path.display(),
            p.component,
            p.size
        ),
    }
    Ok(())
}

fn publish(args: &PublishArgs) -> anyhow::Result<()> {
    let ImageRef::Registry(target) =
        ImageRef::parse(&args.reference).map_err(|e| InvalidInput(format!("REFERENCE: {e}")))?
    else {
        return Err(InvalidInput(format!(
            "REFERENCE {:?}: expected HOST[:PORT]/REPO[:TAG]",
            args.reference
        ))
        .into());
    };
    let bytes = std::fs::read(&args.wasm)
        .map_err(|e| InvalidInput(format!("{}: {e}", args.wasm.display())))?;
    let client = Registry::new(
        &[target.resolve_registry().to_owned()],
        &args.insecure_registry,
    )?;
    let resolved =
        distribution::publish(&client, &target, &bytes, &args.wasm.display().to_string())?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&resolved)?),
        Format::Text => println!(
            "Published {} as {}\n  component {}\n  builder.toml: uri = \"docker://{}\"",
            args.wasm.display(),
            target.whole(),
            resolved.component,
            resolved.reference
        ),
    }
    Ok(())
}
