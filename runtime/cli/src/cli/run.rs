//! `cascade run`: start an image's process on this machine.

use std::path::PathBuf;

use clap::Args;

use super::exit::InvalidInput;
use cascade_lifecycle::guest_tree::GuestTree;
use cascade_lifecycle::inspect::from_parts;
use cascade_lifecycle::launch;
use cascade_lifecycle::oci::ImageRef;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The image: oci:DIR[:TAG] or HOST[:PORT]/REPO[:TAG|@DIGEST].
    pub image: String,

    /// The process type to start (`cascade inspect` lists them). Default:
    /// the image's default process (its Entrypoint and Cmd).
    #[arg(long, short = 'p', value_name = "TYPE")]
    pub process: Option<String>,

    /// An environment variable for the process, over the image's own.
    /// Repeatable.
    #[arg(long = "env", short = 'e', value_name = "NAME=VALUE")]
    pub env: Vec<String>,

    /// Set PORT for the process and let it use the host's network, so it
    /// answers on 127.0.0.1:PORT. Without it the process has no network.
    /// With it the process shares the host's whole network namespace (every
    /// loopback service, abstract sockets): use it for images you trust.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Where pulled blobs are kept (see `cascade build --help`).
    #[arg(long, value_name = "DIR", env = "CASCADE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// A registry host that may be reached over plain HTTP. Repeatable.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,

    /// Print nothing but the process's own output.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Arguments appended to the process's own (after `--`).
    #[arg(last = true, value_name = "ARG")]
    pub args: Vec<String>,
}

pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let image = ImageRef::parse(&args.image).map_err(|e| InvalidInput(format!("IMAGE: {e}")))?;
    if image == ImageRef::Scratch {
        return Err(InvalidInput("IMAGE: scratch has no process to run".into()).into());
    }
    if !cascade_lifecycle::exec::have_bwrap() {
        return Err(InvalidInput(
            "cascade run starts the process under bubblewrap, and `bwrap` is not on PATH (Debian: apt-get install bubblewrap)".into(),
        )
        .into());
    }
    let oci = super::oci(args.cache_dir.clone(), &[&image], &args.insecure_registry)?;
    let read = oci.read(&image, None)?;
    let name = image.to_string();
    let inspection = from_parts(&name, &read.digest, &read.manifest, &read.config);
    let mut env = args.env.clone();
    if let Some(port) = args.port {
        env.push(format!("PORT={port}"));
    }
    let plan = launch::plan(
        &inspection,
        &read.config,
        args.process.as_deref(),
        &args.args,
        &env,
    )
    .map_err(|e| InvalidInput(e.to_string()))?;

    // Under the cache dir (a disk), not $TMPDIR (often memory).
    let runs = super::cache_root(args.cache_dir.clone()).join("run");
    std::fs::create_dir_all(&runs)?;
    let scratch = tempfile::Builder::new().prefix("run-").tempdir_in(&runs)?;
    let root_path = scratch.path().join("rootfs");
    let root = GuestTree::create(&root_path)?;
    let unpacked = launch::unpack(&oci, &read, &name, &root)?;
    launch::prepare_mount_points(&root)?;
    if !args.quiet {
        eprintln!(
            "==> {name}: {} bytes in {} entries unpacked{}; starting {}: {}",
            unpacked.bytes,
            unpacked.entries,
            if unpacked.skipped > 0 {
                format!(" ({} devices/FIFOs skipped)", unpacked.skipped)
            } else {
                String::new()
            },
            plan.process.as_deref().unwrap_or("the entrypoint"),
            plan.argv.join(" ")
        );
    }
    let status = launch::command(&root_path, &plan, args.port.is_some())
        .status()
        .map_err(|e| anyhow::anyhow!("starting bwrap: {e}"))?;
    // The process may have left directories it made unreadable: open them
    // up (through the root's handle; the process is gone) so all goes.
    let _ = root.open_up();
    drop(root);
    drop(scratch);
    // The process's own exit status is the command's, as `docker run` does.
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt as _;
        128 + status.signal().unwrap_or(0)
    });
    std::process::exit(code);
}
