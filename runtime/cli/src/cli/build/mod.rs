//! `cascade build`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::exit::InvalidInput;
use super::progress::Stderr;
use super::{Format, default_cache_dir};
use cascade_lifecycle::api::{BuildpackRunner, Env};
use cascade_lifecycle::build_image;
use cascade_lifecycle::builder::{Builder, BuildpackSource, GroupMember};
use cascade_lifecycle::capabilities::Grants;
use cascade_lifecycle::distribution;
use cascade_lifecycle::exec::ExecPolicy;
use cascade_lifecycle::fetch::Fetcher;
use cascade_lifecycle::lock::{BuilderLock, LockedBuildpack, LockedImage};
use cascade_lifecycle::oci::ImageRef;
use cascade_lifecycle::oci::compress::Compression;
use cascade_lifecycle::oci::registry::Registry;
use cascade_lifecycle::pipeline::{self, BuildRequest};
use cascade_lifecycle::project::{self, Project, ProjectBuildpack};
use cascade_lifecycle::report::BuildReport;
use cascade_lifecycle::wasm::{CapabilityHost, Engine, Limits};

mod buildpacks;
mod setup;

use buildpacks::select_buildpacks;
use setup::{build_image_choice, parse_env, platform_env, prepare_build_image, warn_unused_fields};

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // clap flags: each bool is one switch
pub struct BuildArgs {
    /// The app's source directory.
    pub app_dir: PathBuf,

    /// Where to write the image: oci:DIR[:TAG] (an OCI image layout; the tag
    /// defaults to `latest`) or HOST[:PORT]/REPO[:TAG] (publish to a
    /// registry; the tag moves only after every blob is there).
    #[arg(long, short = 'o', visible_alias = "publish", value_name = "REF")]
    pub output: String,

    /// The base image: oci:DIR[:TAG], HOST[:PORT]/REPO[:TAG|@DIGEST], or
    /// `scratch` (empty). Defaults to the builder's [run] image, else scratch.
    #[arg(long, value_name = "REF")]
    pub run_image: Option<String>,

    /// The build image: the OCI image whose filesystem every tool a
    /// buildpack execs runs in (read-only as `/`, its PATH and Env; nothing
    /// of the host is visible), as oci:DIR[:TAG] or a registry reference.
    /// `host` runs the build host's own tools instead (not hermetic, for
    /// local development). Defaults to the builder's [build] image. A build
    /// that grants exec needs one.
    #[arg(long, value_name = "REF|host")]
    pub build_image: Option<String>,

    /// Where build images are unpacked: one read-only root per stack of
    /// layers, shared by every build and cache dir that names this dir.
    /// Default: <cache dir>/rootfs.
    #[arg(long, value_name = "DIR", env = "CASCADE_ROOTFS_DIR")]
    pub rootfs_dir: Option<PathBuf>,

    /// A builder.toml (pack's schema) naming buildpacks and their order.
    #[arg(long, value_name = "FILE")]
    pub builder: Option<PathBuf>,

    /// A buildpack component (.wasm); repeat for several. They form one group
    /// in the given order and replace the builder's order.
    #[arg(long = "buildpack", short = 'b', value_name = "FILE")]
    pub buildpacks: Vec<PathBuf>,

    /// A PEM file of CA certificates that the tools of this build must
    /// trust (a TLS-intercepting proxy's CA): the ca-certs buildpack points
    /// SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, PIP_CERT, REQUESTS_CA_BUNDLE,
    /// CARGO_HTTP_CAINFO and GIT_SSL_CAINFO of exec'd tools at it (the last
    /// four replace a tool's own roots, so only this sets them; an app's
    /// ca-certs/ adds to the roots through the first two). Build only: the
    /// image does not carry it (BP_CA_CERTIFICATES does). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub ca_certificates: Vec<PathBuf>,

    /// A platform variable passed to buildpacks (K=V); repeatable.
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,

    /// Output format of the result on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// The platform to build for, as os/arch: it picks from an image index
    /// and is the platform of `scratch`; a run image that does not offer it
    /// is an error. Without it: linux/amd64 for `scratch` and image indexes
    /// (fixed, so builds match across machines), and a single-platform run
    /// image's own.
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,

    /// A registry host (HOST[:PORT]) that may be reached over plain HTTP;
    /// loopback registries always may. Repeatable.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,

    /// Where compiled components, pulled blobs and each image's build cache
    /// (cache layers, the previous build's layer metadata) are kept.
    /// Default: $XDG_CACHE_HOME/cascade or ~/.cache/cascade.
    #[arg(long, value_name = "DIR", env = "CASCADE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Use only the buildpack digests in the builder's builder.lock; a
    /// registry buildpack the lock does not hold is an error (for CI).
    #[arg(long)]
    pub locked: bool,

    /// Forget the output image's build cache before building (a cold build).
    #[arg(long)]
    pub clear_cache: bool,

    /// How new layers are compressed. gzip is read everywhere; zstd is
    /// smaller and faster (containerd >= 1.5, podman); none writes plain tar.
    #[arg(long, default_value = "gzip", value_parser = compression_names(), value_name = "ALGORITHM")]
    pub layer_compression: Compression,

