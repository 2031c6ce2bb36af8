//! `cascade rebase`.

use clap::Args;

use super::Format;
use super::exit::InvalidInput;
use super::progress::Stderr;
use cascade_lifecycle::fleet::{Fleet, FleetReport};
use cascade_lifecycle::oci::ImageRef;
use cascade_lifecycle::phase::{Rebase, Rebased};

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // each bool is a CLI flag
pub struct RebaseArgs {
    /// The app image: oci:DIR[:TAG] or HOST[:PORT]/REPO[:TAG]; with --fleet,
    /// any number of them.
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,

    /// Rebase a fleet: the IMAGEs, --images-file and --discover together,
    /// concurrently, with a per-image report and a summary.
    #[arg(long)]
    pub fleet: bool,

    /// With --fleet: a file of image references, one per line (# comments).
    #[arg(long, value_name = "FILE", requires = "fleet")]
    pub images_file: Option<std::path::PathBuf>,

    /// With --fleet: find the images in the run image's registry (catalog and
    /// tags) whose CNB label names the run image's repository.
    #[arg(long, requires = "fleet")]
    pub discover: bool,

    /// With --fleet: only shard I of N (0-based), chosen by a hash of each
    /// image's name, so N workers split a fleet with no coordinator.
    #[arg(long, value_name = "I/N", requires = "fleet")]
    pub shard: Option<String>,

    /// With --fleet: images rebased at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub jobs: usize,

    /// With --fleet: keep running, rebasing the fleet each time the run-image
    /// tag points at a new digest.
    #[arg(long, requires = "fleet")]
    pub watch: bool,

    /// With --watch: seconds between checks of the run-image tag.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    pub interval: f64,

    /// With --watch: stop after this many checks (default: never).
    #[arg(long, value_name = "N")]
    pub rounds: Option<u64>,

    /// Work out what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// The new run image: oci:DIR[:TAG] or HOST[:PORT]/REPO[:TAG|@DIGEST]
    /// (a new tag of the same repository needs no --force).
    #[arg(long, value_name = "REF")]
    pub run_image: String,

    /// Write the rebased image here instead of moving IMAGE's own tag.
    #[arg(long, short = 'o', value_name = "REF")]
    pub output: Option<String>,

    /// Rebase even when os/arch or the run image's repository differ, or the
    /// image is labelled not rebasable.
    #[arg(long)]
    pub force: bool,

    /// Rebase onto a run image older than the one an image sits on. "Older"
    /// is decided by the run images' config `created` times, or, when those
    /// are equal or missing, by their org.opencontainers.image.version
    /// labels; without this flag such a rebase is refused (exit 70).
    #[arg(long)]
    pub allow_downgrade: bool,

    /// A registry host (HOST[:PORT]) that may be reached over plain HTTP;
    /// loopback registries always may. Repeatable.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,

    /// Where pulled blobs are cached.
    #[arg(long, value_name = "DIR", env = "CASCADE_CACHE_DIR")]
    pub cache_dir: Option<std::path::PathBuf>,

    /// No progress on stderr (errors and warnings still).
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Output format of the result on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &RebaseArgs) -> anyhow::Result<()> {
    let reporter = Stderr::new(args.quiet);
    let parse =
        |flag: &str, r: &str| ImageRef::parse(r).map_err(|e| InvalidInput(format!("{flag}: {e}")));
    let images = super::images_from(&args.images, args.images_file.as_deref())?;
    let run_image = parse("--run-image", &args.run_image)?;
    let output = args
        .output
        .as_deref()
        .map(|o| parse("--output", o))
        .transpose()?;
    let mut refs: Vec<&ImageRef> = images.iter().collect();
    refs.push(&run_image);
    refs.extend(output.as_ref());
    let oci = super::oci(args.cache_dir.clone(), &refs, &args.insecure_registry)?;

    if !(args.interval.is_finite() && args.interval >= 0.0) {
        return Err(InvalidInput(format!(
            "--interval {}: expected a number of seconds, 0 or more",
            args.interval
        ))
        .into());
    }
    if args.fleet {
        let shard = args.shard.as_deref().map(parse_shard).transpose()?;
        let once = || -> anyhow::Result<FleetReport> {
            let mut images = images.clone();
            if args.discover {
                images.extend(cascade_lifecycle::fleet::discover(
                    &oci, &run_image, &reporter,
                )?);
            }
            if images.is_empty() {
                return Err(InvalidInput(if args.discover {
                    format!("--discover found no image built on {run_image}'s repository: nothing to rebase")
                } else {
                    "no images to rebase: give IMAGEs, --images-file, or --discover".into()
                })
                .into());
            }
            let report = Fleet {
                images,
                run_image: &run_image,
                jobs: args.jobs,
                shard,
                dry_run: args.dry_run,
                force: args.force,
                allow_downgrade: args.allow_downgrade,
                oci: &oci,
                reporter: &reporter,
            }
            .run();
            print_fleet(&report, args.format)?;
            Ok(report)
        };
        if args.watch {
            return watch(args, &oci, &run_image, &reporter, once);
        }
        let s = once()?.summary;
        return if s.failed > 0 {
            Err(FleetFailed(format!("{} image(s) failed", s.failed)).into())
        } else if s.refused > 0 {
            Err(FleetRefused(format!("{} image(s) refused", s.refused)).into())
        } else {
            Ok(())
        };
    }

    let [image] = images.as_slice() else {
        return Err(InvalidInput(format!(
            "give one IMAGE (got {}), or use --fleet",
            images.len()
        ))
        .into());
    };
    let rebased = Rebase {
        image,
        run_image: &run_image,
        output: output.as_ref(),
        force: args.force,
        allow_downgrade: args.allow_downgrade,
        dry_run: args.dry_run,
        run_images: &cascade_lifecycle::run_image::RunImages::default(),
        oci: &oci,
        reporter: &reporter,
    }
    .run()?;
    print(&rebased, args.format)
}

