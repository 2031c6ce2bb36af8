//! `cascade audit`.

use clap::Args;

use super::Format;
use super::exit::InvalidInput;
use super::progress::Stderr;
use cascade_lifecycle::fleet::{AuditReport, audit, audit_build, discover};
use cascade_lifecycle::oci::ImageRef;

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // clap flags: each bool is one switch
pub struct AuditArgs {
    /// Images to audit: oci:DIR[:TAG] or HOST[:PORT]/REPO[:TAG].
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,

    /// The run image whose current digest images are compared with (with
    /// --usage, the run image --discover looks for).
    #[arg(long, value_name = "REF", required_unless_present_any = ["build_image", "usage"])]
    pub run_image: Option<String>,

    /// Audit package use instead: for each run-image package, how many of
    /// the images that carry it have a process that reaches it (`cascade
    /// bloat` for each image), and which packages no image reaches.
    #[arg(long, conflicts_with = "build_image")]
    pub usage: bool,

    /// Audit against a build image instead: an image built on an older
    /// digest of REF is stale (rebuild it on the patched build image), one
    /// built on the build host's own tools is `host`, one that records no
    /// build image is `none`.
    #[arg(long, value_name = "REF", conflicts_with_all = ["run_image", "discover"])]
    pub build_image: Option<String>,

    /// A file of image references, one per line (# comments).
    #[arg(long, value_name = "FILE")]
    pub images_file: Option<std::path::PathBuf>,

    /// Find the images in the run image's registry whose CNB label names the
    /// run image's repository.
    #[arg(long)]
    pub discover: bool,

    /// Exit 72 when any image is stale (a CI gate: "every image is on the
    /// patched base").
    #[arg(long)]
    pub fail_on_stale: bool,

    /// A registry host that may be reached over plain HTTP. Repeatable.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,

    /// Where pulled blobs are cached.
    #[arg(long, value_name = "DIR", env = "CASCADE_CACHE_DIR")]
    pub cache_dir: Option<std::path::PathBuf>,

    /// No progress on stderr (errors and warnings still).
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &AuditArgs) -> anyhow::Result<()> {
    if let Some(build_image) = &args.build_image {
        return run_build(args, build_image);
    }
    if args.usage {
        return run_usage(args);
    }
    let reporter = Stderr::new(args.quiet);
    let run_image = ImageRef::parse(args.run_image.as_deref().unwrap_or_default())
        .map_err(|e| InvalidInput(format!("--run-image: {e}")))?;
    let mut images = super::images_from(&args.images, args.images_file.as_deref())?;
    let mut refs: Vec<&ImageRef> = images.iter().collect();
    refs.push(&run_image);
    let oci = super::oci(args.cache_dir.clone(), &refs, &args.insecure_registry)?;
    if args.discover {
        images.extend(discover(&oci, &run_image, &reporter)?);
    }
    let images = the_fleet(images, true)?;
    let report = audit(&oci, &images, &run_image, &reporter)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print_table(&report),
    }
    if report.failed > 0 {
        return Err(
            AuditUnreadable(format!("{} image(s) could not be read", report.failed)).into(),
        );
    }
    if args.fail_on_stale && report.stale > 0 {
        return Err(AuditStale(format!(
            "{} image(s) are stale (--fail-on-stale)",
            report.stale
        ))
        .into());
    }
    Ok(())
}

/// The images to audit, each once, in order; none is a usage error that
/// says how to name them (`--discover` where the mode has it).
fn the_fleet(mut images: Vec<ImageRef>, discover: bool) -> Result<Vec<ImageRef>, InvalidInput> {
    images.sort_by_key(ToString::to_string);
    images.dedup();
    if images.is_empty() {
        let how = if discover {
            "IMAGEs, --images-file, or --discover"
        } else {
            "IMAGEs or --images-file"
        };
        return Err(InvalidInput(format!("no images to audit: give {how}")));
    }
    Ok(images)
}