    /// Seconds one buildpack call (detect or build) may run.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub buildpack_timeout: u64,

    /// Bytes one buildpack's layers may hold after its build, in MiB
    /// (0: no bound).
    #[arg(long, default_value_t = 16384, value_name = "MIB")]
    pub max_layers_mib: u64,

    /// Memory one buildpack may use, in MiB.
    #[arg(long, default_value_t = 512, value_name = "MIB")]
    pub buildpack_memory: u64,

    /// Grant a capability to every buildpack that declares it:
    /// fetch:HOST (fetch:* for any declared host; fetch:file for file://
    /// URLs), exec:TOOL (exec:* for any declared tool), network (for exec'd
    /// tools). Repeatable. Nothing is granted by default.
    #[arg(long, value_name = "CAPABILITY")]
    pub allow: Vec<String>,

    /// With --build-image host: a directory of the host tools run with exec
    /// may read (bound read-only in their sandbox), e.g. a toolchain's
    /// home: --exec-path ~/.rustup. Repeatable.
    #[arg(long, value_name = "DIR")]
    pub exec_path: Vec<PathBuf>,

    /// A variable every tool run with exec gets (K=V), e.g.
    /// RUSTUP_HOME=/root/.rustup. Repeatable.
    #[arg(long, value_name = "K=V")]
    pub exec_env: Vec<String>,

    /// Processes one exec'd tool may run at once (enforced with a pids
    /// cgroup where the host allows it; 0: no limit).
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub exec_max_procs: u32,

    /// Where bubblewrap is missing, run exec'd tools without a sandbox
    /// instead of refusing.
    #[arg(long)]
    pub allow_unsandboxed_exec: bool,

    /// Key the build cache by KEY instead of the output: builds with the
    /// same key and buildpacks share cache layers (a pull-request build
    /// starting from main's). By default each output has its own.
    #[arg(long, value_name = "KEY")]
    pub cache_key: Option<String>,

    /// Refuse to run an exec'd tool when its limits cannot be enforced on
    /// this host (no pids cgroup), instead of warning.
    #[arg(long)]
    pub require_limits: bool,

    /// Grant no capability at all, whatever --allow or the builder say.
    #[arg(long)]
    pub deny_all: bool,

    /// Serve fetches only from the fetch cache; download nothing.
    #[arg(long)]
    pub offline: bool,

    /// Largest file one fetch may download, in MiB.
    #[arg(long, default_value_t = 2048, value_name = "MIB")]
    pub fetch_max_mib: u64,

    /// Only warnings and errors on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Fail the build (exit 62, nothing published) when a process's
    /// program, or the first command of its `sh -c` script, is not in the
    /// image; without it that is a warning. Checked from the layers'
    /// listings when the run image's layers are on this machine.
    #[arg(long)]
    pub strict_processes: bool,
}

fn created() -> anyhow::Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v.trim().parse().map_err(|_| {
            InvalidInput(format!(
                "SOURCE_DATE_EPOCH={v:?}: expected seconds since 1970"
            ))
            .into()
        }),
        _ => Ok(cascade_lifecycle::NORMALIZED_EPOCH),
    }
}

/// `--platform os/arch`.
fn os_arch(p: &str) -> Result<(String, String), InvalidInput> {
    p.split_once('/')
        .filter(|(os, arch)| !os.is_empty() && !arch.is_empty())
        .map(|(os, arch)| (os.to_owned(), arch.to_owned()))
        .ok_or_else(|| InvalidInput(format!("--platform {p:?}: expected os/arch")))
}