/// Follow the run-image tag: each time its digest changes (and at the
/// start), rebase the fleet. Failures are reported and watching goes on.
fn watch(
    args: &RebaseArgs,
    oci: &cascade_lifecycle::oci::store::Oci,
    run_image: &ImageRef,
    reporter: &Stderr,
    once: impl Fn() -> anyhow::Result<FleetReport>,
) -> anyhow::Result<()> {
    use cascade_lifecycle::report::Reporter as _;
    let mut last: Option<String> = None;
    let mut round = 0u64;
    loop {
        round += 1;
        match oci.read(run_image, None) {
            Ok(read) if last.as_deref() != Some(read.digest.to_string().as_str()) => {
                reporter.note(&format!(
                    "{run_image} is now {}: rebasing the fleet",
                    read.digest
                ));
                if let Err(e) = once() {
                    reporter.note(&format!("fleet run failed: {e:#}"));
                }
                last = Some(read.digest.to_string());
            }
            Ok(_) => {}
            Err(e) => reporter.note(&format!(
                "reading {run_image}: {e}; trying again next round"
            )),
        }
        if args.rounds.is_some_and(|n| round >= n) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(args.interval));
    }
}

/// Some images of a fleet failed (exit 71).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FleetFailed(pub String);

/// Some images of a fleet were refused (exit 70).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FleetRefused(pub String);

fn parse_shard(s: &str) -> Result<(u32, u32), InvalidInput> {
    let bad = || InvalidInput(format!("--shard {s:?}: expected I/N with 0 <= I < N"));
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (u32, u32) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

fn print_fleet(r: &FleetReport, format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    let width = r
        .images
        .iter()
        .map(|e| e.image.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!("{:<16} {:<width$}  NEW DIGEST OR REASON", "STATUS", "IMAGE");
    for e in &r.images {
        let detail = e
            .reason
            .clone()
            .or_else(|| e.new_digest.clone())
            .unwrap_or_else(|| "-".into());
        println!("{:<16} {:<width$}  {detail}", e.status.as_str(), e.image);
    }
    let s = &r.summary;
    println!(
        "{} rebased, {} would rebase, {} already current, {} refused, {} failed; {} images in {:.2} s ({:.0}/s){}",
        s.rebased,
        s.would_rebase,
        s.already_current,
        s.refused,
        s.failed,
        r.images.len(),
        s.seconds,
        s.images_per_second,
        r.shard
            .as_ref()
            .map(|sh| format!(", shard {sh}"))
            .unwrap_or_default()
    );
    Ok(())
}

fn print(r: &Rebased, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(r)?),
        Format::Text if !r.changed => {
            println!(
                "{} is already on run image {} ({})",
                r.image,
                r.new_run_image.reference,
                r.new_run_image.digest.as_deref().unwrap_or("-")
            );
        }
        Format::Text => {
            if r.dry_run {
                println!("Would rebase {} (dry run: nothing written)", r.image);
            } else {
                println!("Rebased {}", r.image);
            }
            println!("  image:     {} -> {}", r.old_digest, r.new_digest);
            let show = |r: &cascade_lifecycle::report::RunImageRef| {
                format!("{} ({})", r.reference, r.digest.as_deref().unwrap_or("-"))
            };
            println!(
                "  run image: {} -> {}",
                show(&r.old_run_image),
                show(&r.new_run_image)
            );
            println!("  app layers kept: {}", r.app_layers);
            if let Some(sbom) = &r.sbom_layer {
                println!("  SBOM layer: {sbom} (names the new run image)");
            }
            println!("  {}", r.transfers.summary());
        }
    }
    Ok(())
}
