//! Command-line definitions (clap derive types in one place) and dispatch.

mod audit;
mod bloat;
pub mod build;
mod builder;
mod buildpack;
pub mod exit;
mod inspect;
mod new;
mod progress;
mod rebase;
mod run;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Cascade builds OCI images from source with buildpacks that are
/// WebAssembly components: portable, sandboxed and reproducible.
#[derive(Debug, Parser)]
#[command(name = "cascade", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an app directory into an OCI image.
    ///
    /// Runs detect (which buildpack group applies), build (each buildpack in a
    /// sandbox) and export (reproducible layers on the run image). Without
    /// --builder or --buildpack the built-in builder is used (its
    /// buildpacks are listed below; `cascade builder inspect` shows its
    /// order).
    ///
    /// Exit codes: 0 built, 1 anything else, 10 bad input, 20 no buildpack
    /// group passed, 21 a buildpack failed in detect, 40 build cache, 51 a
    /// buildpack failed in build, 61 run image (a --platform it does not
    /// offer included), 62 export.
    Build(Box<build::BuildArgs>),

    /// Inspect builders: their buildpacks and order.
    #[command(subcommand)]
    Builder(builder::BuilderCommand),

    /// Package buildpacks and publish them to registries.
    #[command(subcommand)]
    Buildpack(buildpack::BuildpackCommand),

    /// Scaffold a new buildpack crate.
    #[command(subcommand)]
    New(new::NewCommand),

    /// Put an app image on a new run image without rebuilding.
    ///
    /// The layers up to the image's recorded run-image top layer are replaced
    /// by the new run image's; app layers stay byte for byte; config and
    /// manifest are rewritten (launch env replayed on the new base's Env,
    /// CNB labels updated), and the SBOM layer is rewritten to name the new
    /// base (a published image also gets a referrer for its new digest).
    /// Refuses a different os/arch, a run image from another repository, or
    /// an image labelled not rebasable, unless --force; and a run image
    /// older than the image's own, unless --allow-downgrade. --dry-run
    /// prints the digest the rebase would produce.
    ///
    /// Exit codes: 0 done (or nothing to do), 10 bad input (an empty
    /// --fleet included), 61 run image, 70 refused (with --fleet: some
    /// image was refused, none failed), 71 failed (with --fleet: some image
    /// failed).
    Rebase(rebase::RebaseArgs),

    /// Show what an image is made of: run image, buildpacks, processes, env
    /// and where each layer came from. Reads images made by the CNB
    /// lifecycle too.
    Inspect(inspect::InspectArgs),

    /// List a fleet against a run image: each image, the run image and
    /// digest it sits on, and its buildpacks, classified by the checks
    /// `rebase` applies: current, stale (rebase would rebase it), refused
    /// (rebase would refuse it, and why) or failed (it could not be read).
    ///
    /// Exit codes: 0 all read (stale ones too, unless --fail-on-stale), 10
    /// bad input (no image given), 61 run image, 72 some image is stale and
    /// --fail-on-stale was given, 73 some image could not be read.
    Audit(audit::AuditArgs),

    /// Which of an image's run-image packages its processes can reach,
    /// statically: each process's program (PATH, `sh -c`, `#!`), then the
    /// ELF closure as the dynamic loader walks it (PT_INTERP, DT_NEEDED
    /// through RUNPATH/RPATH, LD_LIBRARY_PATH, ld.so.conf), every file
    /// mapped to its dpkg package. With --trace, which it loads when run
    /// here (strace); with --vulns, which findings lie in packages never
    /// reached, and an OpenVEX document for them (--vex).
    ///
    /// Exit codes: 0 reported, 10 bad input, 1 the image could not be read
    /// (or the traced process not run).
    Bloat(bloat::BloatArgs),

    /// Start a process of an image on this machine: its layers unpacked
    /// into a private root, the process (the default one, or --process
    /// TYPE) under bubblewrap with that root as `/`, the image's Env and
    /// working directory. No network unless --port.
    ///
    /// Exit codes: the process's own; 10 bad input (no such process type,
    /// no bwrap), 1 the image could not be read or unpacked.
    Run(run::RunArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build(args) => build::run(&args),
        Command::Builder(cmd) => builder::run(&cmd),
        Command::Buildpack(cmd) => buildpack::run(&cmd),
        Command::New(cmd) => new::run(&cmd),
        Command::Rebase(args) => rebase::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Bloat(args) => bloat::run(&args),
    }
}

/// The OCI context for a command: a registry client when any of `refs` is a
/// registry reference, and the blob cache under the cache dir.
pub fn oci(
    cache_dir: Option<PathBuf>,
    refs: &[&cascade_lifecycle::oci::ImageRef],
    insecure: &[String],
) -> anyhow::Result<cascade_lifecycle::oci::store::Oci> {
    use cascade_lifecycle::oci::store::{Oci, registry_hosts};
    let hosts = registry_hosts(refs.iter().copied());
    let registry = if hosts.is_empty() {
        None
    } else {
        Some(std::sync::Arc::new(
            cascade_lifecycle::oci::registry::Registry::new(&hosts, insecure)?,
        ))
    };
    Ok(Oci::new(&cache_root(cache_dir), registry)?)
}

/// The width of a text table's column: its widest cell, or its header.
pub fn column_width<'a>(header: &str, cells: impl IntoIterator<Item = &'a str>) -> usize {
    cells
        .into_iter()
        .map(str::len)
        .fold(header.len(), usize::max)
}

/// Image references from arguments and a file of one per line (`#`
/// comments); errors name the file and line.
pub fn images_from(
    args: &[String],
    file: Option<&std::path::Path>,
) -> anyhow::Result<Vec<cascade_lifecycle::oci::ImageRef>> {
    use cascade_lifecycle::oci::ImageRef;
    let parse = |what: &str, r: &str| {
        ImageRef::parse(r).map_err(|e| exit::InvalidInput(format!("{what}: {e}")))
    };
    let mut images = args
        .iter()
        .map(|i| parse("IMAGE", i))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| exit::InvalidInput(format!("{}: {e}", file.display())))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                images.push(parse(&format!("{}:{}", file.display(), n + 1), line)?);
            }
        }
    }
    Ok(images)
}

/// The cache dir: `explicit` (`--cache-dir`), else [`default_cache_dir`],
/// else one under the temp dir.
pub fn cache_root(explicit: Option<PathBuf>) -> PathBuf {
    explicit
        .or_else(default_cache_dir)
        .unwrap_or_else(|| std::env::temp_dir().join("cascade-cache"))
}

/// `$CASCADE_CACHE_DIR`, else `$XDG_CACHE_HOME/cascade`, else `~/.cache/cascade`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CASCADE_CACHE_DIR") {
        return Some(dir.into());
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("cascade"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/cascade"))
}