pub fn run(args: &BuildArgs) -> anyhow::Result<()> {
    let reporter = Arc::new(Stderr::new(args.quiet));
    let output =
        ImageRef::parse(&args.output).map_err(|e| InvalidInput(format!("--output: {e}")))?;
    let platform = args.platform.as_deref().map(os_arch).transpose()?;
    let builder = args
        .builder
        .as_deref()
        .map(cascade_lifecycle::embedded::load_builder)
        .transpose()?;
    // A missing app dir is reported by the pipeline; only read project.toml
    // when there is a directory to read it from.
    let project = if args.app_dir.is_dir() {
        Project::load(&args.app_dir)?
    } else {
        Project::default()
    };
    warn_unused_fields(builder.as_ref(), &project, &args.app_dir, reporter.as_ref());

    let platform_env = platform_env(args, builder.as_ref(), &project)?;

    let run_image_name = args
        .run_image
        .clone()
        .or_else(|| builder.as_ref().and_then(|b| b.run_image.clone()))
        .unwrap_or_else(|| "scratch".into());
    let run_image =
        ImageRef::parse(&run_image_name).map_err(|e| InvalidInput(format!("--run-image: {e}")))?;

    let limits = Limits {
        timeout: Duration::from_secs(args.buildpack_timeout),
        memory_bytes: usize::try_from(args.buildpack_memory.saturating_mul(1 << 20))
            .unwrap_or(usize::MAX),
        ..Limits::default()
    };
    let cache_dir = args.cache_dir.clone().or_else(default_cache_dir);
    let mut allow = builder
        .as_ref()
        .map(|b| b.allow.clone())
        .unwrap_or_default();
    allow.extend(args.allow.iter().cloned());
    let grants = Grants::parse(&allow, args.deny_all).map_err(|e| InvalidInput(e.to_string()))?;
    let fetch_cache = super::cache_root(cache_dir.clone());
    let (choice, oci) = build_image_choice(args, builder.as_ref(), &output, &run_image)?;
    let build_image = prepare_build_image(
        args,
        builder.as_ref(),
        &choice,
        &grants,
        &oci,
        reporter.as_ref(),
    )?;
    let exec = ExecPolicy {
        build_env: build_image.env,
        paths: args.exec_path.clone(),
        env: parse_env("--exec-env", &args.exec_env)?
            .into_iter()
            .collect(),
        allow_unsandboxed: args.allow_unsandboxed_exec,
        timeout: limits.timeout,
        source_date_epoch: created()?,
        max_procs: args.exec_max_procs,
        require_limits: args.require_limits,
    };
    let capabilities = Arc::new(CapabilityHost::new(
        grants,
        Some(Fetcher::new(
            &fetch_cache,
            args.offline,
            args.fetch_max_mib.saturating_mul(1 << 20),
        )),
        exec,
    ));
    let engine = Arc::new(
        Engine::new(limits, cache_dir, reporter.clone())?
            .with_prebuilt(cascade_lifecycle::embedded::prebuilt())
            .with_capabilities(capabilities.clone()),
    );
    let (buildpacks, order) = select_buildpacks(&engine, args, builder.as_ref(), &project)?;

    let request = BuildRequest {
        app_dir: args.app_dir.clone(),
        output,
        run_image,
        buildpacks,
        order,
        platform_env,
        created: created()?,
        platform,
        filter: project.filter,
        compression: args.layer_compression,
        use_cache: true,
        clear_cache: args.clear_cache,
        capabilities: Some(capabilities.clone()),
        max_layers_bytes: args.max_layers_mib.saturating_mul(1 << 20),
        cache_key: args.cache_key.clone(),
        strict_processes: args.strict_processes,
        build_image: build_image.identity,
        build_distro: build_image.distro,
    };
    let report = pipeline::build(&request, &oci, reporter.as_ref())?;
    print_report(&report, args.format)
}

/// The built-in buildpacks, for `build --help`: id, version and the
/// builder.toml uri that names each.
pub fn builtins_help() -> String {
    use std::fmt::Write as _;
    let mut out = String::from("Built-in buildpacks (builder.toml: uri = \"builtin:ID\"):\n");
    for (name, bytes) in &cascade_lifecycle::embedded::BUILDPACKS {
        let id = name.trim_start_matches("embedded:");
        let version = cascade_lifecycle::manifest::BuildpackManifest::from_component(bytes, name)
            .map(|m| m.buildpack.version)
            .unwrap_or_default();
        let _ = writeln!(out, "  {id} {version}");
    }
    out
}

type Selection = (Vec<Arc<dyn BuildpackRunner>>, Vec<Vec<GroupMember>>);

fn print_report(report: &BuildReport, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(report)?),
        Format::Text => {
            println!("Built {}", report.image);
            println!("  digest:  {}", report.digest);
            match &report.run_image.digest {
                Some(digest) => println!("  run image: {} ({digest})", report.run_image.reference),
                None => println!("  run image: {}", report.run_image.reference),
            }
            if let Some(b) = &report.build_image {
                match &b.digest {
                    Some(digest) => println!("  build image: {} ({digest})", b.reference),
                    None => println!("  build image: {} (not hermetic)", b.reference),
                }
            }
            let group: Vec<String> = report
                .group
                .iter()
                .map(|g| format!("{}@{}", g.id, g.version))
                .collect();
            println!("  buildpacks: {}", group.join(", "));
            for l in &report.layers {
                let how = if l.reused { ", reused" } else { "" };
                println!(
                    "  layer {:<40} {} ({} bytes{how})",
                    l.name, l.digest, l.size
                );
            }
            for c in &report.capabilities {
                println!(
                    "  capability {} used by {}: {}",
                    c.capability, c.buildpack, c.detail
                );
            }
            for p in &report.processes {
                let mark = if report.default_process.as_deref() == Some(&p.kind) {
                    " (default)"
                } else {
                    ""
                };
                println!("  process {}{mark}: {}", p.kind, p.command.join(" "));
            }
        }
    }
    Ok(())
}

/// `--layer-compression`'s values, with what each means in `--help` (the
/// OCI crate's [`Compression`] knows no CLI).
fn compression_names() -> impl clap::builder::TypedValueParser<Value = Compression> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser as _};
    PossibleValuesParser::new([
        PossibleValue::new("gzip").help("Read by every registry and runtime"),
        PossibleValue::new("zstd").help("Smaller and faster: containerd >= 1.5, podman"),
        PossibleValue::new("none").help("Plain tar: no CPU spent, most bytes moved"),
    ])
    .try_map(|name| name.parse::<Compression>())
}