/// `audit --build-image`: the fleet against a build image.
fn run_build(args: &AuditArgs, build_image: &str) -> anyhow::Result<()> {
    let build_image =
        ImageRef::parse(build_image).map_err(|e| InvalidInput(format!("--build-image: {e}")))?;
    let images = the_fleet(
        super::images_from(&args.images, args.images_file.as_deref())?,
        false,
    )?;
    let mut refs: Vec<&ImageRef> = images.iter().collect();
    refs.push(&build_image);
    let oci = super::oci(args.cache_dir.clone(), &refs, &args.insecure_registry)?;
    let report = audit_build(&oci, &images, &build_image)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => {
            println!(
                "build image {} is at {}",
                report.build_image.reference,
                report.build_image.digest.as_deref().unwrap_or("-")
            );
            println!("{:<8} {:<50} BUILT ON", "STATUS", "IMAGE");
            for e in &report.images {
                let on = e.build_image.as_ref().map_or_else(
                    || e.reason.clone().unwrap_or_else(|| "-".into()),
                    |b| format!("{} {}", b.reference, b.digest.as_deref().unwrap_or("")),
                );
                println!("{:<8} {:<50} {}", e.status.as_str(), e.image, on.trim_end());
            }
            println!(
                "{} current, {} stale, {} other, {} host, {} none, {} failed",
                report.current, report.stale, report.other, report.host, report.none, report.failed
            );
        }
    }
    if report.failed > 0 {
        return Err(
            AuditUnreadable(format!("{} image(s) could not be read", report.failed)).into(),
        );
    }
    if args.fail_on_stale && report.stale > 0 {
        return Err(AuditStale(format!(
            "{} image(s) were built on an older build image (--fail-on-stale)",
            report.stale
        ))
        .into());
    }
    Ok(())
}

/// `audit --usage`: package use across the fleet.
fn run_usage(args: &AuditArgs) -> anyhow::Result<()> {
    let reporter = Stderr::new(args.quiet);
    let run_image = args
        .run_image
        .as_deref()
        .map(|r| ImageRef::parse(r).map_err(|e| InvalidInput(format!("--run-image: {e}"))))
        .transpose()?;
    let mut images = super::images_from(&args.images, args.images_file.as_deref())?;
    let mut refs: Vec<&ImageRef> = images.iter().collect();
    refs.extend(run_image.iter());
    let oci = super::oci(args.cache_dir.clone(), &refs, &args.insecure_registry)?;
    if args.discover {
        let run_image = run_image
            .as_ref()
            .ok_or_else(|| InvalidInput("--discover needs --run-image".into()))?;
        images.extend(discover(&oci, run_image, &reporter)?);
    }
    let images = the_fleet(images, true)?;
    let report = cascade_lifecycle::bloat::usage::usage(&oci, &images, &reporter);
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => {
            let width =
                super::column_width("PACKAGE", report.packages.iter().map(|p| p.name.as_str()));
            println!(
                "{:<width$}  {:>7}  {:>6}  VERSIONS",
                "PACKAGE", "REACHED", "IMAGES"
            );
            for p in &report.packages {
                println!(
                    "{:<width$}  {:>7}  {:>6}  {}",
                    p.name,
                    p.reached_by,
                    p.images,
                    p.versions.join(", ")
                );
            }
            for i in report.images.iter().filter(|i| i.status == "failed") {
                println!("failed: {}: {}", i.image, i.reason.as_deref().unwrap_or(""));
            }
            println!(
                "{} images read, {} failed; {} of {} packages reached by no image: {}",
                report.read,
                report.failed,
                report.never_reached.len(),
                report.packages.len(),
                report.never_reached.join(" ")
            );
        }
    }
    if report.failed > 0 {
        return Err(
            AuditUnreadable(format!("{} image(s) could not be read", report.failed)).into(),
        );
    }
    Ok(())
}

/// Some image could not be read (exit 73).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuditUnreadable(pub String);

/// Some image is stale and `--fail-on-stale` was given (exit 72).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuditStale(pub String);

fn print_table(r: &AuditReport) {
    println!(
        "run image {} is at {}",
        r.run_image.reference,
        r.run_image.digest.as_deref().unwrap_or("-")
    );
    println!(
        "{:<15} {:<50} {:<40} BUILDPACKS",
        "STATUS", "IMAGE", "RUN IMAGE"
    );
    for e in &r.images {
        let run = e
            .run_image
            .as_ref()
            .map(|r| r.reference.as_str())
            .or(e.reason.as_deref())
            .unwrap_or("-");
        println!(
            "{:<15} {:<50} {:<40} {}",
            e.status.as_str(),
            e.image,
            run,
            e.buildpacks.join(",")
        );
    }
    println!(
        "{} current, {} stale, {} refused, {} failed",
        r.current, r.stale, r.refused, r.failed
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_is_each_image_once_in_order_and_none_says_how_to_name_them() {
        let r = |s: &str| ImageRef::parse(s).unwrap();
        let fleet = the_fleet(
            vec![r("oci:/f/b:1"), r("oci:/f/a:1"), r("oci:/f/b:1")],
            true,
        )
        .unwrap();
        assert_eq!(fleet, [r("oci:/f/a:1"), r("oci:/f/b:1")]);
        let err = the_fleet(Vec::new(), true).unwrap_err().0;
        assert_eq!(
            err,
            "no images to audit: give IMAGEs, --images-file, or --discover"
        );
        let err = the_fleet(Vec::new(), false).unwrap_err().0;
        assert_eq!(err, "no images to audit: give IMAGEs or --images-file");
    }
}
